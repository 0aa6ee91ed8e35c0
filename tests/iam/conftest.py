"""A rig for the IAM tests: the real policy files, moto's IAM enforcement, the strict layer.

moto enforces IAM when `settings.INITIAL_NO_AUTH_ACTION_COUNT` requests have been served
since it was last set (`set_initial_no_auth_action_count(n)` in-process, `POST
/moto-api/reset-auth` with body `n` on the server): the first n requests pass
unauthenticated, every later one must be signed with keys of a known IAM user whose
policies allow the action. moto checks the action only: it ignores resource ARNs and
condition keys, and answers `AccessDenied` where EC2 says `UnauthorizedOperation`. So
the user here gets one statement made of the real policy's actions on `"Resource": "*"`;
the ARNs and tag conditions are left to the offline checker (test_policy_lint.py).

The world and the IAM user are built before enforcement starts (moto's default count
is infinite), and the code under test runs inside `set_initial_no_auth_action_count(0)`,
so no setup call has to be counted.

The strict layer answers some requests itself (every DryRun, every detach) and checks
EC2's rules before it lets moto act, so moto's own IAM check, which runs inside the
moto call, is skipped or comes too late for those. AWS evaluates IAM first, so
`IamStrictLayer` runs moto's check before the layer sees the request.
"""

from __future__ import annotations

import functools
import json
import os
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count
from werkzeug.exceptions import HTTPException

from failover.aws.ec2 import Ec2Cloud
from failover.config import Group, parse
from failover.ops.clock import SystemClock
from failover.sandbox.server import SandboxServer
from failover.sandbox.strict import StrictLayer
from failover.sandbox.world import World, build_world
from failover.service.engine import Engine
from failover.store.sqlite import SqliteStore

from ..conftest import FAKE_AWS_ENV, REGION, members_of

T = TypeVar("T")

POLICIES = Path(__file__).resolve().parents[2] / "policies"
EC2_POLICY = POLICIES / "failover-ec2.json"
DYNAMODB_POLICY = POLICIES / "failover-dynamodb.json"
USER = "failover-orchestrator"


def load_policy(path: Path) -> dict[str, Any]:
    """A policy document from policies/."""
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    """The policy's statements as a list (IAM also accepts a single object)."""
    raw = policy["Statement"]
    return list(raw) if isinstance(raw, list) else [raw]


def as_list(value: str | list[str]) -> list[str]:
    """An IAM element that may be a string or a list, as a list."""
    return [value] if isinstance(value, str) else list(value)


def allowed_actions(policy: dict[str, Any]) -> list[str]:
    """Every action an Allow statement of `policy` names, sorted (`ec2:AttachNetworkInterface`)."""
    return sorted(
        {a for s in statements(policy) if s["Effect"] == "Allow" for a in as_list(s["Action"])}
    )


EC2_ACTIONS = allowed_actions(load_policy(EC2_POLICY))


@functools.cache
def parliament() -> ModuleType:
    """The parliament IAM linter, imported once with its import-time noise silenced.

    Its __init__ reads its action database through pkg_resources and leaves the files
    open: warnings that pytest (filterwarnings = error) would turn into failures.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        import parliament as module
    return module


def moto_policy(actions: list[str]) -> str:
    """The actions of the real policy on every resource: all that moto can evaluate."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": sorted(actions), "Resource": "*"}],
        }
    )


class IamStrictLayer(StrictLayer):
    """The strict layer, with moto's IAM check run first, as AWS does, for every request.

    A request that passes is checked again inside moto's `call_action` (and passes again),
    so each request counts twice towards a nonzero no-auth count: the rig only uses 0.
    """

    def dispatch(self, response: Any, original: Any) -> Any:
        """Authorize like moto's `call_action` does; denied requests never reach the layer."""
        try:
            response._authenticate_and_authorize_normal_action()
        except HTTPException as denied:
            status, headers, body = response._transform_response(
                response.response_headers, (denied.description, {"status": denied.code})
            )
            return (status, *response._enrich_response(headers, body))
        return super().dispatch(response, original)


def create_policy(iam: Any, actions: list[str], name: str = "failover") -> None:
    """Attach an inline policy allowing `actions` to the user (policies add up)."""
    iam.put_user_policy(UserName=USER, PolicyName=name, PolicyDocument=moto_policy(actions))


def create_user(iam: Any, actions: list[str]) -> dict[str, str]:
    """An IAM user allowed `actions` (inline policy); its access key as boto3 keyword arguments."""
    iam.create_user(UserName=USER)
    create_policy(iam, actions)
    key = iam.create_access_key(UserName=USER)["AccessKey"]
    return {
        "aws_access_key_id": key["AccessKeyId"],
        "aws_secret_access_key": key["SecretAccessKey"],
    }


def group_config(world: World, mode: str, *, eip: bool = True) -> dict[str, Any]:
    """The config of group `g` over `world`: eni, secondary-ip (with or without its EIP), eip."""
    group: dict[str, Any] = {"name": "g", "mode": mode, "members": list(members_of(world))}
    if mode == "eni":
        group.update(eni=world.eni_id, device_index=1)
    elif mode == "secondary-ip":
        group.update(ip=world.ip, **({"eip": world.allocation_id} if eip else {}))
    elif mode == "route":
        group.update(cidr=world.cidr, route_tables=list(world.route_tables))
    else:
        group.update(eip=world.allocation_id)
    return group


def config_document(group: dict[str, Any], state: Path, endpoint_url: str | None = None) -> Any:
    aws: dict[str, Any] = {"region": REGION, "max_attempts": 3}
    if endpoint_url:
        aws["endpoint_url"] = endpoint_url
    return {
        "aws": aws,
        "state": {"path": str(state)},
        "defaults": {"move_timeout": "10s", "detach_timeout": "5s"},
        "groups": [group],
    }


@dataclass
class IamRig:
    """One world in moto, a user holding some of the policy's actions, and clients of both."""

    layer: IamStrictLayer
    admin_ec2: Any
    world: World
    keys: dict[str, str]
    group_doc: dict[str, Any]
    tmp_path: Path

    def enforced(self, fn: Callable[[], T]) -> T:
        """Run `fn` with moto enforcing IAM on every request (none let through unauthenticated)."""
        result: T = set_initial_no_auth_action_count(0)(fn)()
        return result

    def client(self, service: str) -> Any:
        """A client signed with the restricted user's keys (no session token: an IAM user's keys)."""
        return make_client(service, **self.keys)

    def engine(self) -> tuple[Engine, Group, SqliteStore]:
        """The real engine over the restricted clients and a fresh SQLite store."""
        settings = parse(config_document(self.group_doc, self.tmp_path / "state.db"), "test")
        store = SqliteStore(settings.state.path)
        clock = SystemClock()
        cloud = Ec2Cloud(self.client("ec2"), self.client("sts"), clock.now)
        return Engine(cloud, store, clock, eip_follow_grace_s=0.3), settings.groups[0], store

    def write_config(self, endpoint_url: str | None = None) -> Path:
        path = self.tmp_path / "config.yaml"
        document = config_document(self.group_doc, self.tmp_path / "state.db", endpoint_url)
        path.write_text(json.dumps(document))  # JSON is YAML
        return path

    # -- AWS state, read with the unrestricted client (after enforcement ended) -------------

    def eni_owner(self) -> str | None:
        assert self.world.eni_id is not None
        reply = self.admin_ec2.describe_network_interfaces(NetworkInterfaceIds=[self.world.eni_id])
        att = reply["NetworkInterfaces"][0].get("Attachment")
        return att["InstanceId"] if att and att.get("Status") == "attached" else None

    def ip_holders(self) -> set[str]:
        reply = self.admin_ec2.describe_instances(InstanceIds=list(members_of(self.world)))
        return {
            i["InstanceId"]
            for r in reply["Reservations"]
            for i in r["Instances"]
            for nic in i.get("NetworkInterfaces", [])
            if self.world.ip in {p["PrivateIpAddress"] for p in nic.get("PrivateIpAddresses", [])}
        }

    def route_targets(self) -> set[str]:
        """The ENIs the overlay route targets in the world's tables (one once a move is done)."""
        reply = self.admin_ec2.describe_route_tables(RouteTableIds=list(self.world.route_tables))
        return {
            r["NetworkInterfaceId"]
            for t in reply["RouteTables"]
            for r in t["Routes"]
            if r.get("DestinationCidrBlock") == self.world.cidr
        }

    def eth0(self, instance_id: str) -> str:
        reply = self.admin_ec2.describe_instances(InstanceIds=[instance_id])
        nics = reply["Reservations"][0]["Instances"][0]["NetworkInterfaces"]
        return str(
            next(n for n in nics if n["Attachment"]["DeviceIndex"] == 0)["NetworkInterfaceId"]
        )

    def eip_owner(self) -> str | None:
        reply = self.admin_ec2.describe_addresses(AllocationIds=[self.world.allocation_id])
        owner = reply["Addresses"][0].get("InstanceId")
        return str(owner) if owner else None


_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3})
_FAKE_KEYS = {
    "aws_access_key_id": FAKE_AWS_ENV["AWS_ACCESS_KEY_ID"],
    "aws_secret_access_key": FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
}


@functools.cache
def _session() -> boto3.session.Session:
    """One session for every client the tests build: botocore caches the service models it
    loads per session, and mock_aws drops boto3's default session each time it starts."""
    return boto3.session.Session(region_name=REGION)


def make_client(service: str, endpoint_url: str | None = None, **keys: str) -> Any:
    """A client signed with `keys`, by default the fake ones (no IAM user: setup only)."""
    build: Any = _session().client  # one builder for every service, as failover/aws/clients.py
    return build(service, endpoint_url=endpoint_url, config=_CONFIG, **(keys or _FAKE_KEYS))


RigFactory = Callable[..., IamRig]


@pytest.fixture
def no_default_amis(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto spends ~0.3 s loading its AMI catalogue into each new EC2 backend; the world needs none."""
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


@pytest.fixture
def iam_rig(aws_env: None, no_default_amis: None, tmp_path: Path) -> Iterator[RigFactory]:
    """In-process moto: `iam_rig(mode, actions, eip=True, **layer_options)` builds one IamRig."""
    layers: list[IamStrictLayer] = []
    with mock_aws():

        def make(mode: str, actions: list[str], *, eip: bool = True, **layer: Any) -> IamRig:
            strict = IamStrictLayer(**layer)
            strict.install()
            layers.append(strict)
            admin_ec2 = make_client("ec2")
            world = build_world(admin_ec2, mode=mode, group="g")
            keys = create_user(make_client("iam"), actions)
            strict.reset_log()
            return IamRig(
                strict, admin_ec2, world, keys, group_config(world, mode, eip=eip), tmp_path
            )

        yield make
        for strict in layers:
            strict.uninstall()


# -- moto's server, for the CLI run as a process ---------------------------------------------


@pytest.fixture(scope="session")
def iam_server() -> Iterator[SandboxServer]:
    """moto's server on 127.0.0.1 for this directory's process tests."""
    with SandboxServer() as server:
        yield server


def reset_auth(server: SandboxServer, count: float) -> None:
    """`POST /moto-api/reset-auth`: let `count` more requests through, then enforce IAM."""
    request = urllib.request.Request(
        f"{server.url}/moto-api/reset-auth",
        str(count).encode(),
        # Not a form: moto reads the raw body, which Flask leaves empty for form posts.
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        reply.read()


@dataclass
class ServerRig:
    """A world in moto's server and a user holding some of the policy's actions."""

    server: SandboxServer
    layer: IamStrictLayer
    admin_ec2: Any
    world: World
    keys: dict[str, str]
    group_doc: dict[str, Any]
    tmp_path: Path

    def env(self) -> dict[str, str]:
        """A `failover` process's environment: the restricted keys only, no real config."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.pop("FAILOVER_CONFIG", None)
        env.update(
            AWS_ACCESS_KEY_ID=self.keys["aws_access_key_id"],
            AWS_SECRET_ACCESS_KEY=self.keys["aws_secret_access_key"],
            AWS_DEFAULT_REGION=REGION,
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        )
        return env

    def write_config(self) -> Path:
        path = self.tmp_path / "config.yaml"
        document = config_document(self.group_doc, self.tmp_path / "state.db", self.server.url)
        path.write_text(json.dumps(document))
        return path

    def stop_enforcing(self) -> None:
        """Let every request through again, so the test's own client can read AWS state."""
        reset_auth(self.server, float("inf"))

    def eni_owner(self) -> str | None:
        assert self.world.eni_id is not None
        reply = self.admin_ec2.describe_network_interfaces(NetworkInterfaceIds=[self.world.eni_id])
        att = reply["NetworkInterfaces"][0].get("Attachment")
        return att["InstanceId"] if att and att.get("Status") == "attached" else None


@pytest.fixture
def server_rig(
    iam_server: SandboxServer, aws_env: None, no_default_amis: None, tmp_path: Path
) -> Iterator[Callable[..., ServerRig]]:
    """`server_rig(mode, actions)`: a fresh server state, the user, IAM enforced until the end."""
    layers: list[IamStrictLayer] = []

    def make(mode: str, actions: list[str]) -> ServerRig:
        iam_server.reset()
        strict = IamStrictLayer()
        strict.install()
        layers.append(strict)
        admin_ec2 = make_client("ec2", iam_server.url)
        world = build_world(admin_ec2, mode=mode, group="g")
        keys = create_user(make_client("iam", iam_server.url), actions)
        reset_auth(iam_server, 0)
        return ServerRig(
            iam_server, strict, admin_ec2, world, keys, group_config(world, mode), tmp_path
        )

    try:
        yield make
    finally:
        for strict in layers:
            strict.uninstall()
        reset_auth(iam_server, float("inf"))
