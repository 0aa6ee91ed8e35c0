"""EC2's token buckets for the strict layer: the same table and model the client-side pacer uses."""

from failover.aws.pacing import Buckets, TokenBucket, bucket_for, bucket_size

__all__ = ["Buckets", "TokenBucket", "bucket_for", "bucket_size"]
