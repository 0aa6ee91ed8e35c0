"""A health pass's reads of EC2: the members' topology from a cache, their state and ownership fresh.

DescribeInstances answers are large (interfaces, private IPs, tags) and what they carry
beyond the state changes only when something is moved; parsing them was most of a pass
over 10,000 members. So a pass reads, every time:
- each member's state and status checks: DescribeInstanceStatus with IncludeAllInstances
  (stopped instances included), per AZ, 100 ids a call;
- the floating resources, by id: the ENI (DescribeNetworkInterfaces), the Elastic IP
  (DescribeAddresses), the route tables (DescribeRouteTables), and in secondary-ip groups
  the members' ENIs, whose private IPs say who holds the IP;
and the topology (AZ, subnets, interfaces, device indexes, private IPs) from
DescribeInstances per AZ only for members it does not hold: at start, after `forget` (a
reload, a move, the refresh period), for a member whose state changed, and for the members
of a group whose fresh ownership does not fit the topology held (a move made behind our
back, an owner that is no member). Those are re-read in the same pass, so no pass judges
a group on a topology its ownership read contradicts. A move never uses this cache: the
engine reads every step fresh (Ec2Cloud.observe).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from failover.aws import ec2_routes
from failover.core.errors import CloudError
from failover.core.model import UNREAD_STATE, Address, Eni, GroupView, Instance, Mode

if TYPE_CHECKING:
    from failover.aws.ec2 import Ec2Cloud
    from failover.config import Group

Status = tuple[str, bool | None, bool]


class TopologyCache:
    """What DescribeInstances last said of each member; thread-safe.

    A generation counter keeps a read that began before a `forget` from being kept after it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._instances: dict[str, Instance] = {}
        self._generation = 0

    def forget(self, instance_ids: Collection[str] | None = None) -> None:
        """The next pass reads these members' topology again (all of them when None)."""
        with self._lock:
            self._generation += 1
            if instance_ids is None:
                self._instances.clear()
            else:
                for i in instance_ids:
                    self._instances.pop(i, None)

    def held(self, instance_ids: Sequence[str]) -> tuple[dict[str, Instance], int]:
        """The members held, and the generation to hand back to `keep`."""
        with self._lock:
            found = {i: self._instances[i] for i in instance_ids if i in self._instances}
            return found, self._generation

    def keep(self, instances: Mapping[str, Instance], generation: int) -> None:
        """Hold `instances`, unless a `forget` came since `generation` was handed out."""
        with self._lock:
            if generation == self._generation:
                self._instances.update(instances)


def observe_pass(
    cloud: Ec2Cloud, ec2: Any, cache: TopologyCache, groups: Sequence[Group], at: float
) -> tuple[dict[str, GroupView], dict[str, CloudError]]:
    """Views of `groups` (stamped `at`) and the members whose AZ could not be read, with the error."""
    ids = list(dict.fromkeys(i for g in groups for i in g.instance_ids))
    held, generation = cache.held(ids)
    topology, failed = cloud.describe_members([i for i in ids if i not in held])
    # Members read just now carry their state; their status checks are asked only if wanted.
    checked = {i for g in groups if any(c.type == "ec2" for c in g.checks) for i in g.instance_ids}
    asked = [i for i in ids if i not in failed and (i in held or i in checked)]
    status, status_failed = cloud.instance_status(asked)
    failed.update(status_failed)
    # A stop, a start or a termination may change the interfaces: read them again now.
    changed = [i for i, m in held.items() if i in status and status[i][0] != m.state]
    if changed:
        _read_again(cloud, changed, topology, failed)
    topology = {**held, **topology}
    enis = cloud.describe_enis(_enis_wanted(groups, topology))
    addresses = cloud.describe_addresses([g.eip for g in groups if g.eip])
    tables = ec2_routes.describe_tables(ec2, [t for g in groups for t in g.route_tables])
    views = _views(cloud, groups, topology, status, failed, enis, addresses, tables, at)
    # Ownership that does not fit the topology held: read the group's members again.
    stale = [g for g in groups if not views[g.name].unread and not fits(views[g.name], g, enis)]
    again = [i for g in stale for i in g.instance_ids if i in held and i not in changed]
    if again:
        _read_again(cloud, again, topology, failed)
        views.update(_views(cloud, stale, topology, status, failed, enis, addresses, tables, at))
    cache.keep({i: m for i, m in topology.items() if i not in failed}, generation)
    return views, failed


def _read_again(
    cloud: Ec2Cloud, ids: list[str], topology: dict[str, Instance], failed: dict[str, CloudError]
) -> None:
    fresh, fresh_failed = cloud.describe_members(ids)
    topology.update(fresh)
    failed.update(fresh_failed)


def _enis_wanted(groups: Sequence[Group], topology: Mapping[str, Instance]) -> list[str]:
    """The floating ENIs, and every ENI of a secondary-ip group's members (its IP's holders)."""
    wanted = [g.eni for g in groups if g.mode is Mode.ENI and g.eni]
    for g in groups:
        if g.mode is Mode.SECONDARY_IP:
            wanted += [
                nic.eni_id
                for i in g.instance_ids
                if i in topology
                for nic in topology[i].interfaces
            ]
    return wanted


def _views(
    cloud: Ec2Cloud,
    groups: Sequence[Group],
    topology: Mapping[str, Instance],
    status: Mapping[str, Status],
    failed: Mapping[str, CloudError],
    enis: Mapping[str, Eni],
    addresses: Mapping[str, Address],
    tables: Mapping[str, Mapping[str, Any]],
    at: float,
) -> dict[str, GroupView]:
    views = {}
    for g in groups:
        members = tuple(_member(cloud, i, topology, status, failed) for i in g.instance_ids)
        if g.mode is Mode.SECONDARY_IP:
            members = tuple(_with_fresh_ips(m, enis) for m in members)
        view = GroupView(
            g.name,
            g.mode,
            members,
            eni=enis.get(g.eni) if g.eni else None,
            ip=g.ip,
            address=addresses.get(g.eip) if g.eip else None,
            observed_at=at,
            route_tables=ec2_routes.group_tables(g, tables),
        )
        views[g.name] = unless_judgeable(view, g, failed)
    return views


def unless_judgeable(view: GroupView, group: Group, failed: Mapping[str, CloudError]) -> GroupView:
    """`view`, marked unread when members AWS could not read are needed to name the owner."""
    lost = [i for i in group.instance_ids if i in failed]
    if lost and not view.judgeable_without(lost):
        return replace(view, unread=str(failed[lost[0]]))
    return view


def _member(
    cloud: Ec2Cloud,
    instance_id: str,
    topology: Mapping[str, Instance],
    status: Mapping[str, Status],
    failed: Mapping[str, CloudError],
) -> Instance:
    """The member's topology with this pass's state and status checks over it."""
    base = topology.get(instance_id)
    if instance_id in failed:
        if base is None:
            return cloud.unread_member(instance_id)
        return replace(base, state=UNREAD_STATE, status_ok=None, checks_insufficient=False)
    if base is None:
        return Instance(instance_id, UNREAD_STATE, "")
    if instance_id not in status:
        return base  # read by DescribeInstances this pass; status checks not wanted
    state, ok, insufficient = status[instance_id]
    return replace(base, state=state, status_ok=ok, checks_insufficient=insufficient)


def _with_fresh_ips(member: Instance, enis: Mapping[str, Eni]) -> Instance:
    """The member's interfaces with the private IPs just read (who holds a secondary IP)."""
    interfaces = tuple(
        replace(nic, private_ips=enis[nic.eni_id].private_ips) if nic.eni_id in enis else nic
        for nic in member.interfaces
    )
    return replace(member, interfaces=interfaces)


def fits(view: GroupView, group: Group, enis: Mapping[str, Eni]) -> bool:
    """Whether the group's fresh ownership agrees with its members' topology as held.

    False when the resource is on someone the held topology does not show it on (a move made
    behind our back), on a non-member, on nobody where a secondary IP must be somewhere, or
    when a member's ENI is gone or attached elsewhere.
    """
    members = {m.instance_id: m for m in view.members}
    if view.mode == Mode.ENI and view.eni is not None:
        eni_id = view.eni.eni_id
        att = view.eni.attachment
        listing = [m for m in view.members if any(n.eni_id == eni_id for n in m.interfaces)]
        if att is None:
            return not listing
        owner = members.get(att.instance_id)
        return owner is not None and owner.eni_at(att.device_index) == eni_id and listing == [owner]
    if view.mode == Mode.SECONDARY_IP:
        for m in view.members:
            for nic in m.interfaces:
                fresh = enis.get(nic.eni_id)
                if fresh is None or fresh.attachment is None:
                    return False
                if fresh.attachment.instance_id != m.instance_id:
                    return False
        if not view.ip_holders:
            return False
    if view.address is not None and not _address_fits(view.address, members):
        return False
    return all(
        t.route is None or t.route.eni_id is None or _routes_to_member(t.route.eni_id, members)
        for t in view.route_tables
    )


def _address_fits(address: Address, members: Mapping[str, Instance]) -> bool:
    """An Elastic IP on nobody, or on a member's ENI and private IP as held."""
    if address.eni_id is None:
        return True
    owner = members.get(address.instance_id or "")
    if owner is None:
        return False
    nic = next((n for n in owner.interfaces if n.eni_id == address.eni_id), None)
    return nic is not None and (address.private_ip is None or address.private_ip in nic.private_ips)


def _routes_to_member(eni_id: str, members: Mapping[str, Instance]) -> bool:
    return any(m.primary_eni_id == eni_id for m in members.values())
