"""The whole exception tree of failover; every message names what is wrong and what to do.

    FailoverError                       exit 1 unless a subclass says otherwise
    ├── ConfigError                     exit 2: bad usage or invalid config, nothing touched
    ├── RefusedError                    exit 3: a safety rule said no, nothing touched
    ├── StateBusyError                  exit 3: another process holds the state's write lock
    │   └── LeaseLostError              another orchestrator holds (or took) the group's lease
    ├── MoveFailedError                 exit 1: a move could not finish (what was done is in the journal)
    │   └── StuckDetachError            a graceful detach hangs and Force is not allowed
    ├── MoveInterruptedError            exit 128 + signal (130 SIGINT, 143 SIGTERM): stopped at a step boundary
    └── CloudError                      exit 1: AWS said no, or did not answer
        ├── TransientCloudError         retried (tenacity, in the adapter only)
        └── PermanentCloudError         surfaced to the operator, never retried
            └── PermissionDeniedError   the caller lacks an IAM permission

Botocore's ClientError is translated once, in failover/aws/errors.py; nothing above
failover/aws sees it.
"""

from __future__ import annotations


class FailoverError(Exception):
    """Base of every error failover raises on purpose; `exit_code` is what the CLI returns."""

    exit_code = 1


class ConfigError(FailoverError):
    """The config or the command line is invalid; raised before any AWS call."""

    exit_code = 2


class RefusedError(FailoverError):
    """A safety rule refused the action before any mutating AWS call."""

    exit_code = 3

    def __init__(self, group: str, resource: str, rule: str) -> None:
        self.group, self.resource, self.rule = group, resource, rule
        super().__init__(f"group {group}: {resource}: refused: {rule}")


class StateBusyError(FailoverError):
    """Another process held the state database's write lock for longer than we wait: busy, not bad."""

    exit_code = 3


class LeaseLostError(RefusedError):
    """Another orchestrator holds the group's lease (or took it mid-move)."""


class MoveFailedError(FailoverError):
    """A move stopped before it finished; the journal records how far it got."""

    def __init__(self, group: str, resource: str, why: str) -> None:
        self.group, self.resource, self.why = group, resource, why
        super().__init__(f"group {group}: {resource}: move failed: {why}")


class StuckDetachError(MoveFailedError):
    """A graceful detach did not finish within detach_timeout and Force is not allowed."""


class MoveInterruptedError(FailoverError):
    """A signal stopped a move at a step boundary.

    `move_id` None: the move had not begun. `unfinished`: a mutating call may have been
    sent, so the journal keeps the move open and `failover move GROUP` finishes it;
    otherwise nothing changed in AWS. `after`: the last step that finished (None: none).
    `aws_now`: where AWS showed the resource when the move stopped (`detaching from
    i-0aa`; "" when it could not be read).
    """

    def __init__(
        self,
        group: str,
        resource: str,
        signal_name: str,
        signum: int,
        *,
        move_id: str | None = None,
        source: str | None = None,
        target: str | None = None,
        unfinished: bool = False,
        after: str | None = None,
        aws_now: str = "",
    ) -> None:
        self.group, self.resource = group, resource
        self.signal_name, self.signum = signal_name, signum
        self.move_id, self.source, self.target = move_id, source, target
        self.unfinished, self.after, self.aws_now = unfinished, after, aws_now
        self.exit_code = 128 + signum
        super().__init__(self._text())

    def _text(self) -> str:
        head = f"group {self.group}: {self.resource}: "
        if self.move_id is None:
            return (
                head + f"interrupted by {self.signal_name} before the move began: nothing changed"
            )
        move = f"move {self.move_id} ({self.source or 'nobody'} -> {self.target})"
        if not self.unfinished:
            return (
                head + f"{move} interrupted by {self.signal_name} before its first change "
                "to AWS: nothing changed"
            )
        done = f"after step '{self.after}' finished" if self.after else "before any step finished"
        where = (
            f"AWS shows {self.resource} {self.aws_now}"
            if self.aws_now
            else f"where {self.resource} is now could not be read"
        )
        return (
            head + f"{move} interrupted by {self.signal_name} {done}; the move is unfinished "
            f"({where}); `failover move {self.group}` finishes it"
        )


class CloudError(FailoverError):
    """AWS answered with an error (or not at all) for one API call."""

    def __init__(self, action: str, code: str, message: str, resource: str = "") -> None:
        self.action, self.code, self.message, self.resource = action, code, message, resource
        where = f" on {resource}" if resource else ""
        super().__init__(f"{action}{where}: {code}: {message}")


class TransientCloudError(CloudError):
    """Worth retrying: the state is converging (IncorrectState, detaching) or AWS is busy."""


class PermanentCloudError(CloudError):
    """Retrying cannot help: unknown id, invalid combination, a rule AWS enforces."""


class PermissionDeniedError(PermanentCloudError):
    """The caller's IAM policy does not allow the action (`<service>:<Action>`)."""

    def __init__(
        self, action: str, code: str, message: str, resource: str = "", service: str = "ec2"
    ) -> None:
        super().__init__(action, code, message, resource)
        self.args = (
            f"missing IAM permission {service}:{action}{' on ' + resource if resource else ''} "
            f"({code}): grant it to the orchestrator's role (see policies/)",
        )
