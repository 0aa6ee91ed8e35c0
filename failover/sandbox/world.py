"""Build test and demo infrastructure (VPC, members, floating resource) with a boto3 EC2 client."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MODES = ("eni", "secondary-ip", "eip", "route")
# Any id works: moto validates AMIs only under MOTO_ENABLE_AMI_VALIDATION.
_AMI = "ami-12c6146b"
_VPC_CIDR = "10.0.0.0/16"
_SUBNET_A = "10.0.0.0/18"
_SUBNET_B = "10.0.64.0/18"
# Overlay addresses of `route` groups: outside the VPC, from the benchmarking range (RFC 2544),
# which is never routed on the internet; nothing is ever sent to them.
_OVERLAY = "198.18.0.0/15"


@dataclass(frozen=True)
class World:
    """One group's infrastructure: where it lives, its members and its floating resource."""

    vpc_id: str
    az_a: str
    az_b: str
    subnet_a: str
    subnet_b: str
    sg_id: str
    primary: str
    standbys: tuple[str, ...]
    other_az: str | None
    eni_id: str | None
    ip: str | None
    allocation_id: str | None
    public_ip: str | None
    cidr: str | None = None
    route_tables: tuple[str, ...] = ()


@dataclass
class _Network:
    vpc_id: str
    az_a: str
    az_b: str
    subnet_a: str
    subnet_b: str
    sg_id: str
    # moto hands instances IPs from the bottom of the subnet and picks unasked ENI IPs at
    # random, so floating IPs are chosen here, from the top half, and never collide.
    free_ips: Iterator[str]
    overlay_ips: Iterator[str]


def _network(ec2: Any, region: str) -> _Network:
    vpc_id = ec2.create_vpc(CidrBlock=_VPC_CIDR)["Vpc"]["VpcId"]
    az_a, az_b = f"{region}a", f"{region}b"
    subnet_a = ec2.create_subnet(VpcId=vpc_id, CidrBlock=_SUBNET_A, AvailabilityZone=az_a)
    subnet_b = ec2.create_subnet(VpcId=vpc_id, CidrBlock=_SUBNET_B, AvailabilityZone=az_b)
    sg_id = ec2.create_security_group(
        GroupName=f"failover-{vpc_id}", Description="failover sandbox members", VpcId=vpc_id
    )["GroupId"]
    hosts = ipaddress.ip_network(_SUBNET_A)
    top_half = (str(hosts[i]) for i in range(hosts.num_addresses // 2, hosts.num_addresses - 1))
    return _Network(
        vpc_id=vpc_id,
        az_a=az_a,
        az_b=az_b,
        subnet_a=subnet_a["Subnet"]["SubnetId"],
        subnet_b=subnet_b["Subnet"]["SubnetId"],
        sg_id=sg_id,
        free_ips=top_half,
        overlay_ips=(f"{ip}/32" for ip in ipaddress.ip_network(_OVERLAY).hosts()),
    )


def _launch(
    ec2: Any, net: _Network, subnet_id: str, count: int, group: str, instance_type: str
) -> list[dict[str, Any]]:
    """Launch `count` members in one call; moto gives each a distinct primary private IP.

    Each member and its primary ENI carry the `failover:group` tag (a tag-scoped policy asks
    it of the ENI an IP or EIP moves to); moto ignores a network-interface tag spec at launch.
    """
    tags = [{"Key": "failover:group", "Value": group}]
    reply = ec2.run_instances(
        ImageId=_AMI,
        InstanceType=instance_type,
        MinCount=count,
        MaxCount=count,
        SubnetId=subnet_id,
        SecurityGroupIds=[net.sg_id],
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )
    instances = list(reply["Instances"])
    ec2.create_tags(Resources=[_eth0(i)["NetworkInterfaceId"] for i in instances], Tags=tags)
    return instances


def _eth0(instance: dict[str, Any]) -> dict[str, Any]:
    nics = instance["NetworkInterfaces"]
    eth0: dict[str, Any] = next(n for n in nics if n["Attachment"]["DeviceIndex"] == 0)
    return eth0


def _build(
    ec2: Any,
    net: _Network,
    *,
    mode: str,
    group: str,
    standbys: int,
    other_az_member: bool,
    instance_type: str,
    cross_az: bool = False,
    route_tables: int = 2,
) -> World:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if cross_az and standbys:
        members = _launch(ec2, net, net.subnet_a, 1, group, instance_type)
        members += _launch(ec2, net, net.subnet_b, standbys, group, instance_type)
    else:
        members = _launch(ec2, net, net.subnet_a, 1 + standbys, group, instance_type)
    other_az = None
    if other_az_member:
        other_az = _launch(ec2, net, net.subnet_b, 1, group, instance_type)[0]["InstanceId"]
    primary = members[0]
    eni_id = ip = allocation_id = public_ip = cidr = None
    tables: tuple[str, ...] = ()
    if mode == "eni":
        eni_id = _floating_eni(ec2, net, group, primary["InstanceId"])
    elif mode == "route":
        cidr = next(net.overlay_ips)
        tables = _overlay_routes(ec2, net, group, cidr, members, route_tables)
    else:
        eth0 = _eth0(primary)
        ip = eth0["PrivateIpAddress"]
        if mode == "secondary-ip":
            ip = next(net.free_ips)
            ec2.assign_private_ip_addresses(
                NetworkInterfaceId=eth0["NetworkInterfaceId"],
                PrivateIpAddresses=[ip],
                AllowReassignment=False,
            )
        eip = ec2.allocate_address(
            Domain="vpc",
            TagSpecifications=[
                {"ResourceType": "elastic-ip", "Tags": [{"Key": "failover:group", "Value": group}]}
            ],
        )
        allocation_id, public_ip = eip["AllocationId"], eip["PublicIp"]
        ec2.associate_address(
            AllocationId=allocation_id,
            NetworkInterfaceId=eth0["NetworkInterfaceId"],
            PrivateIpAddress=ip,
            AllowReassociation=False,
        )
        if mode == "eip":
            ip = None
    return World(
        vpc_id=net.vpc_id,
        az_a=net.az_a,
        az_b=net.az_b,
        subnet_a=net.subnet_a,
        subnet_b=net.subnet_b,
        sg_id=net.sg_id,
        primary=primary["InstanceId"],
        standbys=tuple(m["InstanceId"] for m in members[1:]),
        other_az=other_az,
        eni_id=eni_id,
        ip=ip,
        allocation_id=allocation_id,
        public_ip=public_ip,
        cidr=cidr,
        route_tables=tables,
    )


def _overlay_routes(
    ec2: Any, net: _Network, group: str, cidr: str, members: list[dict[str, Any]], count: int
) -> tuple[str, ...]:
    """`count` route tables routing `cidr` to the primary's eth0; every member forwards.

    A member can only answer for an overlay address routed to it with its source/destination
    check off (AWS drops the packets otherwise).
    """
    for member in members:
        ec2.modify_network_interface_attribute(
            NetworkInterfaceId=_eth0(member)["NetworkInterfaceId"], SourceDestCheck={"Value": False}
        )
    tags = [{"ResourceType": "route-table", "Tags": [{"Key": "failover:group", "Value": group}]}]
    tables = []
    for _ in range(count):
        table = ec2.create_route_table(VpcId=net.vpc_id, TagSpecifications=tags)["RouteTable"]
        ec2.create_route(
            RouteTableId=table["RouteTableId"],
            DestinationCidrBlock=cidr,
            NetworkInterfaceId=_eth0(members[0])["NetworkInterfaceId"],
        )
        tables.append(str(table["RouteTableId"]))
    return tuple(tables)


def _floating_eni(ec2: Any, net: _Network, group: str, primary_id: str) -> str:
    """The floating ENI: two private IPs, no source/dest check, on the primary at index 1."""
    eni = ec2.create_network_interface(
        SubnetId=net.subnet_a,
        Description=f"failover floating ENI for group {group}",
        Groups=[net.sg_id],
        PrivateIpAddresses=[
            {"PrivateIpAddress": next(net.free_ips), "Primary": True},
            {"PrivateIpAddress": next(net.free_ips), "Primary": False},
        ],
        TagSpecifications=[
            {
                "ResourceType": "network-interface",
                "Tags": [{"Key": "failover:group", "Value": group}],
            }
        ],
    )["NetworkInterface"]
    eni_id: str = eni["NetworkInterfaceId"]
    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=eni_id, SourceDestCheck={"Value": False}
    )
    # AttachNetworkInterface leaves DeleteOnTermination false: a floating ENI must outlive
    # whichever member holds it.
    ec2.attach_network_interface(NetworkInterfaceId=eni_id, InstanceId=primary_id, DeviceIndex=1)
    return eni_id


def build_world(
    ec2: Any,
    *,
    mode: str,
    group: str = "g",
    standbys: int = 1,
    other_az_member: bool = False,
    instance_type: str = "t3.large",
    region: str = "us-east-1",
    cross_az: bool = False,
    route_tables: int = 2,
) -> World:
    """A new VPC holding one group in `mode`: a primary holding the resource and its standbys.

    `cross_az` puts the standbys in the second AZ; a `route` group gets `route_tables` tables.
    """
    net = _network(ec2, region)
    return _build(
        ec2,
        net,
        mode=mode,
        group=group,
        standbys=standbys,
        other_az_member=other_az_member,
        instance_type=instance_type,
        cross_az=cross_az,
        route_tables=route_tables,
    )


def build_worlds(
    ec2: Any,
    n: int,
    mode: str,
    *,
    standbys: int = 1,
    other_az_member: bool = False,
    instance_type: str = "t3.large",
    region: str = "us-east-1",
    cross_az: bool = False,
    route_tables: int = 2,
) -> list[World]:
    """`n` groups named g0..g{n-1} in one shared VPC: about four EC2 calls per group."""
    net = _network(ec2, region)
    return [
        _build(
            ec2,
            net,
            mode=mode,
            group=f"g{i}",
            standbys=standbys,
            other_az_member=other_az_member,
            instance_type=instance_type,
            cross_az=cross_az,
            route_tables=route_tables,
        )
        for i in range(n)
    ]
