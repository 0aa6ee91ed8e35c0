"""The only SNS caller: publish one alert to a topic, with botocore errors translated."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from failover.aws.errors import translate

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

# SNS rejects a Subject over 100 characters, with a line break, or outside printable ASCII.
SUBJECT_MAX = 100
# SNS's limit is 256 KiB of UTF-8; alerts are one line, so this is only a guard.
MESSAGE_MAX_BYTES = 256 * 1024 - 1024


def sns_subject(text: str) -> str:
    """`text` made acceptable as an SNS Subject: printable ASCII, one line, 100 characters."""
    clean = "".join(c if " " <= c <= "~" else " " for c in text)
    clean = " ".join(clean.split()) or "failover"
    return clean[:SUBJECT_MAX]


class SnsPublisher:
    """Publishes to SNS topics; raises CloudError (never ClientError) when SNS says no."""

    def __init__(self, client: SNSClient) -> None:
        self._client = client

    def publish(self, topic_arn: str, subject: str, message: str) -> str:
        """Publish `message` with `subject` to `topic_arn`; the SNS MessageId."""
        body = message.encode("utf-8")[:MESSAGE_MAX_BYTES].decode("utf-8", errors="ignore")
        try:
            reply = self._client.publish(
                TopicArn=topic_arn, Subject=sns_subject(subject), Message=body
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "Publish", topic_arn, "sns") from None
        return reply.get("MessageId", "")
