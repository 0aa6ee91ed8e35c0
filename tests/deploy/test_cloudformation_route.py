"""deploy/cloudformation/overlay-route.yaml: cfn-lint clean, deploys into moto, and a `route`
group written from its outputs validates and fails over to the standby in the other AZ.

moto's CloudFormation ignores AWS::EC2::Instance's SourceDestCheck: the test turns the
check off with boto3, as the stack does on AWS, before running `failover validate`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import boto3
import yaml
from cfnlint.api import ManualArgs, lint_file

from ..conftest import REGION, run_cli, write_config
from .conftest import Sandbox

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "cloudformation" / "overlay-route.yaml"
AMI = "ami-12c6146b"  # one of moto's AMIs


def test_cfn_lint_finds_nothing() -> None:
    """Rule: cfn-lint reports no error, warning or informational finding on the template."""
    matches = lint_file(TEMPLATE, config=ManualArgs(include_checks=["I"]))
    assert [str(m) for m in matches] == []


def test_stack_deploys_and_its_route_group_validates_and_moves_across_azs(
    sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    """Rule: the stack's members sit in two AZs with eth0's source/dest check off, both tables
    route the overlay /32 to the primary; `validate` passes and `move` repoints both tables."""
    sb = sandbox()
    cfn = boto3.client("cloudformation", region_name=REGION, endpoint_url=sb.url)
    cfn.create_stack(
        StackName="failover-overlay",
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": "ImageId", "ParameterValue": AMI}],
    )
    stack = cfn.describe_stacks(StackName="failover-overlay")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    group = yaml.safe_load(outputs["ConfigGroup"])
    primary, standby = outputs["PrimaryInstanceId"], outputs["StandbyInstanceId"]
    assert group["mode"] == "route"
    assert group["members"] == [primary, standby]
    assert group["route_tables"] == outputs["RouteTableIds"].split(",")
    zones = {
        i["InstanceId"]: i["Placement"]["AvailabilityZone"]
        for r in sb.ec2.describe_instances(InstanceIds=group["members"])["Reservations"]
        for i in r["Instances"]
    }
    assert len(set(zones.values())) == 2
    for member in group["members"]:
        # What the instances' SourceDestCheck property does on AWS; moto's CloudFormation skips it.
        sb.ec2.modify_instance_attribute(InstanceId=member, SourceDestCheck={"Value": False})

    group["checks"] = [{"type": "ec2"}]  # nothing listens on the members in moto
    config = write_config(
        tmp_path / "config.yaml",
        {
            "aws": {"region": REGION, "endpoint_url": sb.url},
            "state": {"path": str(tmp_path / "state.db")},
            "groups": [group],
        },
    )
    done = run_cli("validate", "--config", str(config))
    assert done.returncode == 0, done.stdout + done.stderr

    moved = run_cli("move", group["name"], "--to", standby, "--yes", "--config", str(config))
    assert moved.returncode == 0, moved.stdout + moved.stderr
    eth0 = sb.eth0(standby)
    tables = sb.ec2.describe_route_tables(RouteTableIds=group["route_tables"])["RouteTables"]
    routed = {
        (r.get("NetworkInterfaceId"), r["State"])
        for t in tables
        for r in t["Routes"]
        if r.get("DestinationCidrBlock") == group["cidr"]
    }
    assert routed == {(eth0, "active")}
