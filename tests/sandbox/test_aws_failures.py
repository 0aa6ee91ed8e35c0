"""The strict layer's bad days: lost replies, disrupted AZs, tag-scoped IAM, subnets, big accounts.

Each behaviour is documented EC2 behaviour (API reference text in botocore's model) that plain
moto does not have: every test runs the same calls against plain moto too and shows it lets
them through.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from failover.sandbox.server import SandboxServer
from failover.sandbox.strict import StrictLayer
from failover.sandbox.world import World, build_world

from .conftest import client
from .test_strict_layer import address_of, eni_of, error_of, eth0_of, ips_of

Make = Callable[..., StrictLayer]
# A client that retries as the tool's does (a lost reply is a 500: botocore tries again).
RETRYING = Config(retries={"mode": "standard", "total_max_attempts": 3})


def layer_or_plain(strict: Make, plain: bool, **options: Any) -> StrictLayer | None:
    """The strict layer with `options`, or None to run against plain moto."""
    return None if plain else strict(**options)


def answer(call: Callable[..., Any], **kwargs: Any) -> str:
    """The error code EC2 answered, or "OK"."""
    try:
        call(**kwargs)
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "OK"


# ---- Lost replies -------------------------------------------------------------------------


@pytest.mark.parametrize("plain", [False, True], ids=["strict", "plain-moto"])
def test_lost_attach_reply_is_retried_into_in_use_while_the_eni_is_on_the_target(
    strict: Make, ec2: Any, plain: bool
) -> None:
    """Lost reply: the attach is applied, answered 500; botocore's retry meets InvalidNetworkInterface.InUse."""
    layer = layer_or_plain(strict, plain)
    world = build_world(ec2, mode="eni")
    assert world.eni_id
    ec2.detach_network_interface(
        AttachmentId=eni_of(ec2, world.eni_id)["Attachment"]["AttachmentId"]
    )
    if layer is not None:
        layer.lose_replies("AttachNetworkInterface")
        layer.reset_log()
    retrying = client("ec2", config=RETRYING)
    code = answer(
        retrying.attach_network_interface,
        NetworkInterfaceId=world.eni_id,
        InstanceId=world.standbys[0],
        DeviceIndex=1,
    )
    assert eni_of(ec2, world.eni_id)["Attachment"]["InstanceId"] == world.standbys[0]
    if layer is None:
        assert code == "OK"  # moto never loses a reply
        return
    assert code == "InvalidNetworkInterface.InUse"
    attaches = layer.calls_to("AttachNetworkInterface")
    assert [(c.error, c.lost_reply) for c in attaches] == [
        ("InternalError", True),
        ("InvalidNetworkInterface.InUse", False),
    ]


@pytest.mark.parametrize("mode", ["secondary-ip", "eip"])
def test_lost_reply_of_an_idempotent_move_succeeds_on_the_retry(
    strict: Make, ec2: Any, mode: str
) -> None:
    """Lost reply: AssignPrivateIpAddresses / AssociateAddress with their Allow flags succeed again."""
    layer = strict()
    world = build_world(ec2, mode=mode)
    target_eth0 = eth0_of(ec2, world.standbys[0])
    retrying = client("ec2", config=RETRYING)
    if mode == "secondary-ip":
        assert world.ip
        layer.lose_replies("AssignPrivateIpAddresses")
        retrying.assign_private_ip_addresses(
            NetworkInterfaceId=target_eth0, PrivateIpAddresses=[world.ip], AllowReassignment=True
        )
        assert world.ip in ips_of(ec2, target_eth0)
        assert world.ip not in ips_of(ec2, eth0_of(ec2, world.primary))
        action = "AssignPrivateIpAddresses"
    else:
        assert world.allocation_id
        layer.lose_replies("AssociateAddress")
        retrying.associate_address(
            AllocationId=world.allocation_id,
            NetworkInterfaceId=target_eth0,
            AllowReassociation=True,
        )
        assert address_of(ec2, world.allocation_id)["InstanceId"] == world.standbys[0]
        action = "AssociateAddress"
    assert [(c.error, c.lost_reply) for c in layer.calls_to(action)][-2:] == [
        ("InternalError", True),
        (None, False),
    ]


def test_a_lost_reply_is_spent_only_by_an_applied_call(strict: Make, ec2: Any) -> None:
    """Lost reply: a DryRun or refused call does not lose the armed reply; the next applied one does."""
    layer = strict()
    world = build_world(ec2, mode="eni")
    assert world.eni_id
    layer.lose_replies("AttachNetworkInterface")
    attach = {"NetworkInterfaceId": world.eni_id, "InstanceId": world.standbys[0], "DeviceIndex": 1}
    assert answer(ec2.attach_network_interface, DryRun=True, **attach) == "DryRunOperation"
    assert answer(ec2.attach_network_interface, **attach) == "InvalidNetworkInterface.InUse"
    ec2.detach_network_interface(
        AttachmentId=eni_of(ec2, world.eni_id)["Attachment"]["AttachmentId"]
    )
    assert answer(ec2.attach_network_interface, **attach) == "InternalError"
    assert eni_of(ec2, world.eni_id)["Attachment"]["InstanceId"] == world.standbys[0]


# ---- AZ disruption ------------------------------------------------------------------------


@pytest.mark.parametrize("plain", [False, True], ids=["strict", "plain-moto"])
def test_disrupted_az_fails_instance_reads_that_name_it_or_name_nothing(
    strict: Make, ec2: Any, plain: bool
) -> None:
    """AZ disruption: reads naming an instance in the AZ, or no ids, fail (503); others work."""
    layer = layer_or_plain(strict, plain)
    world = build_world(ec2, mode="eip", other_az_member=True)
    assert world.other_az
    if layer is not None:
        layer.disrupt_az(world.az_a)
    healthy, disrupted = [world.other_az], [world.primary, world.other_az]
    reads = {
        "healthy ids": answer(ec2.describe_instances, InstanceIds=healthy),
        "disrupted id": answer(ec2.describe_instances, InstanceIds=disrupted),
        "no ids": answer(
            ec2.describe_instances, Filters=[{"Name": "instance-id", "Values": healthy}]
        ),
        "status healthy": answer(ec2.describe_instance_status, InstanceIds=healthy),
        "status disrupted": answer(ec2.describe_instance_status, InstanceIds=disrupted),
        "status no ids": answer(ec2.describe_instance_status),
    }
    if layer is None:
        assert set(reads.values()) == {"OK"}
        return
    assert reads == {
        "healthy ids": "OK",
        "disrupted id": "Unavailable",
        "no ids": "Unavailable",
        "status healthy": "OK",
        "status disrupted": "Unavailable",
        "status no ids": "Unavailable",
    }
    assert error_of(ec2.describe_instances, InstanceIds=disrupted) == ("Unavailable", 503)
    layer.restore_az()
    assert answer(ec2.describe_instances, InstanceIds=disrupted) == "OK"


# ---- Tag-scoped IAM -----------------------------------------------------------------------


def untag(ec2: Any, *resource_ids: str) -> None:
    """Remove the failover:group tag from these resources."""
    ec2.delete_tags(Resources=list(resource_ids), Tags=[{"Key": "failover:group"}])


@pytest.mark.parametrize("plain", [False, True], ids=["strict", "plain-moto"])
def test_tag_scoped_policy_refuses_calls_on_an_untagged_instance_dry_run_included(
    strict: Make, ec2: Any, plain: bool
) -> None:
    """Tag-scoped IAM: attach to an untagged standby is UnauthorizedOperation (DryRun too); tagged is permitted."""
    layer_or_plain(strict, plain, tag_scoped=True)
    world = build_world(ec2, mode="eni", standbys=2)
    assert world.eni_id
    untagged, tagged = world.standbys
    untag(ec2, untagged)
    ec2.detach_network_interface(
        AttachmentId=eni_of(ec2, world.eni_id)["Attachment"]["AttachmentId"]
    )
    attach = {"NetworkInterfaceId": world.eni_id, "DeviceIndex": 1}
    dry = answer(ec2.attach_network_interface, InstanceId=untagged, DryRun=True, **attach)
    real = answer(ec2.attach_network_interface, InstanceId=untagged, **attach)
    permitted = answer(ec2.attach_network_interface, InstanceId=tagged, DryRun=True, **attach)
    if plain:
        assert (dry, real) == ("DryRunOperation", "OK")
        return
    assert (dry, real, permitted) == (
        "UnauthorizedOperation",
        "UnauthorizedOperation",
        "DryRunOperation",
    )
    with pytest.raises(ClientError) as caught:
        ec2.attach_network_interface(InstanceId=untagged, **attach)
    assert f"instance/{untagged}" in caught.value.response["Error"]["Message"]
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert eni_of(ec2, world.eni_id)["Status"] == "available"


@pytest.mark.parametrize("mode", ["secondary-ip", "eip"])
def test_tag_scoped_policy_refuses_moving_an_ip_or_eip_onto_an_untagged_eni(
    strict: Make, ec2: Any, mode: str
) -> None:
    """Tag-scoped IAM: the target's primary ENI must carry the tag too; nothing moves when it does not."""
    strict(tag_scoped=True)
    world = build_world(ec2, mode=mode)
    target_eth0 = eth0_of(ec2, world.standbys[0])
    untag(ec2, target_eth0)
    if mode == "secondary-ip":
        assert world.ip
        code = answer(
            ec2.assign_private_ip_addresses,
            NetworkInterfaceId=target_eth0,
            PrivateIpAddresses=[world.ip],
            AllowReassignment=True,
        )
        assert world.ip not in ips_of(ec2, target_eth0)
    else:
        assert world.allocation_id
        code = answer(
            ec2.associate_address,
            AllocationId=world.allocation_id,
            NetworkInterfaceId=target_eth0,
            AllowReassociation=True,
        )
        assert address_of(ec2, world.allocation_id)["InstanceId"] == world.primary
    assert code == "UnauthorizedOperation"


def test_tag_scoped_policy_refuses_detaching_from_an_untagged_instance(
    strict: Make, ec2: Any
) -> None:
    """Tag-scoped IAM: DetachNetworkInterface is authorized against the instance and the ENI."""
    strict(tag_scoped=True)
    world = build_world(ec2, mode="eni")
    assert world.eni_id
    untag(ec2, world.primary)
    attachment_id = eni_of(ec2, world.eni_id)["Attachment"]["AttachmentId"]
    assert answer(ec2.detach_network_interface, AttachmentId=attachment_id) == (
        "UnauthorizedOperation"
    )
    assert eni_of(ec2, world.eni_id)["Attachment"]["Status"] == "attached"


# ---- Subnets ------------------------------------------------------------------------------


def other_subnet_eni(ec2: Any, world: World) -> str:
    """An ENI in a second subnet of the primary's AZ."""
    subnet = ec2.create_subnet(
        VpcId=world.vpc_id, CidrBlock="10.0.128.0/18", AvailabilityZone=world.az_a
    )["Subnet"]["SubnetId"]
    reply = ec2.create_network_interface(SubnetId=subnet, Groups=[world.sg_id])
    return reply["NetworkInterface"]["NetworkInterfaceId"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("plain", [False, True], ids=["strict", "plain-moto"])
def test_assign_of_an_ip_outside_the_target_subnet_is_invalid_parameter_value(
    strict: Make, ec2: Any, plain: bool
) -> None:
    """Subnets: a secondary IP goes only to an ENI whose subnet holds it (same AZ is not enough)."""
    layer_or_plain(strict, plain)
    world = build_world(ec2, mode="secondary-ip")
    assert world.ip
    elsewhere = other_subnet_eni(ec2, world)
    code = answer(
        ec2.assign_private_ip_addresses,
        NetworkInterfaceId=elsewhere,
        PrivateIpAddresses=[world.ip],
        AllowReassignment=True,
    )
    if plain:
        assert code == "OK"
        return
    assert code == "InvalidParameterValue"
    assert world.ip not in ips_of(ec2, elsewhere)
    assert world.ip in ips_of(ec2, eth0_of(ec2, world.primary))


# ---- Pagination and big accounts ----------------------------------------------------------


def pages(call: Callable[..., Any], key: str, **kwargs: Any) -> list[list[Any]]:
    """Every page `call` answers, following NextToken."""
    out: list[list[Any]] = []
    while True:
        reply = call(**kwargs)
        out.append(list(reply[key]))
        if not reply.get("NextToken"):
            return out
        kwargs["NextToken"] = reply["NextToken"]


@pytest.mark.parametrize("plain", [False, True], ids=["strict", "plain-moto"])
def test_max_results_pages_every_describe_the_tool_reads(
    strict: Make, ec2: Any, plain: bool
) -> None:
    """Pagination: MaxResults=5 gives pages of 5 and a NextToken, on instances, statuses and ENIs."""
    layer_or_plain(strict, plain)
    world = build_world(ec2, mode="eni", standbys=11)  # 12 members, 13 ENIs
    instances = pages(ec2.describe_instances, "Reservations", MaxResults=5)
    statuses = pages(ec2.describe_instance_status, "InstanceStatuses", MaxResults=5)
    enis = pages(ec2.describe_network_interfaces, "NetworkInterfaces", MaxResults=5)
    sizes = {
        "instances": [sum(len(r["Instances"]) for r in page) for page in instances],
        "statuses": [len(page) for page in statuses],
        "enis": [len(page) for page in enis],
    }
    if plain:
        assert sizes == {"instances": [12], "statuses": [12], "enis": [13]}
        return
    assert sizes == {"instances": [5, 5, 2], "statuses": [5, 5, 2], "enis": [5, 5, 3]}
    seen = {i["InstanceId"] for page in instances for r in page for i in r["Instances"]}
    assert seen == {world.primary, *world.standbys}
    assert len({e["NetworkInterfaceId"] for page in enis for e in page}) == 13


@pytest.mark.parametrize("plain", [False, True], ids=["strict", "plain-moto"])
def test_max_results_rules_ids_and_range(strict: Make, ec2: Any, plain: bool) -> None:
    """Pagination: MaxResults never joins an id list, stays within 5..1000; a bad token is refused."""
    layer_or_plain(strict, plain)
    world = build_world(ec2, mode="eni")
    assert world.eni_id
    codes = {
        "status ids": answer(
            ec2.describe_instance_status, InstanceIds=[world.primary], MaxResults=5
        ),
        "eni ids": answer(
            ec2.describe_network_interfaces, NetworkInterfaceIds=[world.eni_id], MaxResults=5
        ),
        "instances 4": answer(ec2.describe_instances, MaxResults=4),
        "status 1001": answer(ec2.describe_instance_status, MaxResults=1001),
        "enis 1001": answer(ec2.describe_network_interfaces, MaxResults=1001),
        "bad token": answer(ec2.describe_network_interfaces, MaxResults=5, NextToken="nope"),
    }
    if plain:
        assert set(codes.values()) == {"OK"}
        return
    assert codes == {
        "status ids": "InvalidParameterCombination",
        "eni ids": "InvalidParameterCombination",
        "instances 4": "InvalidParameterValue",
        "status 1001": "InvalidParameterValue",
        "enis 1001": "InvalidParameterValue",
        "bad token": "InvalidPaginationToken",
    }


@pytest.mark.parametrize("plain", [False, True], ids=["strict", "plain-moto"])
def test_big_account_refuses_unpaginated_unnarrowed_describe_network_interfaces(
    strict: Make, ec2: Any, plain: bool
) -> None:
    """Big accounts: only MaxResults, ids or a narrowing filter describe ENIs once there are many."""
    layer = layer_or_plain(strict, plain)
    world = build_world(ec2, mode="eni", standbys=3)  # 5 ENIs
    assert world.eni_id
    if layer is not None:
        layer.big_account(eni_threshold=4)
    by_id = [{"Name": "network-interface-id", "Values": [world.eni_id]}]
    codes = {
        "bare": answer(ec2.describe_network_interfaces),
        "id filter": answer(ec2.describe_network_interfaces, Filters=by_id),
        "paginated": answer(ec2.describe_network_interfaces, MaxResults=5),
        "ids": answer(ec2.describe_network_interfaces, NetworkInterfaceIds=[world.eni_id]),
        "vpc-id": answer(
            ec2.describe_network_interfaces, Filters=[{"Name": "vpc-id", "Values": [world.vpc_id]}]
        ),
        "attachment.instance-id": answer(
            ec2.describe_network_interfaces,
            Filters=[{"Name": "attachment.instance-id", "Values": [world.primary]}],
        ),
    }
    if plain:
        assert set(codes.values()) == {"OK"}
        return
    assert codes == {
        "bare": "InvalidRequest",
        "id filter": "InvalidRequest",
        "paginated": "OK",
        "ids": "OK",
        "vpc-id": "OK",
        "attachment.instance-id": "OK",
    }


# ---- Status checks ------------------------------------------------------------------------


@pytest.mark.parametrize("plain", [False, True], ids=["strict", "plain-moto"])
def test_insufficient_data_status_can_be_set(strict: Make, ec2: Any, plain: bool) -> None:
    """Status checks: `insufficient-data` is reported as such (moto: always ok)."""
    layer = layer_or_plain(strict, plain)
    world = build_world(ec2, mode="eni")
    if layer is not None:
        layer.set_status(world.primary, system="insufficient-data", instance="ok")
        with pytest.raises(ValueError, match="status checks"):
            layer.set_status(world.primary, system="broken")
    (status,) = ec2.describe_instance_status(InstanceIds=[world.primary])["InstanceStatuses"]
    system = status["SystemStatus"]
    if plain:
        assert system["Status"] == "ok"
        return
    assert system["Status"] == "insufficient-data"
    assert system["Details"] == [{"Name": "reachability", "Status": "insufficient-data"}]
    assert status["InstanceStatus"]["Status"] == "ok"


# ---- Launch time and action-scoped faults -------------------------------------------------


@pytest.mark.parametrize("plain", [False, True], ids=["strict", "plain-moto"])
def test_a_stop_and_start_moves_launch_time(strict: Make, ec2: Any, plain: bool) -> None:
    """LaunchTime: a start from stopped sets it anew (moto keeps the first launch's)."""
    layer_or_plain(strict, plain)
    world = build_world(ec2, mode="eni")
    launched = ec2.describe_instances(InstanceIds=[world.primary])["Reservations"][0]["Instances"]
    before = launched[0]["LaunchTime"]
    ec2.stop_instances(InstanceIds=[world.primary])
    time.sleep(1.1)  # LaunchTime has a resolution of one second
    ec2.start_instances(InstanceIds=[world.primary])
    after = ec2.describe_instances(InstanceIds=[world.primary])["Reservations"][0]["Instances"]
    if plain:
        assert after[0]["LaunchTime"] == before
        return
    assert after[0]["LaunchTime"] > before


def test_faults_can_be_injected_into_one_action(strict: Make, ec2: Any) -> None:
    """Faults: `actions` limits injected faults to those actions; others are answered."""
    layer = strict()
    world = build_world(ec2, mode="eni")
    assert world.eni_id
    layer.inject_faults(1.0, ("RequestLimitExceeded",), actions=("DetachNetworkInterface",))
    attachment_id = eni_of(ec2, world.eni_id)["Attachment"]["AttachmentId"]
    assert error_of(ec2.detach_network_interface, AttachmentId=attachment_id) == (
        "RequestLimitExceeded",
        503,
    )
    assert eni_of(ec2, world.eni_id)["Attachment"]["Status"] == "attached"


_ENI_STACK = """
Resources:
  Vpc: {Type: "AWS::EC2::VPC", Properties: {CidrBlock: 10.0.0.0/16}}
  Subnet:
    Type: AWS::EC2::Subnet
    Properties: {VpcId: !Ref Vpc, CidrBlock: 10.0.0.0/24, AvailabilityZone: us-east-1a}
  Eni:
    Type: AWS::EC2::NetworkInterface
    Properties:
      SubnetId: !Ref Subnet
      Tags: [{Key: "failover:group", Value: db}]
Outputs:
  EniId: {Value: !Ref Eni}
"""


@pytest.mark.parametrize("plain", [False, True], ids=["strict", "plain-moto"])
def test_cloudformation_tags_a_network_interface(strict: Make, ec2: Any, plain: bool) -> None:
    """CloudFormation: an AWS::EC2::NetworkInterface gets its Tags (moto drops them), so a
    tag-scoped policy sees what the template declared."""
    layer_or_plain(strict, plain)
    cfn = client("cloudformation")
    cfn.create_stack(StackName="s", TemplateBody=_ENI_STACK)
    outputs = cfn.describe_stacks(StackName="s")["Stacks"][0]["Outputs"]
    eni_id = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "EniId")
    tags = {t["Key"]: t["Value"] for t in eni_of(ec2, eni_id).get("TagSet", [])}
    assert tags.get("failover:group") == (None if plain else "db")


# ---- An endpoint that does not answer -----------------------------------------------------


@pytest.mark.parametrize("plain", [False, True], ids=["strict", "plain-moto"])
def test_a_held_sts_endpoint_answers_nothing_until_released_while_ec2_answers(
    aws_env: None, plain: bool
) -> None:
    """Unreachable STS (a private subnet without an STS VPC endpoint): GetCallerIdentity gets
    no answer, the client's own read timeout ends it, EC2 answers as usual; plain moto always
    answers STS."""
    once = Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=1)
    with SandboxServer() as server:
        layer = None if plain else StrictLayer()
        if layer is not None:
            layer.install()
        try:
            sts = client("sts", endpoint_url=server.url, config=once)
            ec2 = client("ec2", endpoint_url=server.url, config=once)
            if layer is not None:
                layer.hold("sts")
            if plain:
                assert sts.get_caller_identity()["Arn"].startswith("arn:aws:")
            else:
                with pytest.raises(ReadTimeoutError):
                    sts.get_caller_identity()
                assert layer is not None
                assert [(c.service, c.action) for c in layer.held] == [("sts", "GetCallerIdentity")]
            assert ec2.describe_instances()["Reservations"] == []
            if layer is not None:
                layer.release()
                assert sts.get_caller_identity()["Arn"].startswith("arn:aws:")
        finally:
            if layer is not None:
                layer.uninstall()
