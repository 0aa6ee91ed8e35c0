"""Which member a move goes to: AWS's rules, IAM's verdict (DryRun) and the Force-detach memory.

Checked before the first mutating call of a move, so a move that cannot finish never starts
(IAM's verdicts may have been asked on the move's read's round trip: failover/service/early.py):
a target IAM refuses is passed over like an unhealthy one; so is a member the group's ENI was
Force-detached from until it is stopped and started (its LaunchTime changes), because AWS
may keep that device index busy until then. The journal remembers the Force (the
wait-detached step's detail), so the memory survives restarts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from failover.core.durations import when
from failover.core.errors import PermissionDeniedError, RefusedError
from failover.core.model import GroupView, Instance, Mode, Permission, StepKind
from failover.core.planner import candidates, rule_violation
from failover.core.ports import Cloud, Store

if TYPE_CHECKING:
    from failover.config import Group

# How a forced detach is journaled (the wait-detached step's detail starts with it).
FORCED_DETAIL = "forced"
# How many of the group's last moves are searched for a Force detach still in effect.
FORCED_MEMORY_MOVES = 50


class Screened:
    """The target a screening picked (None: none fit), and why each one before it was passed over."""

    def __init__(self) -> None:
        self.picked: str | None = None
        self.skipped: list[str] = []
        self.denied: list[tuple[str, Permission]] = []  # (target, IAM's refusal)

    def refusal(self, group: Group) -> RefusedError | PermissionDeniedError:
        """Why no target fit: IAM's refusal when that is all there was, else the rules'."""
        if self.denied and len(self.denied) == len(self.skipped):
            target, p = self.denied[0]
            return PermissionDeniedError(p.action, p.code, p.detail, target)
        return RefusedError(group.name, group.resource, "; ".join(self.skipped))


class Targets:
    """Chooses and screens the targets of a group's moves."""

    def __init__(self, cloud: Cloud, store: Store) -> None:
        self.cloud, self.store = cloud, store

    def choose(self, view: GroupView, group: Group, requested: str | None) -> str:
        """`requested` if AWS's rules allow it, else the first running, rule-clean standby."""
        if requested is not None:
            if requested == view.active:
                return requested
            if (violation := rule_violation(view, group, requested)) is not None:
                raise RefusedError(group.name, group.resource, violation)
            return requested
        options = candidates(view, group)
        if not options:
            raise RefusedError(
                group.name,
                group.resource,
                "no other member is running in the group's AZ with the device index free",
            )
        return options[0]

    def screen(
        self,
        group: Group,
        view: GroupView,
        options: Sequence[str],
        *,
        force: bool = False,
        into: Screened | None = None,
        asked: Mapping[str, Permission] | None = None,
    ) -> Screened:
        """The first of `options` fit to take the resource now, and why each one before it is not.

        `force` (the operator's) sets the Force-detach memory aside, never IAM. `asked`: IAM's
        verdicts sent with the read (Cloud.observe_asking), each standing for its own call only:
        a refusal among them passes its target over as one asked now would.
        """
        forced = self.forced_detaches(group) if group.mode is Mode.ENI and not force else {}
        out = into if into is not None else Screened()
        for option in options:
            member = view.member(option)
            forced_at = forced.get(option)
            if forced_at is not None and not _restarted_since(member, forced_at):
                out.skipped.append(
                    f"{option}: a Force detach from it at {when(forced_at)} may keep device index "
                    f"{group.device_index} busy until it is stopped and started (--force overrides)"
                )
                continue
            verdicts = self.cloud.permissions_to_take(group, view, option, asked)
            refused = [p for p in verdicts if p.refused]
            if refused:
                out.skipped.append(f"{option}: {'; '.join(p.detail for p in refused)}")
                out.denied.append((option, refused[0]))
                continue
            out.picked = option
            return out
        return out

    def after_refusal(
        self, group: Group, view: GroupView, source: str | None, tried: set[str]
    ) -> Screened:
        """After a target refused mid-move: the next fit candidate, else the member being left.

        Never leave the ENI detached while any member can take it, even the one it came from
        (a Force detach from it in this very move is then no reason not to try).
        """
        leaving = {source} if source else set()
        options = candidates(view, group, exclude=frozenset(tried | leaving))
        out = self.screen(group, view, options)
        if (
            out.picked is None
            and source is not None
            and source not in tried
            and rule_violation(view, group, source) is None
        ):
            self.screen(group, view, [source], force=True, into=out)
        return out

    def forced_detaches(self, group: Group) -> dict[str, float]:
        """Instances this group's ENI was Force-detached from, and when (wall clock), per the journal."""
        forced: dict[str, float] = {}
        for record in self.store.history(group.name, limit=FORCED_MEMORY_MOVES):
            for event in record.steps:
                if (
                    record.source is not None
                    and event.kind == StepKind.WAIT_DETACHED
                    and event.phase == "done"
                    and event.detail.startswith(FORCED_DETAIL)
                ):
                    forced[record.source] = max(forced.get(record.source, 0.0), event.at)
        return forced


def _restarted_since(member: Instance | None, at: float) -> bool:
    """Whether the member was (re)launched after `at`. LaunchTime has whole seconds, and no
    stop and start fits in the second of a Force detach: that second counts as after."""
    return member is not None and member.launched_at is not None and member.launched_at >= int(at)
