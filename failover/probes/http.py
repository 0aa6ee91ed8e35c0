"""The HTTP probe: one GET over HTTP/1.1, healthy on the expected status (and body substring).

A deliberately small client on asyncio streams: one request, `Connection: close`, no
redirects followed (a 3xx is just a status that is not the expected one), the timeout
covers the whole exchange (a Deadline: only time the event loop was free counts).
Anything it cannot parse is a failure with a reason, never an exception and never a pass.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import quote

from failover.config import HttpCheck
from failover.probes.deadline import Deadline, LoopLag
from failover.probes.target import ProbeTarget
from failover.probes.tcp import close_writer, os_error_reason

MAX_BODY_BYTES = 1 << 20
"""The body substring must appear in the first MiB; a health page is small."""

_MAX_HEADER_LINES = 200
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3})(?: [^\r\n]*)?\r?\n")
# RFC 3986 reserved characters and '%' stay as written; anything else (spaces, control
# characters) is percent-encoded so a config path can never inject a header.
_PATH_SAFE = "/:@!$&'()*+,;=?%~-._"


class MalformedResponse(Exception):
    """The peer answered something that is not an HTTP/1.x response we can judge."""


def _request(target: ProbeTarget, check: HttpCheck) -> bytes:
    host = f"[{target.address}]" if ":" in target.address else target.address
    return (
        f"GET {quote(check.path, safe=_PATH_SAFE)} HTTP/1.1\r\n"
        f"Host: {host}:{check.port}\r\n"
        "User-Agent: failover-probe\r\n"
        "Accept: */*\r\n"
        "Connection: close\r\n"
        "\r\n"
    ).encode("ascii")


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readline()
    except ValueError:
        # StreamReader's line limit (64 KiB) was exceeded.
        raise MalformedResponse("a line longer than 64 KiB") from None


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes]]:
    line = await _read_line(reader)
    if not line:
        raise MalformedResponse("connection closed before a response")
    match = _STATUS_LINE.fullmatch(line)
    if match is None:
        raise MalformedResponse(f"bad status line {line[:40]!r}")
    headers: dict[bytes, bytes] = {}
    for _ in range(_MAX_HEADER_LINES):
        line = await _read_line(reader)
        if line in {b"\r\n", b"\n"}:
            return int(match.group(1)), headers
        if not line.endswith(b"\n"):
            raise MalformedResponse("connection closed inside the headers")
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            raise MalformedResponse(f"bad header line {line[:40]!r}")
        headers[name.strip().lower()] = value.strip()
    raise MalformedResponse(f"more than {_MAX_HEADER_LINES} header lines")


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while len(body) < MAX_BODY_BYTES:
        size_line = (await _read_line(reader)).split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise MalformedResponse(f"bad chunk size {size_line[:20]!r}") from None
        if size == 0:
            break
        body += await reader.readexactly(size)
        await reader.readexactly(2)  # the CRLF after each chunk
    return bytes(body[:MAX_BODY_BYTES])


async def _read_body(reader: asyncio.StreamReader, headers: dict[bytes, bytes]) -> bytes:
    try:
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            return await _read_chunked(reader)
        if (length := headers.get(b"content-length")) is not None:
            if not length.isdigit():
                raise MalformedResponse(f"bad Content-Length {length[:20]!r}")
            return await reader.readexactly(min(int(length), MAX_BODY_BYTES))
    except asyncio.IncompleteReadError:
        raise MalformedResponse("connection closed inside the body") from None
    body = bytearray()
    while len(body) < MAX_BODY_BYTES and (data := await reader.read(65536)):
        body += data
    return bytes(body[:MAX_BODY_BYTES])


async def probe_http(target: ProbeTarget, check: HttpCheck, lag: LoopLag) -> tuple[bool, str]:
    """GET http://address:port/path within the timeout; (ok, reason)."""
    writer: asyncio.StreamWriter | None = None
    deadline = Deadline(target.timeout_s, lag)
    try:
        async with deadline:
            reader, writer = await asyncio.open_connection(target.address, check.port)
            writer.write(_request(target, check))
            await writer.drain()
            status, headers = await _read_head(reader)
            if status != check.expect:
                return False, f"HTTP {status} (expected {check.expect})"
            if check.body is None:
                return True, f"HTTP {status}"
            body = await _read_body(reader, headers)
            if check.body.encode() not in body:
                return False, f"HTTP {status} but the body lacks {check.body[:40]!r}"
            return True, f"HTTP {status}, body has {check.body[:40]!r}"
    except TimeoutError:
        return False, deadline.reason
    except MalformedResponse as exc:
        return False, f"malformed response: {exc}"
    except OSError as exc:
        return False, os_error_reason(exc)
    finally:
        if writer is not None:
            await close_writer(writer)
