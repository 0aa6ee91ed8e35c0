"""deploy/cloudformation/failover.yaml: cfn-lint clean, policies equal policies/, Rules hold, deploys into moto, validates.

moto's CloudFormation reports AWS::EC2::NetworkInterfaceAttachment CREATE_COMPLETE and
does nothing (shared/reference/moto-vs-aws.md): the tests make that attachment with
boto3, as the stack would on AWS, before running `failover validate` on the outputs.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from cfnlint.api import ManualArgs, lint_file

from failover.aws.dynamodb import EXPIRES, PK, SK

from ..conftest import REGION, run_cli, write_config
from .conftest import Sandbox

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "cloudformation" / "failover.yaml"
POLICIES = ROOT / "policies"
AMI = "ami-12c6146b"  # one of moto's AMIs

# moto warns about the resource types it skips (the ENI attachment, the Lambda invoke
# config); pytest turns warnings into errors, in the server thread too.
moto_skips_types = pytest.mark.filterwarnings(
    "ignore:Tried to parse AWS.* but it's not supported by moto:UserWarning"
)


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, ...) read as their long JSON form."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def template() -> dict[str, Any]:
    document = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)  # a SafeLoader subclass
    assert isinstance(document, dict)
    return document


def policy_file(name: str) -> dict[str, Any]:
    document = json.loads((POLICIES / name).read_text())
    assert isinstance(document, dict)
    return document


def test_cfn_lint_finds_nothing() -> None:
    """Rule: cfn-lint reports no error, warning or informational finding on the template."""
    matches = lint_file(TEMPLATE, config=ManualArgs(include_checks=["I"]))
    assert [str(m) for m in matches] == []


@pytest.mark.parametrize(
    ("resource", "policy"),
    [
        ("FailoverEc2Policy", "failover-ec2.json"),
        ("FailoverDynamoDbPolicy", "failover-dynamodb.json"),
    ],
)
def test_template_policies_are_the_policies_files(resource: str, policy: str) -> None:
    """Rule: the role's policies are policies/*.json verbatim (edit both together)."""
    properties = template()["Resources"][resource]["Properties"]
    assert properties["PolicyDocument"] == policy_file(policy)
    with_lambda, without = properties["Roles"]["Fn::If"][1:]
    assert {"Ref": "FailoverRole"} in with_lambda
    assert without == [{"Ref": "FailoverRole"}]


def test_template_key_schema_and_floating_eni_rules() -> None:
    """Rule: table pk/sk on demand; the ENI keeps DeleteOnTermination off, index 1, tagged."""
    resources = template()["Resources"]
    table = resources["StateTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    # The store's own key names and TTL attribute, not copies of them.
    assert table["KeySchema"] == [
        {"AttributeName": PK, "KeyType": "HASH"},
        {"AttributeName": SK, "KeyType": "RANGE"},
    ]
    assert table["AttributeDefinitions"] == [
        {"AttributeName": PK, "AttributeType": "S"},
        {"AttributeName": SK, "AttributeType": "S"},
    ]
    assert table["TimeToLiveSpecification"] == {"AttributeName": EXPIRES, "Enabled": True}
    attachment = resources["FloatingEniAttachment"]["Properties"]
    assert attachment["DeleteOnTermination"] is False  # CloudFormation's default is true
    assert attachment["DeviceIndex"] == "1"
    assert attachment["InstanceId"] == {"Ref": "Primary"}
    for name in ("FloatingEni", "Primary", "Standby"):  # the policy's condition key
        tags = resources[name]["Properties"]["Tags"]
        assert {"Key": "failover:group", "Value": {"Ref": "GroupName"}} in tags, name
    function = resources["CheckFunction"]
    assert function["Condition"] == "WithLambda"
    assert function["Properties"]["Handler"] == "failover.aws_lambda.handler"


LAMBDA_VPC_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"


def test_template_lambda_runs_in_a_vpc_with_no_forced_concurrency() -> None:
    """Rule: the function has a VpcConfig from its parameters and the VPC-access policy, and
    reserves concurrency only when asked (a forced reservation fails on low-limit accounts)."""
    document = template()
    function = document["Resources"]["CheckFunction"]["Properties"]
    assert function["VpcConfig"] == {
        "Fn::If": [
            "LambdaVpcGiven",
            {
                "SubnetIds": {"Ref": "LambdaSubnetIds"},
                "SecurityGroupIds": [{"Ref": "LambdaSecurityGroupId"}],
            },
            {"Ref": "AWS::NoValue"},
        ]
    }
    assert function["ReservedConcurrentExecutions"] == {
        "Fn::If": [
            "ReserveLambdaConcurrency",
            {"Ref": "LambdaReservedConcurrency"},
            {"Ref": "AWS::NoValue"},
        ]
    }
    assert document["Parameters"]["LambdaReservedConcurrency"]["Default"] == ""
    role = document["Resources"]["FailoverLambdaRole"]["Properties"]
    assert role["ManagedPolicyArns"] == [
        {"Fn::Sub": LAMBDA_VPC_POLICY.replace(":aws:iam", ":${AWS::Partition}:iam")}
    ]


def rule_failures(**parameters: str) -> list[str]:
    """The AssertDescription of each assertion in the template's Rules that `parameters` fail,
    evaluated as CloudFormation does before it creates anything (moto skips Rules)."""
    document = template()
    specs = document["Parameters"]
    values = {name: spec.get("Default") for name, spec in specs.items()} | parameters

    def evaluate(node: Any) -> Any:
        if isinstance(node, str):
            return node
        if isinstance(node, list):
            return [evaluate(item) for item in node]
        ((function, argument),) = node.items()
        if function == "Ref":
            value = values[argument]
            return value.split(",") if specs[argument]["Type"] == "CommaDelimitedList" else value
        args = evaluate(argument)
        return {
            "Fn::Equals": lambda: args[0] == args[1],
            "Fn::Not": lambda: not args[0],
            "Fn::And": lambda: all(args),
            "Fn::Contains": lambda: args[1] in args[0],
        }[function]()

    return [
        " ".join(assertion["AssertDescription"].split())
        for rule in document["Rules"].values()
        if evaluate(rule["RuleCondition"])
        for assertion in rule["Assertions"]
        if not evaluate(assertion["Assert"])
    ]


LAMBDA_VPC = {"LambdaSubnetIds": "subnet-0a1b2c3d", "LambdaSecurityGroupId": "sg-0a1b2c3d"}


def test_template_rules_refuse_a_lambda_without_vpc_or_with_sqlite_unserialized() -> None:
    """Rule: a Lambda needs subnets and a security group; with sqlite it must run alone,
    with dynamodb the leases serialize it and no reservation is needed."""
    assert rule_failures() == []  # no Lambda: nothing to ask
    lambda_on = {"LambdaCodeBucket": "failover-code", "StateBackend": "dynamodb"}
    assert rule_failures(**lambda_on) == [
        "The Lambda probes members by their private addresses: give LambdaSubnetIds.",
        "The Lambda's network interfaces need a security group: give LambdaSecurityGroupId.",
    ]
    assert rule_failures(**lambda_on, **LAMBDA_VPC) == []
    sqlite = {**lambda_on, **LAMBDA_VPC, "StateBackend": "sqlite"}
    (failure,) = rule_failures(**sqlite)
    assert "set LambdaReservedConcurrency=1" in failure
    assert rule_failures(**sqlite, LambdaReservedConcurrency="1") == []


def deploy(sb: Sandbox, name: str, **parameters: str) -> dict[str, str]:
    """Create the stack in moto's server; its outputs."""
    cfn = boto3.client("cloudformation", region_name=REGION, endpoint_url=sb.url)
    cfn.create_stack(
        StackName=name,
        TemplateBody=TEMPLATE.read_text(),
        Capabilities=["CAPABILITY_IAM"],
        Parameters=[
            {"ParameterKey": key, "ParameterValue": value}
            for key, value in {"ImageId": AMI, **parameters}.items()
        ],
    )
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def attach_like_the_stack(sb: Sandbox, outputs: dict[str, str]) -> None:
    """What AWS::EC2::NetworkInterfaceAttachment does on AWS and not in moto."""
    assert sb.eni_owner(outputs["FloatingEniId"]) is None  # moto skipped it indeed
    sb.ec2.attach_network_interface(
        NetworkInterfaceId=outputs["FloatingEniId"],
        InstanceId=outputs["PrimaryInstanceId"],
        DeviceIndex=int(outputs["DeviceIndex"]),
    )


@moto_skips_types
def test_stack_deploys_and_failover_validate_accepts_its_outputs(
    sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    """Rule: a config.yaml written from the stack's outputs passes `failover validate` (exit 0)."""
    sb = sandbox()
    outputs = deploy(sb, "failover-pair")
    assert "StateTableName" not in outputs  # both optional parts are off by default
    assert "CheckFunctionName" not in outputs
    attach_like_the_stack(sb, outputs)
    group = {
        "name": outputs["GroupName"],
        "mode": "eni",
        "eni": outputs["FloatingEniId"],
        "device_index": int(outputs["DeviceIndex"]),
        "members": [outputs["PrimaryInstanceId"], outputs["StandbyInstanceId"]],
        "checks": [{"type": "ec2"}, {"type": "tcp", "port": 5432}],
    }
    assert yaml.safe_load(outputs["ConfigGroup"]) == group  # the ready-made snippet agrees
    config = write_config(
        tmp_path / "config.yaml",
        {
            "aws": {"region": outputs["Region"], "endpoint_url": sb.url},
            "state": {"path": str(tmp_path / "state.db")},
            "groups": [group],
        },
    )
    done = run_cli("validate", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert "AWS checks passed for 1 groups" in done.stdout

    members = sb.ec2.describe_instances(InstanceIds=group["members"])["Reservations"]
    zones = {i["Placement"]["AvailabilityZone"] for r in members for i in r["Instances"]}
    assert zones == {outputs["AvailabilityZone"]}


@moto_skips_types
def test_stack_with_dynamodb_and_lambda_grants_exactly_the_policies(
    sandbox: Callable[..., Sandbox],
) -> None:
    """Rule: the optional table (pk/sk, on demand) and Lambda (every minute, in the given VPC,
    no reserved concurrency) come with the policies."""
    sb = sandbox()
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=sb.url)
    s3.create_bucket(Bucket="failover-code")
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("config.yaml", "groups: []\n")
    s3.put_object(Bucket="failover-code", Key="failover-lambda.zip", Body=package.getvalue())
    vpc = sb.ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = sb.ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    group = sb.ec2.create_security_group(GroupName="failover-lambda", Description="x", VpcId=vpc)
    outputs = deploy(
        sb,
        "failover-full",
        StateBackend="dynamodb",
        LambdaCodeBucket="failover-code",
        LambdaSubnetIds=subnet,
        LambdaSecurityGroupId=group["GroupId"],
    )

    dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=sb.url)
    table = dynamodb.describe_table(TableName=outputs["StateTableName"])["Table"]
    assert {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]} == {
        (PK, "HASH"),
        (SK, "RANGE"),
    }
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    # (moto's CloudFormation ignores TimeToLiveSpecification: the template test checks it.)

    iam = boto3.client("iam", region_name=REGION, endpoint_url=sb.url)
    role_name = outputs["RoleArn"].rsplit("/", 1)[-1]
    documents = []
    for attached in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        version = iam.get_policy_version(
            PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"]
        )
        document = version["PolicyVersion"]["Document"]
        documents.append(json.loads(document) if isinstance(document, str) else document)
    expected = [policy_file("failover-ec2.json"), policy_file("failover-dynamodb.json")]
    assert sorted(documents, key=json.dumps) == sorted(expected, key=json.dumps)
    profile = iam.get_instance_profile(InstanceProfileName=outputs["InstanceProfileName"])
    assert [r["RoleName"] for r in profile["InstanceProfile"]["Roles"]] == [role_name]

    got = boto3.client("lambda", region_name=REGION, endpoint_url=sb.url).get_function(
        FunctionName=outputs["CheckFunctionName"]
    )
    function = got["Configuration"]
    assert function["Handler"] == "failover.aws_lambda.handler"
    assert function["VpcConfig"]["SubnetIds"] == [subnet]
    assert function["VpcConfig"]["SecurityGroupIds"] == [group["GroupId"]]
    assert "Concurrency" not in got  # no reservation: the lease serializes the passes
    # (moto's CloudFormation skips a role's ManagedPolicyArns: the template test checks it.)
    assert function["Timeout"] > 60  # longer than the default move_timeout
    events = boto3.client("events", region_name=REGION, endpoint_url=sb.url)
    (rule,) = events.list_rules()["Rules"]
    assert rule["ScheduleExpression"] == "rate(1 minute)"
    (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == function["FunctionArn"]
