"""EC2's token buckets for the strict layer: the same table and model the client-side pacer uses."""

from failover.aws.pacing import BUCKET_SIZES, TokenBucket, bucket_for, new_buckets

__all__ = ["BUCKET_SIZES", "TokenBucket", "bucket_for", "new_buckets"]
