"""The EC2 adapter: the only module that calls EC2. Observe groups; run one primitive call.

Reads name ids (describe.py): instances per Availability Zone, because DescribeInstances
fails when it names an instance in a disrupted AZ or names none; a failed AZ leaves the
groups whose ownership needs its members unread (`GroupView.unread`); the others, `eip` and
`route` groups across AZs among them, are judged with those members' state unknown. A member's AZ never
changes, so it is remembered from the first read (and with it the member's interfaces and
private IP, by which an `eip` or `route` group whose member's AZ is lost is still judged); members never read before are asked
together, and if that batch fails their AZs are learnt from their network interfaces.

Mutating calls are single API calls whose errors are translated once; under a move's
deadline (`bounded`) no attempt starts after it and a mutating call tries at most three
times (bounds.py). Waiting for a state is the engine's loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from failover.aws import bounds, ec2_routes, permissions, topology
from failover.aws.describe import PAGE_SIZE, by_ids, pages
from failover.aws.errors import UNREACHABLE, error_code, translate
from failover.aws.pacing import Pacer
from failover.aws.shapes import address_of, eni_of, instance_of, interface_of, status_of
from failover.core.errors import CloudError, PermissionDeniedError
from failover.core.model import (
    UNREAD_STATE,
    Address,
    Eni,
    GroupView,
    Instance,
    Interface,
    Mode,
    Permission,
)

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_sts import STSClient

    from failover.config import Group

T = TypeVar("T")

# Ids per DescribeInstances / DescribeNetworkInterfaces / DescribeAddresses call, and filter
# values per call (EC2 takes up to 200).
ID_BATCH = 200
# DescribeInstanceStatus takes at most 100 instance ids a call.
STATUS_BATCH = 100


class _Alongside(Generic[T]):
    """A call run on its own thread under the starting thread's deadline; `result` joins it."""

    def __init__(self, fn: Callable[[], T]) -> None:
        self._fn, self._bound = fn, bounds.carried()
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ec2-read", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._bound():
                self._value = self._fn()
        except BaseException as exc:  # handed to the thread that asked, in `result`
            self._error = exc

    def result(self) -> T:
        """The call's value, or its exception raised here."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


def _alongside(fn: Callable[[], T]) -> _Alongside[T]:
    """Start `fn` on its own thread, bounded by this thread's deadline."""
    return _Alongside(fn)


class Ec2Cloud:
    """EC2 behind the `Cloud` port. Clients are built by the wiring and injected."""

    def __init__(
        self,
        ec2: EC2Client,
        sts: STSClient | None = None,
        clock: Callable[[], float] | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        """`clock` stamps views (wall clock)."""
        self._ec2 = ec2
        self._sts = sts
        self._clock = clock
        # The last read of each instance: what a member in an AZ that cannot be read is known
        # by (its AZ, interfaces, private IP: fixed for its life), its state left unknown.
        self._last: dict[str, Instance] = {}
        self._last_lock = threading.Lock()
        self._topology = topology.TopologyCache()
        if pacer is not None:
            # Shared by every move and pass of the process: together they stay inside EC2's
            # buckets. It paces each request the client sends, botocore's retries included.
            pacer.attach(ec2)
        bounds.attach(ec2)

    @contextmanager
    def bounded(
        self, time_left: Callable[[], float] | None, name: str = "the move's deadline"
    ) -> Iterator[None]:
        """In the block, no EC2 call of this thread starts once `time_left()` is <= 0
        (`name`: what the deadline is, in the messages)."""
        with bounds.bounded(time_left, name):
            yield

    @property
    def region(self) -> str:
        """The Region the EC2 client talks to (named when the group's ids are not found there)."""
        return str(self._ec2.meta.region_name or "")

    def _call(self, action: str, resource: str, fn: Callable[..., T], **params: Any) -> T:
        try:
            return fn(**params)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, action, resource) from None

    # -- observe -----------------------------------------------------------------------------

    def describe_members(
        self, instance_ids: Sequence[str]
    ) -> tuple[dict[str, Instance], dict[str, CloudError]]:
        """Each instance as EC2 reports it ("missing" if unknown), read per AZ; and the ids
        whose AZ could not be read, with the error."""
        found: dict[str, Instance] = {}
        failed: dict[str, CloudError] = {}
        by_zone: dict[str | None, list[str]] = {}
        for i in dict.fromkeys(instance_ids):
            by_zone.setdefault(self._zone(i), []).append(i)
        unzoned = by_zone.pop(None, [])
        for ids in by_zone.values():
            self._read_zone(ids, found, failed)
        if unzoned and (exc := self._zone_error(unzoned, found)) is not None:
            self._read_unzoned(unzoned, exc, found, failed)
        return found, failed

    def _read_zone(
        self, ids: list[str], found: dict[str, Instance], failed: dict[str, CloudError]
    ) -> None:
        """Read one AZ's instances into `found`, or mark them all `failed` with its error."""
        if (exc := self._zone_error(ids, found)) is not None:
            failed.update(dict.fromkeys(ids, exc))

    def _zone_error(self, ids: list[str], found: dict[str, Instance]) -> CloudError | None:
        """Read `ids` into `found`; the error when their AZ could not be read (None: read).

        A refused permission, or an endpoint that does not answer, is no one AZ's: raised.
        """
        try:
            self._read_instances(ids, found)
        except PermissionDeniedError:
            raise
        except CloudError as exc:
            if exc.code == UNREACHABLE:
                raise
            return exc
        return None

    def _read_instances(self, ids: list[str], found: dict[str, Instance]) -> None:
        replies, missing = by_ids(
            self._ec2.describe_instances, "DescribeInstances", "InstanceIds", ids, batch=ID_BATCH
        )
        read = [
            instance_of(i) for r in replies for res in r["Reservations"] for i in res["Instances"]
        ]
        with self._last_lock:
            self._last.update({i.instance_id: i for i in read})
        found.update({i.instance_id: i for i in read})
        found.update({i: Instance(instance_id=i, state="missing", az="") for i in missing})

    def _read_unzoned(
        self,
        ids: list[str],
        first: CloudError,
        found: dict[str, Instance],
        failed: dict[str, CloudError],
    ) -> None:
        """One batch of instances never read before failed: learn their AZs, read per AZ."""
        try:
            zones = self._zones_from_interfaces(ids)
        except CloudError:
            failed.update(dict.fromkeys(ids, first))
            return
        by_zone: dict[str, list[str]] = {}
        for i in ids:
            by_zone.setdefault(zones.get(i, ""), []).append(i)
        for zone_ids in by_zone.values():
            self._read_zone(zone_ids, found, failed)

    def _zones_from_interfaces(self, instance_ids: Sequence[str]) -> dict[str, str]:
        """Each instance's AZ, from its attached ENIs (attachment.instance-id narrows the call).

        The ENIs are the instance's interfaces too: an instance its AZ will not let us read
        is known by them (eth0, its private IP), its state unknown, until it is read.
        """
        zones: dict[str, str] = {}
        nics: dict[str, list[Interface]] = {}
        primary_ips: dict[str, str | None] = {}
        for start in range(0, len(instance_ids), ID_BATCH):
            chunk = list(instance_ids[start : start + ID_BATCH])
            for reply in pages(
                self._ec2.describe_network_interfaces,
                "DescribeNetworkInterfaces",
                ",".join(chunk),
                Filters=[{"Name": "attachment.instance-id", "Values": chunk}],
                MaxResults=PAGE_SIZE,
            ):
                for raw in reply["NetworkInterfaces"]:
                    owner = raw.get("Attachment", {}).get("InstanceId")
                    if owner and raw.get("AvailabilityZone"):
                        zones[str(owner)] = str(raw["AvailabilityZone"])
                        nics.setdefault(str(owner), []).append(interface_of(raw))
                        if raw["Attachment"].get("DeviceIndex") == 0:
                            primary_ips[str(owner)] = raw.get("PrivateIpAddress")
        with self._last_lock:
            for owner, interfaces in nics.items():
                interfaces.sort(key=lambda n: n.device_index)
                self._last.setdefault(
                    owner,
                    Instance(
                        owner,
                        UNREAD_STATE,
                        zones[owner],
                        private_ip=primary_ips.get(owner),
                        interfaces=tuple(interfaces),
                    ),
                )
        return zones

    def instance_status(
        self, instance_ids: Sequence[str]
    ) -> tuple[dict[str, tuple[str, bool | None, bool]], dict[str, CloudError]]:
        """(state, checks ok, insufficient data) per instance, asked per AZ in batches of 100;
        and the ids whose AZ could not be read. Unknown ids: ("missing", None, False)."""
        out: dict[str, tuple[str, bool | None, bool]] = {}
        failed: dict[str, CloudError] = {}
        by_zone: dict[str | None, list[str]] = {}
        for i in dict.fromkeys(instance_ids):
            by_zone.setdefault(self._zone(i), []).append(i)
        for ids in by_zone.values():
            try:
                replies, missing = by_ids(
                    self._ec2.describe_instance_status,
                    "DescribeInstanceStatus",
                    "InstanceIds",
                    ids,
                    batch=STATUS_BATCH,
                    IncludeAllInstances=True,
                )
            except PermissionDeniedError:
                raise
            except CloudError as exc:
                failed.update(dict.fromkeys(ids, exc))
                continue
            for reply in replies:
                out.update({s["InstanceId"]: status_of(s) for s in reply["InstanceStatuses"]})
            out.update(dict.fromkeys(missing, ("missing", None, False)))
        unknown = ("missing", None, False)
        return {i: out.get(i, unknown) for i in instance_ids if i not in failed}, failed

    def describe_enis(self, eni_ids: Sequence[str]) -> dict[str, Eni]:
        """The ENIs EC2 knows of among `eni_ids`, as it reports them now."""
        replies, _ = by_ids(
            self._ec2.describe_network_interfaces,
            "DescribeNetworkInterfaces",
            "NetworkInterfaceIds",
            eni_ids,
            batch=ID_BATCH,
        )
        return {e.eni_id: e for r in replies for e in map(eni_of, r["NetworkInterfaces"])}

    def describe_addresses(self, allocation_ids: Sequence[str]) -> dict[str, Address]:
        """The Elastic IPs EC2 knows of among `allocation_ids`, with their associations."""
        replies, _ = by_ids(
            self._ec2.describe_addresses,
            "DescribeAddresses",
            "AllocationIds",
            allocation_ids,
            batch=ID_BATCH,
        )
        return {a.allocation_id: a for r in replies for a in map(address_of, r["Addresses"])}

    def observe_many(
        self, groups: Sequence[Group], *, with_status: bool = False
    ) -> dict[str, GroupView]:
        """Fresh views of many groups in as few calls as EC2 allows (a few per AZ).

        A group with a member in an AZ that could not be read comes back `unread`; if no
        group could be read at all, the error is raised: the pass is blind.
        """
        views, failed = self._observe(groups, with_status=with_status)
        if failed and all(v.unread for v in views.values()):
            raise next(iter(failed.values()))
        return views

    def observe_pass(self, groups: Sequence[Group]) -> dict[str, GroupView]:
        """A health pass's views: state, status checks and ownership fresh, the members'
        interfaces from the topology held (failover/aws/topology.py); raises like observe_many."""
        at = self._clock() if self._clock else 0.0
        views, failed = topology.observe_pass(self, self._ec2, self._topology, groups, at)
        if failed and all(v.unread for v in views.values()):
            raise next(iter(failed.values()))
        return views

    def forget_topology(self, instance_ids: Collection[str] | None = None) -> None:
        """The next pass reads these members' interfaces again (every member's when None)."""
        self._topology.forget(instance_ids)

    def observe(self, group: Group, *, with_status: bool = False) -> GroupView:
        """Everything the planner needs about `group`, read fresh from EC2 (raises if unread).

        The members and the floating resource are read at once, one call each on its own
        thread: a move's read before its first mutating call costs one round trip, not two.
        """
        views, failed = self._observe([group], with_status=with_status, together=True)
        if views[group.name].unread:
            raise next(iter(failed.values()))
        return views[group.name]

    def observe_asking(
        self, group: Group, target: str, eth0: str | None
    ) -> tuple[GroupView, dict[str, Permission]]:
        """`observe`, and on the same round trip IAM's verdicts (DryRun) on the calls that put
        the resource on `target`, named with the eth0 an earlier read showed (`eth0`; None:
        unknown, so only calls that name none are asked). The verdicts, by call
        (`permissions.key`), are for `permissions_to_take`, which uses one only for the very
        call the read leads to."""
        asked = [
            (permissions.key(c), _alongside(partial(permissions.ask, self._ec2, c)))
            for c in permissions.to_take_unread(group, target, eth0)
        ]
        view = self.observe(group)
        return view, {k: verdict.result() for k, verdict in asked}

    def _observe(
        self, groups: Sequence[Group], *, with_status: bool, together: bool = False
    ) -> tuple[dict[str, GroupView], dict[str, CloudError]]:
        ids = [i for g in groups for i in g.instance_ids]
        resources = _alongside(lambda: self._describe_resources(groups)) if together else None
        members, failed = self.describe_members(ids)
        if with_status:
            status, status_failed = self.instance_status([i for i in ids if i not in failed])
            failed.update(status_failed)
            members = {
                i: replace(m, status_ok=status[i][1], checks_insufficient=status[i][2])
                for i, m in members.items()
                if i in status
            }
        enis, addresses, tables = (
            resources.result() if resources is not None else self._describe_resources(groups)
        )
        at = self._clock() if self._clock else 0.0
        views = {}
        for g in groups:
            view = GroupView(
                g.name,
                g.mode,
                tuple(members.get(i) or self.unread_member(i) for i in g.instance_ids),
                eni=enis.get(g.eni) if g.eni else None,
                ip=g.ip,
                address=addresses.get(g.eip) if g.eip else None,
                observed_at=at,
                route_tables=ec2_routes.group_tables(g, tables),
            )
            views[g.name] = topology.unless_judgeable(view, g, failed)
        return views, failed

    def _zone(self, instance_id: str) -> str | None:
        """The instance's AZ as last read (an AZ never changes), None before any read."""
        last = self._last.get(instance_id)
        return last.az if last is not None and last.az else None

    def unread_member(self, instance_id: str) -> Instance:
        """A member whose AZ could not be read: its state unknown, the rest as last read."""
        last = self._last.get(instance_id)
        if last is None:
            return Instance(instance_id, UNREAD_STATE, "")
        return replace(last, state=UNREAD_STATE, status_ok=None, checks_insufficient=False)

    def _describe_resources(
        self, groups: Sequence[Group]
    ) -> tuple[dict[str, Eni], dict[str, Address], dict[str, Mapping[str, Any]]]:
        """The groups' floating resources as EC2 reports them now: ENIs, Elastic IPs, tables."""
        enis = self.describe_enis([g.eni for g in groups if g.mode is Mode.ENI and g.eni])
        addresses = self.describe_addresses([g.eip for g in groups if g.eip])
        tables = ec2_routes.describe_tables(self._ec2, [t for g in groups for t in g.route_tables])
        return enis, addresses, tables

    def refresh(self, group: Group, view: GroupView) -> GroupView:
        """`view` with its floating resource (ENI, EIP) read again; members as they were."""
        if group.mode is Mode.ENI and group.eni:
            return replace(view, eni=self.describe_enis([group.eni]).get(group.eni))
        if group.eip:
            return replace(view, address=self.describe_addresses([group.eip]).get(group.eip))
        if group.route_tables:
            tables = ec2_routes.describe_tables(self._ec2, group.route_tables)
            return replace(view, route_tables=ec2_routes.group_tables(group, tables))
        return self.observe(group)

    # -- mutate ------------------------------------------------------------------------------

    def detach(self, attachment_id: str, *, force: bool) -> None:
        """DetachNetworkInterface; an attachment that is already gone counts as detached."""
        try:
            self._ec2.detach_network_interface(AttachmentId=attachment_id, Force=force)
        except ClientError as exc:
            if error_code(exc) == "InvalidAttachmentID.NotFound":
                return  # a re-run after the detach finished: nothing left to do
            raise translate(exc, "DetachNetworkInterface", attachment_id) from None
        except BotoCoreError as exc:
            raise translate(exc, "DetachNetworkInterface", attachment_id) from None

    def attach(self, eni_id: str, instance_id: str, device_index: int) -> str:
        """AttachNetworkInterface; returns the new attachment id."""
        reply = self._call(
            "AttachNetworkInterface",
            f"{eni_id} -> {instance_id}",
            self._ec2.attach_network_interface,
            NetworkInterfaceId=eni_id,
            InstanceId=instance_id,
            DeviceIndex=device_index,
        )
        return str(reply.get("AttachmentId", ""))

    def keep_on_termination(self, eni_id: str, attachment_id: str) -> None:
        """Turn DeleteOnTermination off, so the floating ENI outlives the instance it is on."""
        self._call(
            "ModifyNetworkInterfaceAttribute",
            eni_id,
            self._ec2.modify_network_interface_attribute,
            NetworkInterfaceId=eni_id,
            Attachment={"AttachmentId": attachment_id, "DeleteOnTermination": False},
        )

    def assign_ip(self, eni_id: str, ip: str) -> None:
        """AssignPrivateIpAddresses with AllowReassignment sent explicitly (defaults have differed)."""
        self._call(
            "AssignPrivateIpAddresses",
            f"{ip} -> {eni_id}",
            self._ec2.assign_private_ip_addresses,
            NetworkInterfaceId=eni_id,
            PrivateIpAddresses=[ip],
            AllowReassignment=True,
        )

    def replace_route(self, table_id: str, cidr: str, eni_id: str) -> None:
        """ReplaceRoute of the overlay CIDR in one table to an ENI."""
        ec2_routes.replace_route(self._ec2, table_id, cidr, eni_id)

    def associate_address(self, allocation_id: str, eni_id: str, private_ip: str) -> None:
        """AssociateAddress with AllowReassociation sent explicitly: the EIP moves in one call."""
        self._call(
            "AssociateAddress",
            f"{allocation_id} -> {eni_id}/{private_ip}",
            self._ec2.associate_address,
            NetworkInterfaceId=eni_id,
            AllocationId=allocation_id,
            PrivateIpAddress=private_ip,
            AllowReassociation=True,
        )

    # -- identity and permissions -------------------------------------------------------------

    def caller_identity(self) -> str:
        """The caller's ARN for the audit trail; a failure is recorded, never fatal to a move."""
        if self._sts is None:
            return "unknown (no STS client)"
        try:
            return str(self._sts.get_caller_identity().get("Arn", "unknown"))
        except (ClientError, BotoCoreError) as exc:
            return f"unknown ({translate(exc, 'GetCallerIdentity')})"

    def permissions_to_take(
        self,
        group: Group,
        view: GroupView,
        target: str,
        asked: Mapping[str, Permission] | None = None,
    ) -> list[Permission]:
        """IAM's verdict (DryRun) on the calls that put the group's resource on `target`; a
        call `asked` already holds a verdict for (`observe_asking`, same parameters) is not
        sent again."""
        known = asked or {}
        # Sent together (a route group's one per table): one round trip, however many.
        verdicts = [
            known.get(permissions.key(c)) or _alongside(partial(permissions.ask, self._ec2, c))
            for c in permissions.to_take(group, view, target)
        ]
        return [v if isinstance(v, Permission) else v.result() for v in verdicts]

    def permissions_to_leave(self, group: Group, view: GroupView) -> list[Permission]:
        """IAM's verdict on the calls made on the current holder, then what no DryRun asks."""
        asked = [permissions.ask(self._ec2, c) for c in permissions.to_leave(group, view)]
        return asked + permissions.unchecked(group, view)
