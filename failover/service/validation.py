"""`failover validate` against AWS: what would make a failover of each group fail, found first.

Per group: the resources exist and follow AWS's rules (planner.validation_problems); every
member and resource carries the `failover:group` tag a tag-scoped policy asks for (read
from the Describe answers); and IAM permits, by DryRun against real ids, the calls on the
resource's holder and the calls that put the resource on each other member. A DryRun that
gives no verdict (an unknown id, throttling, an action without DryRun) is a note saying
so, never a pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from failover.core.errors import CloudError, PermissionDeniedError
from failover.core.model import GroupView, Mode, Permission
from failover.core.planner import validation_problems
from failover.core.ports import Cloud

if TYPE_CHECKING:
    from failover.config import Group

TAG_KEY = "failover:group"


@dataclass
class Findings:
    """What `validate` reports: problems (exit 2) and notes (what could not be checked)."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def validate_groups(cloud: Cloud, groups: Sequence[Group]) -> Findings:
    """Every problem and note of every group, each line naming the group."""
    found = Findings()
    for group in groups:
        try:
            view = cloud.observe(group)
        except PermissionDeniedError as exc:
            found.problems.append(f"group {group.name}: cannot read AWS: {exc}")
            continue
        found.problems += [
            f"group {group.name}: {group.resource}: {p}" for p in validation_problems(view, group)
        ]
        try:
            found.problems += [f"group {group.name}: {p}" for p in untagged(cloud, group, view)]
            checks = _permissions(cloud, group, view)
        except CloudError as exc:
            found.problems.append(f"group {group.name}: cannot check tags and permissions: {exc}")
            continue
        found.problems += [
            f"group {group.name}: {label}: {p.detail}" for label, p in checks if p.refused
        ]
        found.notes += [
            f"group {group.name}: {label}: {p.detail}" for label, p in checks if not p.checked
        ]
    return found


def untagged(cloud: Cloud, group: Group, view: GroupView) -> list[str]:
    """Each member, floating resource and (secondary-ip, eip) member eth0 without the tag.

    Route mode's ReplaceRoute is authorized against the route table alone: its eth0s need none.
    """
    why = f"has no {TAG_KEY} tag: a tag-scoped policy (policies/failover-ec2.json) refuses it"
    missing = [
        f"instance {m.instance_id} {why}" for m in view.members if m.exists and not _tagged(m.tags)
    ]
    if group.mode is Mode.ENI and view.eni is not None and not _tagged(view.eni.tags):
        missing.append(f"ENI {view.eni.eni_id} {why}")
    if group.eip and view.address is not None and not _tagged(view.address.tags):
        missing.append(f"Elastic IP {group.eip} {why}")
    if group.mode in (Mode.SECONDARY_IP, Mode.EIP):
        # The calls that move them name the target's eth0 (a route's IAM resource is the table).
        eth0s = {m.primary_eni_id: m.instance_id for m in view.members if m.primary_eni_id}
        for eni_id, eni in sorted(cloud.describe_enis(list(eth0s)).items()):
            if not _tagged(eni.tags):
                missing.append(f"eth0 {eni_id} of {eth0s[eni_id]} {why}")
    return missing


def _tagged(tags: tuple[tuple[str, str], ...]) -> bool:
    return any(key == TAG_KEY for key, _ in tags)


def _permissions(cloud: Cloud, group: Group, view: GroupView) -> list[tuple[str, Permission]]:
    """(label, verdict) of the calls on the holder, then of the calls towards every other member."""
    checks = [(p.action, p) for p in cloud.permissions_to_leave(group, view)]
    for member in view.members:
        if member.exists and member.instance_id != view.active:
            checks += [
                (f"{p.action} to {member.instance_id}", p)
                for p in cloud.permissions_to_take(group, view, member.instance_id)
            ]
    return checks
