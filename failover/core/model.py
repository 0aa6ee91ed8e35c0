"""Frozen values the core works on: what AWS says now (GroupView), and the steps of a move.

No I/O here. The adapters build these values; the planner reads them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Mode(StrEnum):
    """What floats between the members of a group."""

    ENI = "eni"
    SECONDARY_IP = "secondary-ip"
    EIP = "eip"
    ROUTE = "route"


# The state of a member whose AZ could not be read (a disrupted AZ): neither up nor down.
UNREAD_STATE = "unknown"
# Instance states from which AWS accepts an attach (hot: running, warm: stopped).
ATTACHABLE_STATES = frozenset({"running", "stopped", "pending", "stopping"})
# States after which the instance never comes back.
DEAD_STATES = frozenset({"shutting-down", "terminated"})


@dataclass(frozen=True)
class Attachment:
    """An ENI's attachment as DescribeNetworkInterfaces reports it."""

    attachment_id: str
    instance_id: str
    device_index: int
    status: str  # attaching | attached | detaching | detached
    delete_on_termination: bool


@dataclass(frozen=True)
class Interface:
    """One ENI attached to an instance, as DescribeInstances lists it."""

    eni_id: str
    device_index: int
    private_ips: tuple[str, ...] = ()
    source_dest_check: bool | None = None  # None: EC2 did not report it
    subnet_id: str = ""


@dataclass(frozen=True)
class Instance:
    """One member's EC2 facts: state, AZ and the interfaces attached to it."""

    instance_id: str
    # pending | running | stopping | stopped | shutting-down | terminated | missing, or
    # UNREAD_STATE: its AZ could not be read (never a candidate; its probes still count)
    state: str
    az: str
    private_ip: str | None = None
    interfaces: tuple[Interface, ...] = ()
    status_ok: bool | None = None  # EC2 system and instance status checks; None: not reported
    vpc_id: str = ""
    # A status check reports insufficient-data: no verdict, which is not a failure.
    checks_insufficient: bool = False
    launched_at: float | None = None  # LaunchTime (epoch s): a stop and start changes it
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def exists(self) -> bool:
        return self.state != "missing"

    @property
    def primary_eni_id(self) -> str | None:
        """The ENI at device index 0 (eth0), which carries secondary IPs and EIPs in those modes."""
        return next((i.eni_id for i in self.interfaces if i.device_index == 0), None)

    @property
    def source_dest_check(self) -> bool | None:
        """eth0's source/destination check (the instance's own); None when EC2 did not say."""
        return next((i.source_dest_check for i in self.interfaces if i.device_index == 0), None)

    def eni_at(self, device_index: int) -> str | None:
        """The ENI attached at `device_index`, or None when the index is free."""
        return next((i.eni_id for i in self.interfaces if i.device_index == device_index), None)

    def holds_ip(self, ip: str) -> str | None:
        """The id of this instance's ENI that has `ip`, or None."""
        return next((i.eni_id for i in self.interfaces if ip in i.private_ips), None)

    @property
    def primary_subnet_id(self) -> str | None:
        """The subnet of eth0, the ENI a secondary IP moves onto."""
        return next((i.subnet_id for i in self.interfaces if i.device_index == 0), None) or None

    @property
    def failed_in_ec2(self) -> bool:
        """EC2 itself says this member cannot serve: not running, or a status check is impaired."""
        return self.state != "running" or self.status_ok is False


@dataclass(frozen=True)
class Eni:
    """A network interface: where it is attached and what must not change when it moves."""

    eni_id: str
    az: str
    status: str  # available | in-use | attaching | detaching | ...
    attachment: Attachment | None
    private_ips: tuple[str, ...] = ()
    mac: str = ""
    security_groups: tuple[str, ...] = ()
    source_dest_check: bool | None = None
    description: str = ""
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Address:
    """An Elastic IP and what it is associated with now."""

    allocation_id: str
    public_ip: str
    association_id: str | None = None
    eni_id: str | None = None
    private_ip: str | None = None
    instance_id: str | None = None
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Route:
    """A route table's route for a group's overlay CIDR: the ENI it targets and its State."""

    eni_id: str | None  # None: it targets something else (a gateway, an instance id)
    state: str  # active | blackhole


@dataclass(frozen=True)
class RouteTable:
    """One listed route table as DescribeRouteTables reports it; `exists` False when EC2 does not know it."""

    table_id: str
    exists: bool = True
    vpc_id: str = ""
    local_cidrs: tuple[str, ...] = ()  # its `local` routes: the VPC's CIDR blocks
    route: Route | None = None  # None: no route for the group's CIDR


@dataclass(frozen=True)
class GroupView:
    """Everything AWS says about one group right now; members in preference order.

    eni mode: `eni`. secondary-ip mode: `ip` (its holders are read off the members'
    interfaces) and `address` when the group keeps an EIP on it. eip mode: `address`.
    """

    group: str
    mode: str
    members: tuple[Instance, ...]
    eni: Eni | None = None
    ip: str | None = None
    address: Address | None = None
    observed_at: float = 0.0
    route_tables: tuple[RouteTable, ...] = ()
    # Why part of the group could not be read (a disrupted AZ): judge nothing on this view.
    unread: str = ""

    def judgeable_without(self, unread: Iterable[str]) -> bool:
        """Whether AWS's answer names the owner without the `unread` members (AZ lost).

        An EIP's association and a route table are regional: AWS names the owner whatever
        AZ it is in, so an `eip` or `route` group across AZs fails over out of a lost AZ. An
        ENI's and a secondary IP's group lives in one AZ, and the IP's holder is read off the
        members themselves. A route to an ENI no read member has may be a lost member's.
        """
        if self.mode in (Mode.ENI, Mode.SECONDARY_IP):
            return not any(True for _ in unread)
        if self.mode == Mode.ROUTE:
            ids = {m.instance_id for m in self.members}
            routed = {self.route_owner(t) for t in self.route_tables} - {None}
            return routed <= ids
        return True

    @property
    def ip_holders(self) -> tuple[tuple[str, str], ...]:
        """(ENI id, instance id) of every member ENI holding the group's IP (AWS allows one)."""
        if self.ip is None:
            return ()
        return tuple(
            (eni_id, m.instance_id)
            for m in self.members
            if (eni_id := m.holds_ip(self.ip)) is not None
        )

    def member(self, instance_id: str) -> Instance | None:
        return next((m for m in self.members if m.instance_id == instance_id), None)

    def route_owner(self, table: RouteTable) -> str | None:
        """Who `table`'s overlay route sends to: the member whose eth0 it targets, else the ENI id.

        None for a `blackhole` route to an ENI no member has (a terminated member's deleted
        eth0): nobody receives the traffic.
        """
        route = table.route
        if route is None or route.eni_id is None:
            return None
        owner = next(
            (m.instance_id for m in self.members if m.primary_eni_id == route.eni_id), None
        )
        if owner is None and route.state == "blackhole":
            return None
        return owner or route.eni_id

    @property
    def active(self) -> str | None:
        """The member that owns the resource according to AWS, or None when nobody does."""
        if self.mode == Mode.ENI:
            att = self.eni.attachment if self.eni else None
            # A detaching ENI still carries traffic for the instance it is leaving.
            return (
                att.instance_id
                if att and att.status in ("attaching", "attached", "detaching")
                else None
            )
        if self.mode == Mode.SECONDARY_IP:
            owners = {instance for _, instance in self.ip_holders}
            return owners.pop() if len(owners) == 1 else None
        if self.mode == Mode.ROUTE:
            # Tables that disagree are a half-done move: nobody owns the overlay address.
            routed = {self.route_owner(t) for t in self.route_tables if t.route is not None}
            return routed.pop() if len(routed) == 1 else None
        return self.address.instance_id if self.address else None

    def whereabouts(self) -> str:
        """Where AWS shows the floating resource, in AWS's words (`detaching from i-0aa`)."""
        if self.mode == Mode.ENI:
            att = self.eni.attachment if self.eni else None
            if self.eni is None:
                return "not found"
            if att is None:
                return f"{self.eni.status}, attached to nobody"
            preposition = "from" if att.status == "detaching" else "to"
            return f"{att.status} {preposition} {att.instance_id}"
        if self.mode == Mode.SECONDARY_IP:
            owners = sorted({instance for _, instance in self.ip_holders})
            return f"on {', '.join(owners)}" if owners else "on nobody"
        if self.address is None:
            return "not found"
        return f"associated with {self.address.instance_id or self.address.eni_id or 'nobody'}"


class StepKind(StrEnum):
    """The primitive, idempotent steps a move is made of."""

    DETACH = "detach"
    WAIT_DETACHED = "wait-detached"
    ATTACH = "attach"
    WAIT_ATTACHED = "wait-attached"
    ASSIGN_IP = "assign-ip"
    WAIT_IP = "wait-ip"
    WAIT_EIP_FOLLOWS = "wait-eip-follows"
    ASSOCIATE_EIP = "associate-eip"
    WAIT_EIP = "wait-eip"
    REPLACE_ROUTE = "replace-route"
    WAIT_ROUTES = "wait-routes"


MUTATING_STEPS = frozenset(
    {
        StepKind.DETACH,
        StepKind.ATTACH,
        StepKind.ASSIGN_IP,
        StepKind.ASSOCIATE_EIP,
        StepKind.REPLACE_ROUTE,
    }
)


@dataclass(frozen=True)
class Step:
    """One step of a move: what to do, to which resource, towards which target."""

    kind: StepKind
    resource: str
    target: str  # the instance the resource is moving to
    source: str | None = None  # the instance it is leaving, when there is one
    device_index: int | None = None

    def describe(self) -> str:
        """A line for the operator's plan."""
        texts = {
            StepKind.DETACH: f"detach {self.resource} from {self.source or 'its instance'}",
            StepKind.WAIT_DETACHED: f"wait until {self.resource} is available",
            StepKind.ATTACH: f"attach {self.resource} to {self.target} at device index {self.device_index}",
            StepKind.WAIT_ATTACHED: f"wait until {self.resource} is attached to {self.target}",
            StepKind.ASSIGN_IP: f"assign {self.resource} to {self.target} (AllowReassignment)",
            StepKind.WAIT_IP: f"wait until {self.resource} is only on {self.target}",
            StepKind.WAIT_EIP_FOLLOWS: f"wait briefly for Elastic IP {self.resource} to follow",
            StepKind.ASSOCIATE_EIP: f"associate {self.resource} with {self.target} (AllowReassociation)",
            StepKind.WAIT_EIP: f"wait until {self.resource} is on {self.target}",
            StepKind.REPLACE_ROUTE: f"route the overlay CIDR in {self.resource} to {self.target}'s eth0 (ReplaceRoute)",
            StepKind.WAIT_ROUTES: f"wait until every table routes {self.resource} to {self.target}, active",
        }
        return texts[self.kind]


@dataclass(frozen=True)
class Plan:
    """A move's target and the steps still to do; `done` lists steps AWS says are already true."""

    group: str
    source: str | None
    target: str
    steps: tuple[Step, ...]
    skipped: tuple[Step, ...] = field(default=())

    @property
    def one_call(self) -> bool:
        """The move is a single mutating call: refused, it changed nothing."""
        return sum(s.kind in MUTATING_STEPS for s in self.steps) == 1


@dataclass(frozen=True)
class Permission:
    """One EC2 action tried with DryRun against real ids: permitted, refused, or not checked.

    `checked` False: AWS gave no verdict (the action takes no DryRun, an id is unknown,
    throttling): never read as permitted.
    """

    action: str
    permitted: bool
    detail: str
    checked: bool = True
    code: str = ""  # AWS's answer, when it refused

    @property
    def refused(self) -> bool:
        """IAM said no (the only answer that may skip a target)."""
        return self.checked and not self.permitted
