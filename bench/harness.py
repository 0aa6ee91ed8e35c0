"""Shared bench machinery: an in-process sandbox, loopback listeners, event recording, call counting.

Every figure the benches report is computed from recorded events, on one clock
(`time.monotonic`): the StrictLayer's call log (`Call.at`), botocore's
provide-client-params/after-call timestamps around every AWS call, the engine's step
events, the monitor's alerts and pass boundaries, and each sleep of an instrumented
clock. Nothing is estimated from configuration except the physical limits the
figures are divided by.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

REGION = "us-east-1"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench",
    "AWS_DEFAULT_REGION": REGION,
}
BENCH_DIR = Path(__file__).resolve().parent


def fake_aws_env() -> None:
    """Fake credentials only, so nothing can reach real AWS (the sandbox answers everything)."""
    os.environ.update(FAKE_AWS_ENV)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE"):
        os.environ.pop(name, None)
    os.environ["AWS_CONFIG_FILE"] = "/dev/null"
    # moto's ~1,300 default AMIs make each launched instance scan them all (RunInstances of
    # 10,000 instances: minutes); the sandbox's worlds use a made-up AMI id anyway.
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"


def process_env() -> dict[str, str]:
    """The environment a `failover` or `python` process of a bench gets: fake credentials only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(FAKE_AWS_ENV)
    env.update({"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
    env.pop("FAILOVER_CONFIG", None)
    return env


def import_boto3_s(repeats: int) -> list[float]:
    """Seconds `python -c 'import boto3'` takes, process start to exit, `repeats` times after a
    warm-up: the start-up floor of any AWS-using Python command."""
    import subprocess
    import sys

    argv, env = [sys.executable, "-c", "import boto3"], process_env()
    out = []
    for k in range(repeats + 1):
        start = time.monotonic()
        subprocess.run(argv, env=env, capture_output=True, check=True)
        if k:
            out.append(time.monotonic() - start)
    return out


def log_to_file(path: Path) -> None:
    """failover's INFO log (what `failover run` writes) to `path`; the libraries' chatter off."""
    import logging

    logging.basicConfig(
        level=logging.INFO,
        handlers=[logging.FileHandler(path)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    for name in ("botocore", "boto3", "urllib3", "werkzeug", "moto"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.ERROR)


def machine() -> dict[str, str]:
    """What the figures were measured on."""

    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "absent"

    return {
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "moto": version("moto"),
        "boto3": version("boto3"),
        "botocore": version("botocore"),
        "platform": platform.platform(terse=True),
    }


# ---- statistics --------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation between closest ranks; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 0.5)


# ---- loopback services -------------------------------------------------------------------


class Listener:
    """A TCP service on a loopback address that accepts and closes; `stop` makes it refuse.

    `stop` shuts the listening socket down first (new connections are refused from that
    instant, which is what `stop` returns), then joins the accept thread.
    """

    def __init__(self, host: str, port: int = 0, backlog: int = 1024) -> None:
        if not host.startswith("127."):
            raise ValueError("benchmarks only listen on loopback")
        self.host, self.port, self.backlog = host, port, backlog
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Listener:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(self.backlog)
        self.port = int(sock.getsockname()[1])
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _serve(sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return  # shut down
            conn.close()

    def stop(self) -> float:
        """Refuse connections from now on; returns the monotonic time they started being refused."""
        sock, self._sock = self._sock, None
        if sock is None:
            return time.monotonic()
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        at = time.monotonic()
        if self._thread is not None:
            self._thread.join(timeout=5)
        sock.close()
        return at

    @property
    def running(self) -> bool:
        return self._sock is not None


def free_port(host: str = "127.0.0.2") -> int:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# ---- event recording ---------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Something that happened at monotonic time `t` on thread `thread`."""

    t: float
    kind: str
    thread: int
    data: dict[str, Any] = field(default_factory=dict)


class Recorder:
    """A thread-safe, append-only log of Events."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def mark(self, kind: str, t: float | None = None, **data: Any) -> float:
        at = time.monotonic() if t is None else t
        event = Event(at, kind, threading.get_ident(), data)
        with self._lock:
            self.events.append(event)
        return at

    def of(self, kind: str, since: float = -math.inf, until: float = math.inf) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e.kind == kind and since <= e.t <= until]

    def clear(self) -> None:
        with self._lock:
            self.events.clear()


class RecordingClock:
    """The real clock (wall, monotonic, sleep), logging every sleep as a `sleep` event."""

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            start = time.monotonic()
            time.sleep(seconds)
            self._recorder.mark("sleep", t=start, end=time.monotonic())


class AwsTimer:
    """Records every call a boto3 client makes: `aws` events from parameter checking to the parsed answer.

    The span covers botocore's whole call (serializing, signing, retries and their
    backoff, the sandbox answering, parsing): everything that is not failover's own code.
    """

    def __init__(self, recorder: Recorder) -> None:
        self._recorder = recorder

    def attach(self, client: Any) -> Any:
        events = client.meta.events
        events.register("provide-client-params", self._start)
        events.register("after-call", self._end)
        events.register("after-call-error", self._end)
        return client

    @staticmethod
    def _start(context: dict[str, Any] | None = None, **_: Any) -> None:
        if context is not None:
            context["bench_start"] = time.monotonic()

    def _end(self, context: dict[str, Any] | None = None, model: Any = None, **_: Any) -> None:
        if context is None or "bench_start" not in context:
            return
        start = context.pop("bench_start")
        self._recorder.mark("aws", t=start, end=time.monotonic(), action=getattr(model, "name", ""))


def busy_s(recorder: Recorder, kind: str, thread: int | None, since: float, until: float) -> float:
    """Seconds of `kind` spans (events with an `end`) on `thread` clipped to [since, until]."""
    total = 0.0
    for e in recorder.of(kind, since - 3600.0, until):
        if thread is not None and e.thread != thread:
            continue
        total += max(0.0, min(e.data["end"], until) - max(e.t, since))
    return total


# ---- call log ----------------------------------------------------------------------------

READ_PREFIXES = ("Describe", "Get", "List")


def is_read(call: Any) -> bool:
    return bool(call.service == "ec2" and call.action.startswith(READ_PREFIXES))


def ec2_calls(layer: Any, since: float = -math.inf, until: float = math.inf) -> list[Any]:
    """The EC2 calls the layer logged in [since, until]."""
    return [c for c in list(layer.calls) if c.service == "ec2" and since <= c.at <= until]


def count_calls(calls: Sequence[Any]) -> dict[str, int]:
    """Reads, mutating calls (attempts, and those answered without error) and throttled answers."""
    return {
        "read": sum(1 for c in calls if is_read(c)),
        "mutating": sum(1 for c in calls if c.mutating),
        "mutating_ok": sum(1 for c in calls if c.mutating and c.error is None),
        "throttled": sum(1 for c in calls if c.error == "RequestLimitExceeded"),
    }


# ---- the in-process sandbox and the real orchestrator wired to it ------------------------


@dataclass
class Box:
    """moto in-process behind a StrictLayer, a client to build and inspect with, a scratch dir."""

    layer: Any
    ec2: Any
    tmp: Path


@contextmanager
def inprocess(**layer_kwargs: Any) -> Iterator[Box]:
    """`mock_aws` with a StrictLayer(**layer_kwargs) installed, for the block."""
    fake_aws_env()
    import boto3
    from moto import mock_aws

    from failover.sandbox.strict import StrictLayer

    with TemporaryDirectory(prefix="failover-bench-") as tmp, mock_aws():
        layer = StrictLayer(**layer_kwargs)
        layer.install()
        try:
            yield Box(layer, boto3.client("ec2", region_name=REGION), Path(tmp))
        finally:
            layer.uninstall()


def config_doc(
    groups: list[dict[str, Any]],
    state_path: Path | str,
    endpoint_url: str | None = None,
    **defaults: Any,
) -> dict[str, Any]:
    """A config document (what config.yaml holds) over `groups`."""
    aws: dict[str, Any] = {"region": REGION}
    if endpoint_url:
        aws["endpoint_url"] = endpoint_url
    return {"aws": aws, "state": {"path": str(state_path)}, "defaults": defaults, "groups": groups}


def group_doc(
    name: str,
    mode: str,
    members: Sequence[tuple[str, str | None]],
    checks: list[dict[str, Any]],
    *,
    eni: str | None = None,
    ip: str | None = None,
    eip: str | None = None,
    cidr: str | None = None,
    route_tables: Sequence[str] = (),
) -> dict[str, Any]:
    """One group's config: members as (instance_id, probe address or None), in preference order."""
    doc: dict[str, Any] = {
        "name": name,
        "mode": mode,
        "members": [{"instance": i, "address": a} if a else {"instance": i} for i, a in members],
        "checks": checks,
    }
    if mode == "eni":
        doc.update(eni=eni, device_index=1)
    elif mode == "secondary-ip":
        doc.update(ip=ip, **({"eip": eip} if eip else {}))
    elif mode == "route":
        doc.update(cidr=cidr, route_tables=list(route_tables))
    else:
        doc.update(eip=eip)
    return doc


@dataclass
class Rig:
    """The real orchestrator (clients, adapter, store, engine, monitor) with every hook recorded."""

    settings: Any
    recorder: Recorder
    clock: RecordingClock
    ec2: Any
    cloud: Any
    store: Any
    engine: Any
    monitor: Any

    def close(self) -> None:
        self.store.close()


def wire(doc: dict[str, Any], recorder: Recorder | None = None, max_parallel_moves: int = 8) -> Rig:
    """Build what `failover run` builds (wiring.wired + Monitor), with recording hooks injected."""
    from failover.aws.clients import make_client
    from failover.aws.ec2 import Ec2Cloud
    from failover.aws.pacing import Pacer
    from failover.config import parse
    from failover.probes.runner import run_probes
    from failover.service.engine import Engine
    from failover.service.monitor import Monitor
    from failover.wiring import open_store

    rec = recorder or Recorder()
    settings = parse(doc, "bench")
    timer = AwsTimer(rec)
    ec2 = timer.attach(make_client(settings.aws, "ec2"))
    sts = timer.attach(make_client(settings.aws, "sts"))
    clock = RecordingClock(rec)
    # Paced like `failover run` (wiring.make_cloud): the AZ-failure figures depend on it.
    cloud = Ec2Cloud(ec2, sts, clock.now, Pacer(clock.monotonic, clock.sleep))
    store = open_store(settings.state)

    def on_step(step: Any, event: Any) -> None:
        rec.mark("step", step=str(event.kind), phase=event.phase, detail=event.detail)

    def prober(targets: Sequence[Any]) -> list[Any]:
        rec.mark("probe-start", n=len(targets))
        results = run_probes(targets)
        rec.mark("probe-end", n=len(results), failed=sum(1 for r in results if not r.ok))
        return results

    def alert(event: str, group: str, message: str) -> None:
        rec.mark("alert", event=event, group=group, message=message)

    engine = Engine(cloud, store, clock, on_step=on_step)
    monitor = Monitor(
        cloud,
        store,
        engine,
        clock,
        prober=prober,
        alert=alert,
        max_parallel_moves=max_parallel_moves,
    )
    return Rig(settings, rec, clock, ec2, cloud, store, engine, monitor)


class PassDriver:
    """Runs Monitor passes on a fixed schedule in a thread, as the daemon's interval job does.

    Like APScheduler with coalesce and one instance: a pass that overruns its slot
    delays the next one to the next free slot; missed slots are not made up.
    """

    def __init__(self, rig: Rig, interval_s: float) -> None:
        self.rig, self.interval_s = rig, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-passes", daemon=True)
        self.passes = 0
        self.errors: list[str] = []

    def start(self) -> PassDriver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=600)

    def _loop(self) -> None:
        groups = list(self.rig.settings.groups)
        rec = self.rig.recorder
        next_at = time.monotonic()
        while not self._stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            start = rec.mark("pass-start", n=self.passes)
            try:
                outcomes = self.rig.monitor.run_pass(groups)
                moved = sum(1 for o in outcomes if o.outcome == "moved")
                rec.mark("pass-end", n=self.passes, start=start, moved=moved)
            except Exception as exc:  # the daemon's own guard around one tick
                self.errors.append(f"{type(exc).__name__}: {exc}")
                rec.mark("pass-end", n=self.passes, start=start, error=str(exc))
            self.passes += 1
            next_at += self.interval_s
            while next_at <= time.monotonic():
                next_at += self.interval_s

    def last_pass_start(self) -> float:
        starts = self.rig.recorder.of("pass-start")
        return starts[-1].t if starts else math.nan

    def wait_passes(self, count: int, timeout_s: float = 60.0) -> None:
        """Block until `count` more passes have ended."""
        target = len(self.rig.recorder.of("pass-end")) + count
        deadline = time.monotonic() + timeout_s
        while len(self.rig.recorder.of("pass-end")) < target and time.monotonic() < deadline:
            time.sleep(0.01)


def wait_for(predicate: Callable[[], bool], timeout_s: float, poll_s: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return predicate()
