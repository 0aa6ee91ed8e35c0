"""A strict layer over moto that answers EC2 calls the way real EC2 does, errors and timing included.

Install it (or use it as a context manager) and every request moto serves in this process, from
`moto.mock_aws` or from a `ThreadedMotoServer` started here, passes through it: it is logged,
may be throttled, failed or denied, and EC2's rules are checked before moto acts.

moto answers in a few milliseconds; EC2 and STS take tens of milliseconds a call. With a
per-call latency the layer holds every EC2 and STS request that long before AWS acts on it and
answers, outside the EC2 lock, so concurrent calls wait side by side as they do on AWS.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult

from . import _patches
from ._buckets import Buckets, bucket_for
from ._eips import error
from ._faults import Faults, lost_reply_error
from ._iam import TagScope, unauthorized
from ._pages import Pages
from ._rules import Ec2Rules

# EC2 actions that read nothing but change AWS state (everything that is not a read).
_READ_PREFIXES = ("Describe", "Get", "List")
# The services a per-call latency applies to: the ones a move talks to.
LATENCY_SERVICES = frozenset({"ec2", "sts"})

# HTTP statuses AWS answers these codes with; botocore's retry keys off both code and status.
_STATUS_OF = {
    "RequestLimitExceeded": 503,
    "ServiceUnavailable": 503,
    "Unavailable": 503,
    "InternalError": 500,
    "InternalFailure": 500,
    "UnauthorizedOperation": 403,
}
_MESSAGE_OF = {
    "RequestLimitExceeded": "Request limit exceeded.",
    "InternalError": "An internal error has occurred.",
    "ServiceUnavailable": "The service is unavailable. Please try again shortly.",
}

_INSTALL_LOCK = threading.Lock()
# One lock for all EC2 requests: the server is threaded and moto's EC2 models are not.
_EC2_LOCK = threading.RLock()
_active: StrictLayer | None = None

_XML_CODE = re.compile(rb"<Code>([^<]+)</Code>")
# DescribeInstanceStatus's status-check values (API reference, InstanceStatusSummary).
STATUS_VALUES = frozenset({"ok", "impaired", "insufficient-data", "not-applicable", "initializing"})


@dataclass(frozen=True)
class Call:
    """One API call as the layer saw it: what was asked, when, and the error code answered.

    `sent_at` is when the request reached the sandbox, `at` when AWS acted on it and answered:
    the layer's per-call latency later (the same instant when there is none).
    """

    service: str
    action: str
    params: dict[str, Any]
    at: float
    sent_at: float
    error: str | None
    dry_run: bool
    lost_reply: bool = False  # AWS applied the call; the caller saw `error` (InternalError)

    @property
    def mutating(self) -> bool:
        """True for an EC2 call that would change AWS state (any non-read action, not DryRun)."""
        return (
            self.service == "ec2"
            and not self.dry_run
            and not self.action.startswith(_READ_PREFIXES)
        )


class _Answer(Exception):
    """Raised inside dispatch to answer with `exc` at HTTP `status` instead of calling moto."""

    def __init__(self, exc: ServiceException, status: int | None = None) -> None:
        super().__init__(exc.message)
        self.exc = exc
        self.status = status


def _params_of(response: Any) -> dict[str, Any]:
    if getattr(response, "automated_parameter_parsing", False):
        return dict(getattr(response, "params", {}) or {})
    query = getattr(response, "querystring", {}) or {}
    return {k: v[0] if isinstance(v, list) and v else v for k, v in query.items() if k != "Action"}


def _error_code(status: int, body: Any) -> str | None:
    if status < 400:
        return None
    raw = body.encode() if isinstance(body, str) else bytes(body or b"")
    if match := _XML_CODE.search(raw):
        return match.group(1).decode()
    try:
        kind = json.loads(raw).get("__type", "")
    except (ValueError, AttributeError):
        return f"HTTP{status}"
    return str(kind).rsplit("#", 1)[-1] or f"HTTP{status}"


class StrictLayer:
    """EC2's rules, transitions, throttling, faults and IAM denials over moto; one active at once."""

    def __init__(
        self,
        *,
        detach_delay_s: float = 0.0,
        attach_delay_s: float = 0.0,
        eip_follow_delay_s: float = 0.0,
        eip_follows: bool = True,
        token_buckets: bool = False,
        tag_scoped: bool = False,
        seed: int = 0,
        latency_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Configure the layer; nothing is patched until `install`.

        `latency_s`: how long every EC2 and STS call waits before AWS acts on it and answers.
        `clock` and `sleep` are for tests (the latency is spent in `sleep`).
        """
        self.clock = clock
        self._sleep = sleep
        self.latency_s = 0.0
        self.set_latency(latency_s)
        self.rules = Ec2Rules(
            clock=clock,
            detach_delay_s=detach_delay_s,
            attach_delay_s=attach_delay_s,
            eip_follow_delay_s=eip_follow_delay_s,
            eip_follows=eip_follows,
        )
        self.token_buckets = token_buckets
        self.faults = Faults()
        self.iam = TagScope(enabled=tag_scoped)
        self.pages = Pages()
        self.calls: list[Call] = []
        self.on_call: Callable[[Call], None] | None = None
        self._log_lock = threading.Lock()
        self._random = random.Random(seed)
        self._fault_rate = 0.0
        self._fault_codes: tuple[str, ...] = ()
        self._fault_actions: frozenset[str] = frozenset()
        self._denied: set[str] = set()
        self._buckets = Buckets()
        # Services whose endpoint does not answer (`hold`): their requests wait for `release`.
        self._held_services: set[str] = set()
        self._released = threading.Event()
        self._released.set()
        self.held: list[Call] = []

    # ---- life cycle --------------------------------------------------------------------

    def install(self) -> None:
        """Patch moto process-wide; a second install of this layer is a no-op."""
        global _active
        with _INSTALL_LOCK:
            if _active is self:
                return
            if _active is not None:
                raise RuntimeError("another StrictLayer is installed: uninstall it first")
            self._reset_state()
            _patches.apply(self)
            _active = self

    def uninstall(self) -> None:
        """Give moto back its lenient self and drop pending transitions; idempotent."""
        global _active
        with _INSTALL_LOCK:
            if _active is not self:
                return
            _patches.remove()
            _active = None
            self._reset_state()
        self.release()

    def __enter__(self) -> StrictLayer:
        """Install the layer for the `with` block."""
        self.install()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Uninstall the layer, whatever happened in the block."""
        self.uninstall()

    def _reset_state(self) -> None:
        with _EC2_LOCK:
            self.rules.reset()
            self._buckets = Buckets()

    # ---- configuration -----------------------------------------------------------------

    def set_latency(self, seconds: float) -> None:
        """From now on, every EC2 and STS call waits `seconds` before AWS acts on it and answers."""
        if not 0.0 <= seconds < 60.0:
            raise ValueError("latency must be within [0, 60) seconds")
        self.latency_s = seconds

    def stick_detach(self, eni_id: str, *, stuck: bool = True) -> None:
        """Graceful detaches of this ENI stay `detaching` forever (a Force detach completes one);
        `stuck=False` lets the next ones complete again."""
        with _EC2_LOCK:
            if stuck:
                self.rules.stick(eni_id)
            else:
                self.rules.stuck.discard(eni_id)

    def inject_faults(
        self,
        rate: float,
        codes: tuple[str, ...] = ("RequestLimitExceeded", "InternalError"),
        actions: tuple[str, ...] = (),
    ) -> None:
        """Answer this fraction of EC2 calls (of `actions`, or all) with one of `codes`, as AWS would."""
        if not 0.0 <= rate <= 1.0 or (rate > 0 and not codes):
            raise ValueError("rate must be within [0, 1] and codes must not be empty")
        with _EC2_LOCK:
            self._fault_rate = rate
            self._fault_codes = tuple(codes)
            self._fault_actions = frozenset(actions)

    def deny(self, *actions: str) -> None:
        """Answer these EC2 actions with UnauthorizedOperation, with or without DryRun."""
        with _EC2_LOCK:
            self._denied.update(actions)

    def set_status(self, instance_id: str, *, system: str = "ok", instance: str = "ok") -> None:
        """What DescribeInstanceStatus reports for this instance while it is running."""
        if not {system, instance} <= STATUS_VALUES:
            raise ValueError(f"status checks are one of {', '.join(sorted(STATUS_VALUES))}")
        with _EC2_LOCK:
            self.rules.statuses[instance_id] = (system, instance)

    def lose_replies(self, action: str, count: int = 1) -> None:
        """The next `count` applied calls of `action` answer InternalError (500): botocore retries."""
        with _EC2_LOCK:
            self.faults.lose_replies(action, count)

    def disrupt_az(self, *zones: str) -> None:
        """DescribeInstances/DescribeInstanceStatus naming an instance in `zones`, or none, fail."""
        with _EC2_LOCK:
            self.faults.disrupt(zones)

    def restore_az(self, *zones: str) -> None:
        """End the disruption of `zones` (of every zone when none is named)."""
        with _EC2_LOCK:
            self.faults.restore(zones or None)

    def hold(self, *services: str) -> None:
        """Requests to these services (e.g. "sts") get no answer until `release`: an endpoint
        that is not reachable, as STS is from a private subnet without an STS VPC endpoint.
        The caller sees its own timeout; each held request is listed in `held` on arrival."""
        with self._log_lock:
            self._held_services.update(services)
            self._released.clear()

    def release(self) -> None:
        """Answer the held requests (their callers may have given up) and hold no more."""
        with self._log_lock:
            self._held_services.clear()
            self._released.set()

    def big_account(self, eni_threshold: int | None = 1000) -> None:
        """Past this many ENIs, an unpaginated, unnarrowed DescribeNetworkInterfaces fails."""
        with _EC2_LOCK:
            self.pages.big_account_enis = eni_threshold

    # ---- the call log ------------------------------------------------------------------

    def mutating_calls(self) -> list[Call]:
        """The logged calls that would have changed AWS state."""
        return [c for c in self._snapshot() if c.mutating]

    def calls_to(self, action: str, *, dry_run: bool | None = None) -> list[Call]:
        """The logged calls of one action, in order (only DryRun ones, or none, when told)."""
        return [
            c
            for c in self._snapshot()
            if c.action == action and (dry_run is None or c.dry_run is dry_run)
        ]

    def reset_log(self) -> None:
        """Forget the logged calls."""
        with self._log_lock:
            self.calls.clear()

    def _snapshot(self) -> list[Call]:
        with self._log_lock:
            return list(self.calls)

    def _record(
        self,
        service: str,
        action: str,
        params: dict[str, Any],
        sent_at: float,
        at: float,
        result: Any,
        lost_reply: bool = False,
    ) -> None:
        status, _headers, body = result
        call = Call(
            service=service,
            action=action,
            params=params,
            at=at,
            error=_error_code(int(status), body),
            dry_run=params.get("DryRun") is True,
            lost_reply=lost_reply,
            sent_at=sent_at,
        )
        with self._log_lock:
            self.calls.append(call)
        if self.on_call is not None:
            # Runs after AWS state changed and before the caller reads the answer: a test
            # can kill the calling process here to model a crash right after a step.
            self.on_call(call)

    # ---- dispatch ----------------------------------------------------------------------

    def dispatch(self, response: Any, original: Any) -> Any:
        """Answer one request moto received: log it and, for EC2, apply the rules around moto."""
        sent_at = self.clock()
        service = str(response.service_name or "")
        action = str(response._get_action() or "")
        params = _params_of(response)
        if service in self._held_services:
            with self._log_lock:
                self.held.append(Call(service, action, params, sent_at, sent_at, None, False))
            self._released.wait()
        latency = self.latency_s
        if latency > 0 and service in LATENCY_SERVICES:
            # The round trip to AWS: spent before AWS acts, outside the EC2 lock.
            self._sleep(latency)
        at = self.clock() if latency > 0 else sent_at
        if service != "ec2":
            result = original(response)
            self._record(service, action, params, sent_at, at, result)
            return result
        with _EC2_LOCK:
            result, lost = self._dispatch_ec2(response, original, action, params)
        self._record(service, action, params, sent_at, at, result, lost)
        return result

    def _dispatch_ec2(
        self, response: Any, original: Any, action: str, params: dict[str, Any]
    ) -> tuple[Any, bool]:
        """The answer, and whether it is a lost reply (AWS applied the call, answered 500)."""
        backend = response.ec2_backend
        now = self.clock()
        self.rules.advance(now)
        try:
            self._gate(backend, action, params, now)
            handled = self.rules.before(backend, action, params, now)
            if handled is None:
                handled = self.pages.before(backend, action, params)
            if handled is not None:
                result = self._answer(response, handled)
            else:
                result = original(response)
                if int(result[0]) < 300:
                    self.rules.after(backend, action, params, now)
                    self.rules.advance(now)
        except _Answer as answer:
            return self._fail(response, answer.exc, answer.status), False
        except ServiceException as exc:
            return self._fail(response, exc, None), False
        if int(result[0]) < 300 and self.faults.take_lost_reply(action, params):
            return self._fail(response, lost_reply_error(), 500), True
        return result, False

    def _gate(self, backend: Any, action: str, params: dict[str, Any], now: float) -> None:
        """Throttling, faults, disrupted AZs, IAM denials and DryRun, in the order AWS meets them."""
        bucket = bucket_for(action, params) if self.token_buckets else None
        if bucket is not None and not self._buckets.get(bucket, now).take(now):
            raise _Answer(error("RequestLimitExceeded", _MESSAGE_OF["RequestLimitExceeded"]), 503)
        if (
            self._fault_rate > 0
            and (not self._fault_actions or action in self._fault_actions)
            and self._random.random() < self._fault_rate
        ):
            code = self._random.choice(self._fault_codes)
            message = _MESSAGE_OF.get(code, f"Injected fault: {code}.")
            raise _Answer(error(code, message), _STATUS_OF.get(code))
        try:
            self.faults.check_read(backend, action, params)
        except ServiceException as exc:
            raise _Answer(exc, _STATUS_OF["Unavailable"]) from None
        if action in self._denied:
            raise _Answer(unauthorized(action), 403)
        try:
            self.iam.check(backend, action, params)
        except ServiceException as exc:
            raise _Answer(exc, 403) from None
        if params.get("DryRun") is True:
            raise _Answer(
                error("DryRunOperation", "Request would have succeeded, but DryRun flag is set."),
                412,
            )

    @staticmethod
    def _answer(response: Any, result: ActionResult) -> Any:
        status, headers, body = response.serialized(result)
        headers, body = response._enrich_response(headers, body)
        return status, headers, body

    @staticmethod
    def _fail(response: Any, exc: ServiceException, status: int | None) -> Any:
        code, headers, body = response.serialized(ActionResult(exc))
        code = status or code
        headers["status"] = code
        headers, body = response._enrich_response(headers, body)
        return code, headers, body
