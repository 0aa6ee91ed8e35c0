"""The `curl`, `ip` and `sleep` a hook script meets on the fake host of tests/deploy/test_hooks.py.

Run as `python fake_host_tool.py PROG ARGS...` by the stubs on the hook's PATH. Each call
is appended to the host's log and works on its JSON state file ($FAKE_HOST): `curl`
answers the IMDSv2 paths of `imds` (a GET without the session token is refused, as
IMDSv2-only instances do), `ip` keeps links, addresses, routes and rules and prints
them the way iproute2 does, `sleep` only advances the host's `tick` (what `later`
entries wait for: IMDS and the kernel catching up with an attachment). Nothing here
touches the real network: this is the only `curl` and `ip` the hooks can reach.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

TOKEN = "AQAEAFakeImdsToken=="
IMDS = "http://169.254.169.254/latest/"


def main(prog: str, args: list[str]) -> int:
    """Run one stubbed command against the state file; its exit code."""
    state_path = Path(os.environ["FAKE_HOST"])
    state: dict[str, Any] = json.loads(state_path.read_text())
    with Path(state["log"]).open("a") as log:
        log.write(json.dumps([prog, *args]) + "\n")
    for entry in state.get("later", []):
        if entry["tick"] <= state["tick"]:
            _apply(state, entry)
    handler = {"curl": _curl, "ip": _ip, "sleep": _sleep}[prog]
    code = handler(state, args)
    state_path.write_text(json.dumps(state))
    return code


def _apply(state: dict[str, Any], entry: dict[str, Any]) -> None:
    state["imds"].update(entry.get("imds", {}))
    for link in entry.get("links", []):
        if link not in state["links"]:
            state["links"].append(link)


def _sleep(state: dict[str, Any], args: list[str]) -> int:
    state["tick"] += 1
    return 0


def _curl(state: dict[str, Any], args: list[str]) -> int:
    url = next(a for a in args if a.startswith("http"))
    headers = [args[i + 1] for i, a in enumerate(args) if a == "-H"]
    if not url.startswith(IMDS):
        print(f"curl: fake host: no route to {url}", file=sys.stderr)
        return 7
    path = url.removeprefix(IMDS)
    if "-X" in args and args[args.index("-X") + 1] == "PUT":
        if path != "api/token" or not any(
            h.startswith("X-aws-ec2-metadata-token-ttl-seconds:") for h in headers
        ):
            return 22
        sys.stdout.write(TOKEN)
        return 0
    if f"X-aws-ec2-metadata-token: {TOKEN}" not in headers or not path.startswith("meta-data/"):
        print("curl: (22) The requested URL returned error: 401", file=sys.stderr)
        return 22
    body = state["imds"].get(path.removeprefix("meta-data/"))
    if body is None:
        print("curl: (22) The requested URL returned error: 404", file=sys.stderr)
        return 22
    sys.stdout.write(body)
    return 0


def _ip(state: dict[str, Any], args: list[str]) -> int:
    names = [name for name, _ in state["links"]]
    family = args[:1] == ["-4"]
    words = args[1:] if family else args
    match words:
        case ["-o", "link", "show"]:
            for index, (name, mac) in enumerate(state["links"], start=2):
                print(
                    f"{index}: {name}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 9001 qdisc mq "
                    f"state UP mode DEFAULT group default qlen 1000\\    link/ether {mac} "
                    "brd ff:ff:ff:ff:ff:ff"
                )
            return 0
        case ["-o", "-4", "addr", "show", "dev", name]:
            if name not in names:
                print(f'Device "{name}" does not exist.', file=sys.stderr)
                return 1
            for address in state["addrs"].get(name, []):
                print(
                    f"{names.index(name) + 2}: {name}    inet {address} scope global {name}"
                    "\\       valid_lft forever preferred_lft forever"
                )
            return 0
        case ["addr", "add", address, "dev", name] if name in names:
            held = state["addrs"].setdefault(name, [])
            if any(a.split("/")[0] == address.split("/")[0] for a in held):
                print("RTNETLINK answers: File exists", file=sys.stderr)
                return 2
            held.append(address)
            return 0
        case ["link", "set", "dev", name, "up"] if name in names:
            state.setdefault("up", [])
            if name not in state["up"]:
                state["up"].append(name)
            return 0
        case ["route", "replace", destination, *rest] if rest[-2:-1] == ["table"]:
            state.setdefault("routes", {}).setdefault(rest[-1], {})[destination] = " ".join(
                rest[:-2]
            )
            return 0
        case ["rule", "show", "from", source, "table", table] if family:
            for priority, rule_from, rule_table in state.get("rules", []):
                if (rule_from, rule_table) == (source, table):
                    print(f"{priority}:\tfrom {source} lookup {table}")
            return 0
        case ["rule", "add", "from", source, "table", table, "priority", priority] if family:
            state.setdefault("rules", []).append([priority, source, table])
            return 0
    print(f"ip: the fake host does not know `ip {' '.join(args)}`", file=sys.stderr)
    return 255


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
