"""`failover run`: APScheduler drives health passes; signals stop or reload it.

One job per distinct interval runs the groups that share it, so each group is checked
on its own interval while the describes of a pass stay batched. Jobs never overlap
(coalesce, max one instance). SIGTERM lets the in-flight pass (and its moves) finish,
then exits 0; SIGHUP reloads the config, keeping the old one if the new one is invalid.
The daemon holds its groups' leases (dynamodb: shared with the other daemons on the
table; sqlite: the claims in the state file, whose lock `failover run` takes first, so it
is the only daemon there): a Spreader job, every lease round (see `lease_round_s`), shares
the groups among the live daemons and hands a group over to a `failover move` that asks
for it (failover/coord/handover.py); a pass probes and moves only the groups this daemon
holds, and SIGTERM gives the leases back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import signal
import threading
from collections import defaultdict
from collections.abc import Callable, Collection
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from failover import config as config_module
from failover.core.errors import CloudError, ConfigError, FailoverError
from failover.service.blindness import Change, Sight

if TYPE_CHECKING:
    from failover.config import Group, Settings
    from failover.coord.fence import Fence
    from failover.service.monitor import Alert, Monitor

log = logging.getLogger(__name__)


class Daemon:
    """Schedules passes of a Monitor; `serve` blocks until SIGTERM/SIGINT."""

    def __init__(
        self,
        settings: Settings,
        config_path: Path,
        monitor: Monitor,
        *,
        on_tick: Callable[[], None] | None = None,
        on_first_pass: Callable[[], None] | None = None,
        on_pass: Callable[[], None] | None = None,
        on_leases: Callable[[Collection[str]], None] | None = None,
        fence: Fence | None = None,
        sight: Sight | None = None,
        alert: Alert | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        """`stop`: set by a SIGTERM or SIGINT the command received before `serve` took them over."""
        self.settings, self.config_path, self.monitor = settings, config_path, monitor
        # Passes that could not read AWS: blind after a few in a row (alerted, /healthz 503).
        self.sight = sight or Sight()
        self._alert = alert
        # The fence says which groups are ours (None: all of them, for an embedded daemon).
        self._fence = fence
        self._spreader = None
        if fence is not None:
            from failover.coord.spread import Spreader

            self._spreader = Spreader(fence.lease, fence)
        self._on_pass = on_pass
        self._on_leases = on_leases  # told the groups held after each round that changed them
        self._stop = stop if stop is not None else threading.Event()
        self._reload = threading.Event()
        self._job_of: dict[str, str] = {}  # group -> the id of the job that passes it
        self._on_tick, self._on_first_pass = on_tick, on_first_pass
        self._first_pass_done = threading.Event()
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=4)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    def serve(self) -> int:
        """Run until told to stop; return the exit code."""
        keeper = None
        if self._fence is not None:
            from failover.coord.fence import Keeper

            # Heartbeats on a thread of their own, the first one now: a lease round or pass
            # slowed down by a busy table must not starve the session (it would void every
            # lease held).
            keeper = Keeper(self._fence).start()
        try:
            signal.signal(signal.SIGTERM, self._on_stop)
            signal.signal(signal.SIGINT, self._on_stop)
            signal.signal(signal.SIGHUP, self._on_hup)
            if self._stop.is_set():
                log.info("stopped before the first pass")
                return 0
            self.rebalance()  # before the first pass: it acts only on groups held
            self._schedule(self.settings)
            self._scheduler.start()
            log.info(
                "failover daemon started: %d groups, config %s",
                len(self.settings.groups),
                self.config_path,
            )
            while not self._stop.is_set():
                self._stop.wait(0.2)
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
            log.info("stopping: letting the in-flight pass and its moves finish")
            self._scheduler.shutdown(wait=True)
            log.info("stopped")
            return 0
        finally:
            if keeper is not None:
                keeper.close()  # gives every lease back

    def stop(self) -> None:
        self._stop.set()

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self._stop.set()

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        self._reload.set()

    def reload(self) -> bool:
        """Re-read the config; an invalid one is logged and the running one kept.

        Either way the next pass reads every member's interfaces again: an operator's
        SIGHUP is also a request to look at AWS afresh."""
        self.monitor.forget_topology()
        try:
            new = config_module.load(self.config_path)
        except ConfigError as exc:
            log.error("config reload rejected, keeping the running config: %s", exc)
            return False
        if (new.aws, new.state, new.metrics, new.notify) != (
            self.settings.aws,
            self.settings.state,
            self.settings.metrics,
            self.settings.notify,
        ):
            log.error(
                "config reload rejected: aws, state, metrics and notify changes need a restart; keeping the running config"
            )
            return False
        self.settings = new
        self._schedule(new)
        log.info("config reloaded: %d groups", len(new.groups))
        return True

    def _schedule(self, settings: Settings) -> None:
        """One job per interval; a reload replaces them all (jobs in flight finish first)."""
        by_interval: dict[float, list[Group]] = defaultdict(list)
        for group in settings.groups:
            by_interval[group.policy.interval_s].append(group)
        for job in self._scheduler.get_jobs():
            job.remove()
        if self._fence is not None:
            self._scheduler.add_job(
                self.rebalance,
                "interval",
                seconds=lease_round_s(settings, self._fence.lease.renew_every_s),
                id="lease-rebalance",
                name="renew, take and give back group leases",
                coalesce=True,
                max_instances=1,
                replace_existing=True,
            )
        self._job_of = {
            g.name: f"pass-{interval}" for interval, gs in by_interval.items() for g in gs
        }
        for interval, groups in sorted(by_interval.items()):
            self._scheduler.add_job(
                self._tick,
                "interval",
                seconds=interval,
                args=[groups],
                id=f"pass-{interval}",
                name=f"health pass every {interval}s ({len(groups)} groups)",
                coalesce=True,
                max_instances=1,
                next_run_time=_now(),
                replace_existing=True,
            )

    def _saw_aws(self, change: Change | None) -> None:
        """Say a change of sight once: a blind daemon alerts; a recovered one logs and alerts."""
        if change is None:
            return
        if self._alert is not None:
            self._alert(change.event, "*", change.message)  # its chain logs it too
        elif change.event == "blind":
            log.error("%s", change.message)
        else:
            log.warning("%s", change.message)

    def rebalance(self) -> None:
        """One Spreader round: renew, take and give back leases (and hand over those asked
        for); the fence learns the result."""
        if self._spreader is None or self._fence is None:
            return
        before = set(self._fence.tokens())
        try:
            held = self._spreader.rebalance([g.name for g in self.settings.groups])
        except FailoverError as exc:
            log.error("lease round failed: %s; keeping what the leases still grant", exc)
            return
        except Exception:
            log.exception("lease round failed; keeping what the leases still grant")
            return
        taken, lost = sorted(held.keys() - before), sorted(before - held.keys())
        if taken or lost:
            log.info(
                "holding the leases of %d groups (%d taken: %s; %d given up or lost: %s)",
                len(held),
                len(taken),
                _some(taken),
                len(lost),
                _some(lost),
            )
            asked = self._fence.lease.requested()
            for group in (g for g in lost if g in asked):
                log.info("handed group %s over to %s (a failover move)", group, asked[group])
            if self._on_leases is not None:
                self._on_leases(held.keys())
            self._pass_now(taken)

    def _pass_now(self, groups: Collection[str]) -> None:
        """Run the pass of a newly taken group with an open move now, not an interval later:
        a dead holder's half-done move is resumed at the start of a pass over its group."""
        if not groups:
            return
        try:
            unfinished = self.monitor.store.open_move_groups() & set(groups)
        except FailoverError as exc:
            log.warning("cannot read the journal's open moves (%s); they resume on schedule", exc)
            return
        jobs = {self._job_of[g] for g in unfinished if g in self._job_of}
        for job in jobs:
            with contextlib.suppress(JobLookupError):  # a reload replacing the jobs
                self._scheduler.modify_job(job, next_run_time=_now())

    def _tick(self, groups: list[Group]) -> None:
        """One scheduled pass; the only catch-all: a bad pass must not kill the daemon.

        AWS's own errors are expected (one line, counted towards blindness); anything
        else is a bug and keeps its traceback.
        """
        if self._stop.is_set():
            return
        if self._fence is not None:
            groups = [g for g in groups if self._fence.holds(g.name)]
        try:
            outcomes = self.monitor.run_pass(groups) if groups else []
            for outcome in outcomes:
                if outcome.outcome not in ("stay",):
                    log.info("%s", outcome.summary())
            if groups:
                self._saw_aws(self.sight.pass_succeeded())
            if self._on_pass is not None:
                self._on_pass()
        except CloudError as exc:
            log.error("health pass could not read AWS: %s; the next one runs on schedule", exc)
            self._saw_aws(self.sight.pass_failed(f"{exc.action}: {exc.code}"))
        except FailoverError as exc:
            log.error("health pass failed: %s; the next one runs on schedule", exc)
        except Exception:
            log.exception("health pass failed; the next one runs on schedule")
        finally:
            if self._on_tick is not None:
                self._on_tick()
            if not self._first_pass_done.is_set():
                self._first_pass_done.set()
                if self._on_first_pass is not None:
                    self._on_first_pass()


def lease_round_s(settings: Settings, renew_every_s: float) -> float:
    """How often the lease round runs: half the shortest health interval, and at least twice
    per renew interval (TTL / 6). A dead daemon's groups are taken over a TTL and at most two
    rounds after its last heartbeat (a round to first see it, a TTL, a round to act): within
    TTL + one interval, and never later than 1.33 x TTL. A round in the steady state is one
    Query of the heartbeats, so rounds this often cost little."""
    shortest = min((g.policy.interval_s for g in settings.groups), default=renew_every_s)
    return min(renew_every_s / 2, shortest / 2)


def _some(names: list[str], limit: int = 10) -> str:
    """A log-sized list: the first `limit` names, then how many more."""
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return (", ".join(names[:limit]) or "none") + more


def _now() -> dt.datetime:
    return dt.datetime.now(tz=dt.UTC)
