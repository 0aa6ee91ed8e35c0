"""A sandbox AWS of its own for tests/multi/test_spread_scale.py: thousands of groups, one process.

`python -m tests.multi.scale_world GROUPS DIR` (from the repository root) builds GROUPS
groups straight into moto's EC2 backend (see `build`), then serves them with moto's
threaded server behind the strict layer, DynamoDB serialized as the real one is
(tests/store/moto_dynamodb.py). It writes DIR/world.json, prints `ready`, then answers one
command a line on stdin (and exits when stdin closes):

  calls PATH          the EC2 calls the layer logged, as JSON lines in PATH; answers `done`
  leases TABLE PATH   every lease item of TABLE, read from moto's model between two
                      DynamoDB requests, as JSON in PATH; answers `done`
  cpu                 answers this process's CPU seconds (user + system, every thread)
  quit                stops the server and exits

Why a process of its own: moto's backends are process-global, so the session's shared
server (tests/cli/conftest.py) would carry thousands of resources into every later test's
Describes, and a server here gets a GIL of its own instead of sharing the test runner's.

Two of moto's costs grow with the table and would make thousands of groups infeasible;
this process replaces them with equivalents that touch only what the request names (see
`_partition_local_queries` and `_item_scoped_transactions`). Nothing else is changed.

`ScaleWorld` is the test's side: it starts the process, reads the world, asks the commands.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
AZ = f"{REGION}a"
_AMI = "ami-12c6146b"
# 50 IPv4 addresses per interface (moto's instance data, as AWS's): eth0's primary and
# the floating IPs of 49 groups. The standby can take all 49 at once.
INSTANCE_TYPE = "m5.24xlarge"
_VPC_CIDR, _SUBNET_CIDR = "10.0.0.0/16", "10.0.0.0/17"
# Members take addresses from the bottom of the subnet (moto hands them out in order);
# the floating IPs are numbered from here up, so they never collide (5,000 of them end
# at 10.0.83.x, inside the /17).
_FIRST_FLOATING_IP = "10.0.64.0"


@dataclass(frozen=True)
class ScaleGroup:
    """One group of the scale world: its floating IP and its two members."""

    name: str
    ip: str
    primary: str
    standby: str


# ---- the server process ----------------------------------------------------------------


def groups_per_pair() -> int:
    """How many groups' floating IPs one primary's eth0 may carry beside its own IP."""
    from moto.ec2.models.instance_types import INSTANCE_TYPES

    per_interface: int = INSTANCE_TYPES[INSTANCE_TYPE]["NetworkInfo"]["Ipv4AddressesPerInterface"]
    return per_interface - 1


def build(groups: int) -> list[ScaleGroup]:
    """`groups` groups in mode secondary-ip, straight into moto's EC2 backend.

    Pairs of members are shared: pair n (a primary and a standby, one AZ) serves groups
    49n .. 49n+48, each group's floating IP a secondary private IP of the primary's eth0,
    as AssignPrivateIpAddresses would leave it. The members are tagged like any member
    (`failover:group`, which the IAM policy keys on; one value per instance, so the pair's).
    """
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[DEFAULT_ACCOUNT_ID][REGION]
    vpc = backend.create_vpc(_VPC_CIDR)
    subnet = backend.create_subnet(vpc.id, _SUBNET_CIDR, availability_zone=AZ)
    sg = backend.create_security_group("failover-scale", "failover sandbox members", vpc_id=vpc.id)
    share = groups_per_pair()
    pairs = -(-groups // share)
    reservation = backend.run_instances(
        _AMI,
        2 * pairs,
        None,
        [],
        instance_type=INSTANCE_TYPE,
        is_instance_type_default=False,
        placement=None,
        region_name=REGION,
        subnet_id=subnet.id,
        security_group_ids=[sg.id],
        nics=[],
        tags={},
    )
    instances = reservation.instances
    for n in range(pairs):
        primary, standby = instances[2 * n], instances[2 * n + 1]
        for member in (primary, standby):
            member.nics[0].delete_on_termination = True  # AWS's default at launch (moto: false)
        backend.create_tags([primary.id, standby.id], {"failover:group": f"pair{n}"})
    first = ipaddress.ip_address(_FIRST_FLOATING_IP)
    out = []
    for k in range(groups):
        primary, standby = instances[2 * (k // share)], instances[2 * (k // share) + 1]
        ip = str(first + k)
        primary.nics[0].private_ip_addresses.append({"Primary": False, "PrivateIpAddress": ip})
        out.append(ScaleGroup(f"g{k}", ip, primary.id, standby.id))
    return out


def _cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def _partition_local_queries() -> None:
    """Make moto's Query read only the asked partition, as DynamoDB's does.

    moto 5.2's Table.query sorts every item of the table to pick one partition's, so with
    5,000 groups (~20,000 items) one Query costs ~0.3 s and a health pass, which queries
    each of its groups' partitions three times, would take many minutes. Same answers:
    the items the original would have filtered down to, in the same order.
    """
    from moto.dynamodb.models.table import Table

    original = Table.query

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None or not self.range_key_attr:
            return original(self, hash_key, *args, **kwargs)
        partition = list(self.items[hash_key].values()) if hash_key in self.items else []
        # An instance attribute shadows the method for this call only (DynamoDB requests
        # are serialized, see serialized_dynamodb).
        self.all_items = lambda: sorted(partition, key=lambda i: (i.hash_key, i.range_key))
        try:
            return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query  # type: ignore[method-assign]


def _item_scoped_transactions() -> None:
    """Make moto's TransactWriteItems back up the items it writes, not the whole table.

    moto 5.2 deep-copies the table once per action of a transaction, for its rollback: a
    batch of 100 lease claims in a table of ~20,000 items takes tens of seconds. Here the
    touched items are copied before the transaction and put back if it is cancelled;
    moto's own rollback then finds the table itself, not a copy, to put back. Same answers,
    same all-or-nothing effect (requests are serialized, see serialized_dynamodb).
    """
    import copy

    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    class _TablesUncopied:
        """The `copy` module as moto's backend module sees it: tables are not copied."""

        @staticmethod
        def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    original = models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        backups: list[tuple[Any, Any, Any, Any]] = []
        for action in transact_items:
            kind, op = next(iter(action.items()))
            table = self.tables.get(op.get("TableName"))
            key = op.get("Item") if kind == "Put" else op.get("Key")
            if table is None or not key or table.hash_key_attr not in key:
                continue  # moto answers these with an error before writing anything
            hash_key = DynamoType(key[table.hash_key_attr])
            range_attr = table.range_key_attr
            range_key = DynamoType(key[range_attr]) if range_attr and range_attr in key else None
            if range_attr and range_key is None:
                continue
            current = table.get_item(hash_key, range_key)
            backups.append((table, hash_key, range_key, copy.deepcopy(current)))
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(backups):
                partition = table.items[hash_key] if range_key is not None else table.items
                slot = range_key if range_key is not None else hash_key
                if item is None:
                    partition.pop(slot, None)
                else:
                    partition[slot] = item
            raise

    vars(models)["copy"] = _TablesUncopied
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _leases(table_name: str) -> dict[str, list[Any]]:
    """Every group's lease item, straight from moto's table: group -> [holder, token]."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].get_table(table_name)
    out: dict[str, list[Any]] = {}
    for partition in list(table.items.values()):
        for item in list(partition.values()):
            attrs = item.attrs
            if attrs["sk"].value == "lease":
                out[attrs["group"].value] = [attrs["holder"].value, int(attrs["token"].value)]
    return out


def _serve(groups: int, out: Path) -> None:
    import logging

    from failover.sandbox.server import SandboxServer
    from failover.sandbox.strict import StrictLayer

    from ..store.moto_dynamodb import _LOCK, serialized_dynamodb

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # not a line per request
    _partition_local_queries()
    _item_scoped_transactions()
    layer = StrictLayer()
    started = time.monotonic()
    with layer, serialized_dynamodb():
        world = build(groups)
        build_s = time.monotonic() - started
        with SandboxServer() as server:
            (out / "world.json").write_text(
                json.dumps(
                    {
                        "url": server.url,
                        "build_s": build_s,
                        "groups": [g.__dict__ for g in world],
                    }
                )
            )
            print("ready", flush=True)
            for line in sys.stdin:
                command, _, arg = line.strip().partition(" ")
                if command == "calls":
                    with open(arg, "w", encoding="utf-8") as fh:
                        for call in list(layer.calls):
                            if call.service == "ec2":
                                fh.write(json.dumps(_call_json(call)) + "\n")
                    print("done", flush=True)
                elif command == "leases":
                    table, _, path = arg.partition(" ")
                    with _LOCK:  # between two DynamoDB requests: a consistent snapshot
                        leases = _leases(table)
                    Path(path).write_text(json.dumps(leases))
                    print("done", flush=True)
                elif command == "cpu":
                    print(f"{_cpu_s():.3f}", flush=True)
                elif command == "quit":
                    break


def _call_json(call: Any) -> dict[str, Any]:
    return {
        "action": call.action,
        "at": call.at,
        "error": call.error,
        "mutating": call.mutating,
    }


# ---- the test side ---------------------------------------------------------------------


class ScaleWorld:
    """The server process, seen from the test: `with ScaleWorld(n, tmp, env) as world: ...`."""

    def __init__(self, groups: int, tmp: Path, env: dict[str, str]) -> None:
        """Prepare to build `groups` groups; `env` is the process's environment."""
        self._count, self._tmp, self._env = groups, tmp, env
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.build_s = 0.0
        self.groups: list[ScaleGroup] = []
        self._log: BinaryIO | None = None

    def start(self, timeout_s: float = 120.0) -> ScaleWorld:
        """Start the process and wait for `ready`: the world built, the server up."""
        self._log = (self._tmp / "scale-world.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.multi.scale_world", str(self._count), str(self._tmp)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**self._env, "MOTO_EC2_LOAD_DEFAULT_AMIS": "false"},
        )
        try:
            line = self._readline(timeout_s)
            if line != "ready":
                raise RuntimeError(f"scale world failed to start (see scale-world.log): {line!r}")
        except BaseException:
            self.close()
            raise
        doc = json.loads((self._tmp / "world.json").read_text())
        self.url, self.build_s = doc["url"], float(doc["build_s"])
        self.groups = [ScaleGroup(**g) for g in doc["groups"]]
        return self

    def _readline(self, timeout_s: float) -> str:
        import selectors

        assert self.proc is not None
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout_s):
                raise TimeoutError(f"scale world did not answer within {timeout_s:g}s")
        return self.proc.stdout.readline().strip()

    def ask(self, command: str, timeout_s: float = 60.0) -> str:
        """Send one command; its one-line answer."""
        assert self.proc is not None
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._readline(timeout_s)

    def calls(self) -> list[dict[str, Any]]:
        """Every EC2 call the strict layer logged: action, at, error, mutating."""
        path = self._tmp / "calls.jsonl"
        assert self.ask(f"calls {path}") == "done"
        return [json.loads(line) for line in path.read_text().splitlines()]

    def leases(self, table: str) -> dict[str, tuple[str, int]]:
        """Every group's lease item in `table` (a consistent snapshot): group -> (holder, token)."""
        path = self._tmp / "leases.json"
        assert self.ask(f"leases {table} {path}") == "done"
        raw: dict[str, list[Any]] = json.loads(path.read_text())
        return {group: (str(holder), int(token)) for group, (holder, token) in raw.items()}

    def cpu_s(self) -> float:
        """The server process's CPU seconds so far."""
        return float(self.ask("cpu"))

    def close(self) -> None:
        """Stop the server process (killed if it does not quit in time)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None and proc.stdin is not None:
                proc.stdin.write("quit\n")
                proc.stdin.flush()
            proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(timeout=10)
        finally:
            for pipe in (proc.stdin, proc.stdout, self._log):
                if pipe is not None:
                    pipe.close()

    def __enter__(self) -> ScaleWorld:
        """Start (see `start`)."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the process."""
        self.close()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), Path(sys.argv[2]))
