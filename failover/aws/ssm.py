"""The only SSM caller: SendCommand to one instance and read its invocation back, errors translated."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from failover.aws.errors import error_code, translate
from failover.ops.hooks import Invocation

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

# SendCommand's TimeoutSeconds (how long the command may wait to be delivered) is 30 s at least.
_MIN_DELIVERY_TIMEOUT_S = 30
# The documents known to take `executionTimeout`; another document may reject an unknown parameter.
_TIMED_DOCUMENTS = frozenset({"AWS-RunShellScript", "AWS-RunPowerShellScript"})
_COMMENT_MAX = 100


class SsmCommands:
    """Runs Run Command documents on instances; raises CloudError (never ClientError)."""

    def __init__(self, client: SSMClient) -> None:
        self._client = client

    def send(
        self,
        instance_id: str,
        document: str,
        commands: list[str],
        timeout_s: float,
        comment: str = "",
    ) -> str:
        """Start `commands` on `instance_id` with `document`; the CommandId."""
        parameters = {"commands": commands}
        seconds = max(1, round(timeout_s))
        if document in _TIMED_DOCUMENTS:
            # Bounds the script on the instance too, not only our wait for it.
            parameters["executionTimeout"] = [str(seconds)]
        try:
            reply = self._client.send_command(
                InstanceIds=[instance_id],
                DocumentName=document,
                Parameters=parameters,
                TimeoutSeconds=max(_MIN_DELIVERY_TIMEOUT_S, seconds),
                Comment=comment[:_COMMENT_MAX],
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, "SendCommand", instance_id, "ssm") from None
        return reply["Command"].get("CommandId", "")

    def invocation(self, command_id: str, instance_id: str) -> Invocation:
        """Where the command stands on the instance; Pending until SSM has registered it."""
        try:
            reply = self._client.get_command_invocation(
                CommandId=command_id, InstanceId=instance_id
            )
        except ClientError as exc:
            # Right after SendCommand, AWS may not know the invocation yet: not an answer.
            if error_code(exc) == "InvocationDoesNotExist":
                return Invocation("Pending")
            raise translate(exc, "GetCommandInvocation", instance_id, "ssm") from None
        except BotoCoreError as exc:
            raise translate(exc, "GetCommandInvocation", instance_id, "ssm") from None
        return Invocation(
            status=str(reply.get("Status", "Pending")),
            response_code=int(reply.get("ResponseCode", -1)),
            stdout=str(reply.get("StandardOutputContent", "")),
            stderr=str(reply.get("StandardErrorContent", "")),
            details=str(reply.get("StatusDetails", "")),
        )
