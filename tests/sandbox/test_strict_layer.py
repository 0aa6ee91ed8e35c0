"""The strict layer answers each EC2 rule with AWS's error code and leaves AWS's state behind."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from failover.sandbox.server import SandboxServer
from failover.sandbox.strict import StrictLayer
from failover.sandbox.world import World, build_world, build_worlds

from ..clocks import FakeClock
from .conftest import NO_RETRY, client

Make = Callable[..., StrictLayer]


def error_of(call: Callable[..., Any], **kwargs: Any) -> tuple[str, int]:
    """The (code, HTTP status) EC2 answered a call that must fail."""
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    reply = caught.value.response
    return reply["Error"]["Code"], reply["ResponseMetadata"]["HTTPStatusCode"]


def eni_of(ec2: Any, eni_id: str) -> dict[str, Any]:
    """DescribeNetworkInterfaces for one ENI."""
    return ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]  # type: ignore[no-any-return]


def instance_of(ec2: Any, instance_id: str) -> dict[str, Any]:
    """DescribeInstances for one instance."""
    reply = ec2.describe_instances(InstanceIds=[instance_id])
    return reply["Reservations"][0]["Instances"][0]  # type: ignore[no-any-return]


def eth0_of(ec2: Any, instance_id: str) -> str:
    """The id of an instance's primary network interface."""
    nics = instance_of(ec2, instance_id)["NetworkInterfaces"]
    return next(n["NetworkInterfaceId"] for n in nics if n["Attachment"]["DeviceIndex"] == 0)  # type: ignore[no-any-return]


def address_of(ec2: Any, allocation_id: str) -> dict[str, Any]:
    """DescribeAddresses for one allocation."""
    return ec2.describe_addresses(AllocationIds=[allocation_id])["Addresses"][0]  # type: ignore[no-any-return]


def ips_of(ec2: Any, eni_id: str) -> list[str]:
    """The private IPs DescribeNetworkInterfaces lists for an ENI."""
    return [p["PrivateIpAddress"] for p in eni_of(ec2, eni_id)["PrivateIpAddresses"]]


def spare_eni(ec2: Any, world: World) -> str:
    """A new, available ENI in the group's subnet."""
    reply = ec2.create_network_interface(SubnetId=world.subnet_a, Groups=[world.sg_id])
    return reply["NetworkInterface"]["NetworkInterfaceId"]  # type: ignore[no-any-return]


def detach_now(ec2: Any, eni_id: str) -> None:
    """Detach an ENI under a layer without detach delay."""
    attachment_id = eni_of(ec2, eni_id)["Attachment"]["AttachmentId"]
    ec2.detach_network_interface(AttachmentId=attachment_id)


# ---- AttachNetworkInterface ---------------------------------------------------------------


def test_attach_across_azs_is_invalid_parameter_combination(strict: Make, ec2: Any) -> None:
    """Rule: ENI and instance must share an AZ; the refused ENI stays on the primary."""
    strict()
    world = build_world(ec2, mode="eni", other_az_member=True)
    assert world.eni_id
    assert world.other_az
    code, status = error_of(
        ec2.attach_network_interface,
        NetworkInterfaceId=world.eni_id,
        InstanceId=world.other_az,
        DeviceIndex=1,
    )
    assert (code, status) == ("InvalidParameterCombination", 400)
    eni = eni_of(ec2, world.eni_id)
    assert eni["Status"] == "in-use"
    assert eni["Attachment"]["InstanceId"] == world.primary


def test_attach_at_used_device_index_is_invalid_parameter_value(strict: Make, ec2: Any) -> None:
    """Rule: the device index must be free (0 included); nothing is overwritten."""
    strict()
    world = build_world(ec2, mode="eni")
    assert world.eni_id
    spare = spare_eni(ec2, world)
    for index in (0, 1):
        with pytest.raises(ClientError) as caught:
            ec2.attach_network_interface(
                NetworkInterfaceId=spare, InstanceId=world.primary, DeviceIndex=index
            )
        assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"
        assert caught.value.response["Error"]["Message"] == (
            f"Instance '{world.primary}' already has an interface attached at device index "
            f"'{index}'."
        )
    assert eni_of(ec2, spare)["Status"] == "available"
    assert eni_of(ec2, world.eni_id)["Attachment"]["InstanceId"] == world.primary
    indexes = [
        n["Attachment"]["DeviceIndex"] for n in instance_of(ec2, world.primary)["NetworkInterfaces"]
    ]
    assert sorted(indexes) == [0, 1]


def test_attach_of_attached_eni_is_in_use(strict: Make, ec2: Any) -> None:
    """Rule: an ENI attached elsewhere must be detached first; it is not silently moved."""
    strict()
    world = build_world(ec2, mode="eni")
    assert world.eni_id
    code, _ = error_of(
        ec2.attach_network_interface,
        NetworkInterfaceId=world.eni_id,
        InstanceId=world.standbys[0],
        DeviceIndex=1,
    )
    assert code == "InvalidNetworkInterface.InUse"
    assert eni_of(ec2, world.eni_id)["Attachment"]["InstanceId"] == world.primary
    assert len(instance_of(ec2, world.standbys[0])["NetworkInterfaces"]) == 1


def test_attach_to_terminated_instance_is_incorrect_instance_state(strict: Make, ec2: Any) -> None:
    """Rule: a terminated instance takes no ENI; the ENI stays available."""
    strict()
    world = build_world(ec2, mode="eni")
    spare = spare_eni(ec2, world)
    ec2.terminate_instances(InstanceIds=[world.standbys[0]])
    code, _ = error_of(
        ec2.attach_network_interface,
        NetworkInterfaceId=spare,
        InstanceId=world.standbys[0],
        DeviceIndex=1,
    )
    assert code == "IncorrectInstanceState"
    assert eni_of(ec2, spare)["Status"] == "available"


def test_attach_beyond_instance_type_limit_is_attachment_limit_exceeded(
    strict: Make, ec2: Any
) -> None:
    """Rule: the instance type caps the ENI count (t3.micro: 2)."""
    strict()
    world = build_world(ec2, mode="eni", instance_type="t3.micro")
    spare = spare_eni(ec2, world)
    code, _ = error_of(
        ec2.attach_network_interface,
        NetworkInterfaceId=spare,
        InstanceId=world.primary,
        DeviceIndex=2,
    )
    assert code == "AttachmentLimitExceeded"
    assert len(instance_of(ec2, world.primary)["NetworkInterfaces"]) == 2
    assert eni_of(ec2, spare)["Status"] == "available"


def test_warm_attach_to_stopped_instance_is_allowed(strict: Make, ec2: Any) -> None:
    """Rule: warm attach (stopped target) is legal; the new attachment has DeleteOnTermination off."""
    strict()
    world = build_world(ec2, mode="eni")
    assert world.eni_id
    ec2.stop_instances(InstanceIds=[world.standbys[0]])
    detach_now(ec2, world.eni_id)
    ec2.attach_network_interface(
        NetworkInterfaceId=world.eni_id, InstanceId=world.standbys[0], DeviceIndex=1
    )
    attachment = eni_of(ec2, world.eni_id)["Attachment"]
    assert attachment["InstanceId"] == world.standbys[0]
    assert attachment["Status"] == "attached"
    assert attachment["DeleteOnTermination"] is False


def test_attach_shows_attaching_then_attached(strict: Make, ec2: Any) -> None:
    """State: an attachment is `attaching` for attach_delay_s, then `attached`."""
    strict(attach_delay_s=0.3)
    world = build_world(ec2, mode="eni")
    spare = spare_eni(ec2, world)
    ec2.attach_network_interface(
        NetworkInterfaceId=spare, InstanceId=world.standbys[0], DeviceIndex=1
    )
    assert eni_of(ec2, spare)["Attachment"]["Status"] == "attaching"
    time.sleep(0.35)
    assert eni_of(ec2, spare)["Attachment"]["Status"] == "attached"


# ---- DetachNetworkInterface ---------------------------------------------------------------


def test_detach_of_eth0_is_operation_not_permitted(strict: Make, ec2: Any) -> None:
    """Rule: the primary interface (device index 0) can never be detached."""
    strict()
    world = build_world(ec2, mode="eni")
    eth0 = eth0_of(ec2, world.primary)
    with pytest.raises(ClientError) as caught:
        ec2.detach_network_interface(
            AttachmentId=eni_of(ec2, eth0)["Attachment"]["AttachmentId"], Force=True
        )
    assert caught.value.response["Error"] == {
        "Code": "OperationNotPermitted",
        "Message": "The network interface at device index 0 cannot be detached.",
    }
    assert eni_of(ec2, eth0)["Attachment"]["Status"] == "attached"


def test_detach_of_unknown_attachment_is_not_found(strict: Make, ec2: Any) -> None:
    """Rule: an unknown attachment id is InvalidAttachmentID.NotFound."""
    strict()
    code, _ = error_of(ec2.detach_network_interface, AttachmentId="eni-attach-0123456789abcdef0")
    assert code == "InvalidAttachmentID.NotFound"


def test_detach_shows_detaching_then_available(strict: Make, ec2: Any) -> None:
    """State: `detaching` (ENI in-use, index busy) for detach_delay_s, then ENI `available`."""
    strict(detach_delay_s=0.3)
    world = build_world(ec2, mode="eni")
    assert world.eni_id
    detach_now(ec2, world.eni_id)
    eni = eni_of(ec2, world.eni_id)
    assert (eni["Status"], eni["Attachment"]["Status"]) == ("in-use", "detaching")
    nics = instance_of(ec2, world.primary)["NetworkInterfaces"]
    assert {n["Attachment"]["DeviceIndex"]: n["Attachment"]["Status"] for n in nics} == {
        0: "attached",
        1: "detaching",
    }
    code, _ = error_of(
        ec2.attach_network_interface,
        NetworkInterfaceId=world.eni_id,
        InstanceId=world.standbys[0],
        DeviceIndex=1,
    )
    assert code == "InvalidNetworkInterface.InUse"
    time.sleep(0.35)
    eni = eni_of(ec2, world.eni_id)
    assert eni["Status"] == "available"
    assert "Attachment" not in eni
    assert len(instance_of(ec2, world.primary)["NetworkInterfaces"]) == 1


def test_stuck_detach_completes_only_with_force(strict: Make, ec2: Any) -> None:
    """State: a stuck ENI stays `detaching` through graceful detaches until Force=True."""
    layer = strict(detach_delay_s=0.1)
    world = build_world(ec2, mode="eni")
    assert world.eni_id
    layer.stick_detach(world.eni_id)
    attachment_id = eni_of(ec2, world.eni_id)["Attachment"]["AttachmentId"]
    ec2.detach_network_interface(AttachmentId=attachment_id)
    time.sleep(0.15)
    ec2.detach_network_interface(AttachmentId=attachment_id)
    time.sleep(0.15)
    assert eni_of(ec2, world.eni_id)["Attachment"]["Status"] == "detaching"
    ec2.detach_network_interface(AttachmentId=attachment_id, Force=True)
    time.sleep(0.15)
    assert eni_of(ec2, world.eni_id)["Status"] == "available"
    ec2.attach_network_interface(
        NetworkInterfaceId=world.eni_id, InstanceId=world.standbys[0], DeviceIndex=1
    )
    assert eni_of(ec2, world.eni_id)["Attachment"]["InstanceId"] == world.standbys[0]


# ---- ENI attributes, deletion, termination ------------------------------------------------


def test_modify_attachment_delete_on_termination_really_changes_it(strict: Make, ec2: Any) -> None:
    """Rule: ModifyNetworkInterfaceAttribute Attachment.DeleteOnTermination takes effect."""
    strict()
    world = build_world(ec2, mode="eni")
    assert world.eni_id
    attachment_id = eni_of(ec2, world.eni_id)["Attachment"]["AttachmentId"]
    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=world.eni_id,
        Attachment={"AttachmentId": attachment_id, "DeleteOnTermination": True},
    )
    assert eni_of(ec2, world.eni_id)["Attachment"]["DeleteOnTermination"] is True
    code, _ = error_of(
        ec2.modify_network_interface_attribute,
        NetworkInterfaceId=world.eni_id,
        Attachment={"AttachmentId": "eni-attach-0000000000000000", "DeleteOnTermination": False},
    )
    assert code == "InvalidAttachmentID.NotFound"
    assert eni_of(ec2, world.eni_id)["Attachment"]["DeleteOnTermination"] is True


def test_delete_of_attached_eni_is_in_use(strict: Make, ec2: Any) -> None:
    """Rule: an ENI cannot be deleted while attached."""
    strict()
    world = build_world(ec2, mode="eni")
    assert world.eni_id
    code, _ = error_of(ec2.delete_network_interface, NetworkInterfaceId=world.eni_id)
    assert code == "InvalidNetworkInterface.InUse"
    assert eni_of(ec2, world.eni_id)["Attachment"]["InstanceId"] == world.primary


def test_terminate_deletes_or_detaches_secondary_enis_by_delete_on_termination(
    strict: Make, ec2: Any
) -> None:
    """Rule: on terminate, DeleteOnTermination ENIs are deleted, others detached to available."""
    strict()
    world = build_world(ec2, mode="eni")
    assert world.eni_id
    doomed = spare_eni(ec2, world)
    ec2.attach_network_interface(NetworkInterfaceId=doomed, InstanceId=world.primary, DeviceIndex=2)
    attachment_id = eni_of(ec2, doomed)["Attachment"]["AttachmentId"]
    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=doomed,
        Attachment={"AttachmentId": attachment_id, "DeleteOnTermination": True},
    )
    eth0 = eth0_of(ec2, world.primary)
    ec2.terminate_instances(InstanceIds=[world.primary])
    floating = eni_of(ec2, world.eni_id)
    assert floating["Status"] == "available"
    assert "Attachment" not in floating
    for gone in (doomed, eth0):
        code, _ = error_of(ec2.describe_network_interfaces, NetworkInterfaceIds=[gone])
        assert code == "InvalidNetworkInterfaceID.NotFound"


# ---- Secondary private IPs and Elastic IPs -----------------------------------------------


def test_assign_of_used_ip_without_reassignment_is_refused(strict: Make, ec2: Any) -> None:
    """Rule: moving an assigned IP needs AllowReassignment; the IP stays where it was."""
    strict()
    world = build_world(ec2, mode="secondary-ip")
    assert world.ip
    standby_eth0 = eth0_of(ec2, world.standbys[0])
    with pytest.raises(ClientError) as caught:
        ec2.assign_private_ip_addresses(
            NetworkInterfaceId=standby_eth0, PrivateIpAddresses=[world.ip], AllowReassignment=False
        )
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "is assigned, but move is not allowed" in caught.value.response["Error"]["Message"]
    assert world.ip in ips_of(ec2, eth0_of(ec2, world.primary))
    assert world.ip not in ips_of(ec2, standby_eth0)


def test_assign_with_reassignment_moves_ip_off_old_eni(strict: Make, ec2: Any) -> None:
    """Rule: AllowReassignment moves the IP: it is gone from the old ENI (moto keeps both)."""
    strict()
    world = build_world(ec2, mode="secondary-ip")
    assert world.ip
    standby_eth0 = eth0_of(ec2, world.standbys[0])
    ec2.assign_private_ip_addresses(
        NetworkInterfaceId=standby_eth0, PrivateIpAddresses=[world.ip], AllowReassignment=True
    )
    assert world.ip in ips_of(ec2, standby_eth0)
    assert world.ip not in ips_of(ec2, eth0_of(ec2, world.primary))
    found = ec2.describe_network_interfaces(
        Filters=[{"Name": "addresses.private-ip-address", "Values": [world.ip]}]
    )["NetworkInterfaces"]
    assert [n["NetworkInterfaceId"] for n in found] == [standby_eth0]


def test_eip_follows_reassigned_ip_after_delay(strict: Make, ec2: Any) -> None:
    """Rule: the EIP on a reassigned IP follows it to the new ENI, asynchronously."""
    strict(eip_follow_delay_s=0.3)
    world = build_world(ec2, mode="secondary-ip")
    assert world.ip
    assert world.allocation_id
    standby_eth0 = eth0_of(ec2, world.standbys[0])
    ec2.assign_private_ip_addresses(
        NetworkInterfaceId=standby_eth0, PrivateIpAddresses=[world.ip], AllowReassignment=True
    )
    assert "AssociationId" not in address_of(ec2, world.allocation_id)
    time.sleep(0.35)
    address = address_of(ec2, world.allocation_id)
    assert address["NetworkInterfaceId"] == standby_eth0
    assert address["PrivateIpAddress"] == world.ip
    assert address["InstanceId"] == world.standbys[0]
    by_ip = {p["PrivateIpAddress"]: p for p in eni_of(ec2, standby_eth0)["PrivateIpAddresses"]}
    assert by_ip[world.ip]["Association"]["PublicIp"] == world.public_ip


def test_eip_does_not_follow_when_eip_follows_is_off(strict: Make, ec2: Any) -> None:
    """Rule (eip_follows=False): the EIP is left disassociated; the orchestrator re-associates."""
    strict(eip_follows=False)
    world = build_world(ec2, mode="secondary-ip")
    assert world.ip
    assert world.allocation_id
    standby_eth0 = eth0_of(ec2, world.standbys[0])
    ec2.assign_private_ip_addresses(
        NetworkInterfaceId=standby_eth0, PrivateIpAddresses=[world.ip], AllowReassignment=True
    )
    time.sleep(0.05)
    address = address_of(ec2, world.allocation_id)
    assert "AssociationId" not in address
    assert "NetworkInterfaceId" not in address
    assert "InstanceId" not in address
    ec2.associate_address(
        AllocationId=world.allocation_id,
        NetworkInterfaceId=standby_eth0,
        PrivateIpAddress=world.ip,
        AllowReassociation=True,
    )
    assert address_of(ec2, world.allocation_id)["PrivateIpAddress"] == world.ip


def test_unassign_of_primary_ip_is_invalid_parameter_value(strict: Make, ec2: Any) -> None:
    """Rule: an ENI's primary private IP cannot be unassigned."""
    strict()
    world = build_world(ec2, mode="secondary-ip")
    eth0 = eth0_of(ec2, world.primary)
    primary_ip = eni_of(ec2, eth0)["PrivateIpAddress"]
    code, _ = error_of(
        ec2.unassign_private_ip_addresses, NetworkInterfaceId=eth0, PrivateIpAddresses=[primary_ip]
    )
    assert code == "InvalidParameterValue"
    assert primary_ip in ips_of(ec2, eth0)


def test_associate_address_honours_private_ip_address(strict: Make, ec2: Any) -> None:
    """Rule: AssociateAddress maps the EIP to the PrivateIpAddress asked for, not the primary."""
    strict()
    world = build_world(ec2, mode="secondary-ip")
    assert world.allocation_id
    address = address_of(ec2, world.allocation_id)
    eth0 = eth0_of(ec2, world.primary)
    assert (address["NetworkInterfaceId"], address["PrivateIpAddress"]) == (eth0, world.ip)
    assert address["InstanceId"] == world.primary
    eni = eni_of(ec2, eth0)
    assert "Association" not in eni  # the primary IP has no public address
    by_ip = {p["PrivateIpAddress"]: p for p in eni["PrivateIpAddresses"]}
    assert by_ip[world.ip]["Association"]["AllocationId"] == world.allocation_id


def test_associate_address_already_associated_needs_reassociation(strict: Make, ec2: Any) -> None:
    """Rule: an associated EIP moves only with AllowReassociation, and then cleanly."""
    strict()
    world = build_world(ec2, mode="eip")
    assert world.allocation_id
    old_eth0, new_eth0 = eth0_of(ec2, world.primary), eth0_of(ec2, world.standbys[0])
    code, _ = error_of(
        ec2.associate_address,
        AllocationId=world.allocation_id,
        NetworkInterfaceId=new_eth0,
        AllowReassociation=False,
    )
    assert code == "Resource.AlreadyAssociated"
    assert address_of(ec2, world.allocation_id)["NetworkInterfaceId"] == old_eth0
    ec2.associate_address(
        AllocationId=world.allocation_id, NetworkInterfaceId=new_eth0, AllowReassociation=True
    )
    address = address_of(ec2, world.allocation_id)
    assert (address["NetworkInterfaceId"], address["InstanceId"]) == (new_eth0, world.standbys[0])
    assert "Association" not in eni_of(ec2, old_eth0)
    assert eni_of(ec2, new_eth0)["Association"]["PublicIp"] == world.public_ip


# ---- DescribeInstanceStatus ---------------------------------------------------------------


def test_instance_status_reports_set_status_and_not_applicable_when_stopped(
    strict: Make, ec2: Any
) -> None:
    """Rule: set_status shows in DescribeInstanceStatus; stopped ones need IncludeAllInstances."""
    layer = strict()
    world = build_world(ec2, mode="eni")
    layer.set_status(world.primary, system="ok", instance="impaired")
    ec2.stop_instances(InstanceIds=[world.standbys[0]])
    ids = [world.primary, world.standbys[0]]
    running = ec2.describe_instance_status(InstanceIds=ids)["InstanceStatuses"]
    assert [s["InstanceId"] for s in running] == [world.primary]
    assert running[0]["InstanceStatus"]["Status"] == "impaired"
    assert running[0]["SystemStatus"]["Status"] == "ok"
    every = ec2.describe_instance_status(InstanceIds=ids, IncludeAllInstances=True)
    by_id = {s["InstanceId"]: s for s in every["InstanceStatuses"]}
    assert by_id[world.standbys[0]]["InstanceStatus"]["Status"] == "not-applicable"


def test_instance_status_takes_at_most_100_ids(strict: Make, ec2: Any) -> None:
    """Rule: DescribeInstanceStatus refuses more than 100 instance ids per call."""
    strict()
    world = build_world(ec2, mode="eni")
    ids = [world.primary] * 101
    code, _ = error_of(ec2.describe_instance_status, InstanceIds=ids)
    assert code == "InvalidParameterValue"


# ---- DryRun, IAM, faults, throttling, the call log ----------------------------------------


def test_dry_run_answers_dry_run_operation_and_never_mutates(strict: Make, ec2: Any) -> None:
    """Rule: DryRun=True answers DryRunOperation and changes nothing, even for a refused move."""
    layer = strict()
    world = build_world(ec2, mode="eni")
    assert world.eni_id
    attachment_id = eni_of(ec2, world.eni_id)["Attachment"]["AttachmentId"]
    layer.reset_log()
    code, status = error_of(ec2.detach_network_interface, AttachmentId=attachment_id, DryRun=True)
    assert (code, status) == ("DryRunOperation", 412)
    assert eni_of(ec2, world.eni_id)["Attachment"]["Status"] == "attached"
    assert layer.mutating_calls() == []
    assert layer.calls_to("DetachNetworkInterface")[0].dry_run is True


def test_deny_answers_unauthorized_operation_with_and_without_dry_run(
    strict: Make, ec2: Any
) -> None:
    """Rule: a denied action is UnauthorizedOperation (403), DryRun or not, and does nothing."""
    layer = strict()
    world = build_world(ec2, mode="eni")
    assert world.eni_id
    layer.deny("DetachNetworkInterface")
    attachment_id = eni_of(ec2, world.eni_id)["Attachment"]["AttachmentId"]
    for dry_run in (True, False):
        code, status = error_of(
            ec2.detach_network_interface, AttachmentId=attachment_id, DryRun=dry_run
        )
        assert (code, status) == ("UnauthorizedOperation", 403)
    assert eni_of(ec2, world.eni_id)["Attachment"]["Status"] == "attached"
    code, _ = error_of(
        ec2.attach_network_interface,
        NetworkInterfaceId=world.eni_id,
        InstanceId=world.standbys[0],
        DeviceIndex=1,
        DryRun=True,
    )
    assert code == "DryRunOperation"


def test_injected_faults_answer_the_codes_with_aws_statuses(strict: Make, ec2: Any) -> None:
    """Faults at rate 1.0: RequestLimitExceeded as 503, InternalError as 500 (botocore retries both)."""
    layer = strict(seed=7)
    world = build_world(ec2, mode="eni")
    layer.inject_faults(1.0)
    seen = {error_of(ec2.describe_instances, InstanceIds=[world.primary]) for _ in range(20)}
    assert seen == {("RequestLimitExceeded", 503), ("InternalError", 500)}
    assert {c.error for c in layer.calls_to("DescribeInstances")} == {
        "RequestLimitExceeded",
        "InternalError",
    }
    layer.inject_faults(0.0)
    assert instance_of(ec2, world.primary)["InstanceId"] == world.primary


def test_token_bucket_throttles_attach_after_burst_of_50(strict: Make, ec2: Any) -> None:
    """Throttling: the mutating bucket holds 50 (DryRun calls count); 5 tokens come back a second."""
    clock = FakeClock()
    layer = strict(token_buckets=True, clock=clock)
    world = build_world(ec2, mode="eni")
    spare = spare_eni(ec2, world)
    clock.advance(60)  # building the world spent mutating tokens: let the bucket fill up again

    def dry_attach() -> tuple[str, int]:
        return error_of(
            ec2.attach_network_interface,
            NetworkInterfaceId=spare,
            InstanceId=world.standbys[0],
            DeviceIndex=1,
            DryRun=True,
        )

    answers = [dry_attach() for _ in range(60)]
    assert answers[:50] == [("DryRunOperation", 412)] * 50
    assert answers[50:] == [("RequestLimitExceeded", 503)] * 10
    # Other buckets are separate: reads still pass.
    assert eni_of(ec2, spare)["Status"] == "available"
    assert [c.error for c in layer.calls_to("AttachNetworkInterface")][-10:] == [
        "RequestLimitExceeded"
    ] * 10
    clock.advance(0.2)  # one token back
    assert [dry_attach() for _ in range(2)] == [
        ("DryRunOperation", 412),
        ("RequestLimitExceeded", 503),
    ]


def test_token_bucket_unfiltered_describe_has_smaller_bucket(strict: Make, ec2: Any) -> None:
    """Throttling: unfiltered DescribeNetworkInterfaces gets 50; filtered ones draw from 100."""
    strict(token_buckets=True, clock=FakeClock())
    answers = []
    for _ in range(51):
        try:
            ec2.describe_network_interfaces()
            answers.append("ok")
        except ClientError as exc:
            answers.append(exc.response["Error"]["Code"])
    assert answers == ["ok"] * 50 + ["RequestLimitExceeded"]
    for _ in range(60):
        ec2.describe_network_interfaces(Filters=[{"Name": "status", "Values": ["available"]}])


def test_call_log_records_every_call_with_its_error(strict: Make, ec2: Any) -> None:
    """The call log: service, action, params, error and DryRun, STS included."""
    layer = strict()
    world = build_world(ec2, mode="eni")
    layer.reset_log()
    client("sts").get_caller_identity()
    error_of(ec2.detach_network_interface, AttachmentId="eni-attach-0123456789abcdef0")
    ec2.describe_instances(InstanceIds=[world.primary])
    assert [(c.service, c.action, c.error) for c in layer.calls] == [
        ("sts", "GetCallerIdentity", None),
        ("ec2", "DetachNetworkInterface", "InvalidAttachmentID.NotFound"),
        ("ec2", "DescribeInstances", None),
    ]
    assert layer.calls[1].params["AttachmentId"] == "eni-attach-0123456789abcdef0"
    assert layer.calls[1].mutating
    assert not layer.calls[2].mutating
    assert layer.calls[0].at <= layer.calls[1].at <= layer.calls[2].at


def test_install_is_idempotent_and_exclusive(moto: None) -> None:
    """One layer at a time; install and uninstall twice are harmless."""
    first, second = StrictLayer(), StrictLayer()
    first.install()
    try:
        first.install()
        with pytest.raises(RuntimeError):
            second.install()
    finally:
        first.uninstall()
        first.uninstall()
    with second:
        pass


def test_build_worlds_gives_distinct_groups_in_one_vpc(strict: Make, ec2: Any) -> None:
    """build_worlds: n groups sharing a VPC, each with its own resource and members."""
    strict()
    worlds = build_worlds(ec2, 3, "secondary-ip")
    assert len({w.vpc_id for w in worlds}) == 1
    assert len({w.ip for w in worlds}) == 3
    assert len({w.primary for w in worlds} | {s for w in worlds for s in w.standbys}) == 6
    for world in worlds:
        assert world.allocation_id
        assert address_of(ec2, world.allocation_id)["PrivateIpAddress"] == world.ip


# ---- Through moto's server, from another process ------------------------------------------

_SUBPROCESS_ATTACH = textwrap.dedent(
    """
    import sys
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    ec2 = boto3.client("ec2", config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))
    try:
        ec2.attach_network_interface(
            NetworkInterfaceId=sys.argv[1], InstanceId=sys.argv[2], DeviceIndex=1
        )
    except ClientError as exc:
        print(exc.response["Error"]["Code"])
    else:
        print("OK")
    """
)


def test_server_mode_subprocess_sees_strict_rules(aws_env: None) -> None:
    """Server mode: a boto3 client in another process gets EC2's refusal from the layer."""
    with SandboxServer() as server, StrictLayer() as layer:
        server.reset()
        ec2 = client("ec2", endpoint_url=server.url, config=NO_RETRY)
        world = build_world(ec2, mode="eni", other_az_member=True)
        assert world.eni_id
        assert world.other_az
        env = {**os.environ, "AWS_ENDPOINT_URL": server.url}
        reply = subprocess.run(
            [sys.executable, "-c", _SUBPROCESS_ATTACH, world.eni_id, world.other_az],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert reply.stdout.strip() == "InvalidParameterCombination"
        assert eni_of(ec2, world.eni_id)["Attachment"]["InstanceId"] == world.primary
        refused = layer.calls_to("AttachNetworkInterface")[-1]
        assert refused.error == "InvalidParameterCombination"
        server.reset()
