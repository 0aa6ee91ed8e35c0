"""Logs: one JSON object per line with the extra fields; text lines for a terminal."""

from __future__ import annotations

import io
import json
import logging
import threading
from pathlib import Path

from failover.ops.logs import JsonFormatter, TextFormatter, choose_format, configure, log_context


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_json_is_one_line_with_the_extra_fields(root_logging: logging.Logger) -> None:
    out = io.StringIO()
    configure("json", "info", stream=out)
    log = logging.getLogger("failover.service.engine")
    with log_context(move_id="ab12cd34ef56", step="detach"):
        log.warning(
            "group %s: detach hangs\nretrying with Force",
            "db",
            extra={"group": "db", "member": "i-0aa", "resource": "eni-0f1", "path": Path("/x")},
        )
    log.debug("not at info")

    [line] = lines(out)
    entry = json.loads(line)
    assert entry["level"] == "warning"
    assert entry["logger"] == "failover.service.engine"
    assert entry["msg"] == "group db: detach hangs\nretrying with Force"
    assert entry["ts"].endswith("Z")
    assert {k: entry[k] for k in ("group", "member", "resource", "move_id", "step", "path")} == {
        "group": "db",
        "member": "i-0aa",
        "resource": "eni-0f1",
        "move_id": "ab12cd34ef56",
        "step": "detach",
        "path": "/x",
    }


def test_json_carries_the_traceback_on_the_same_line() -> None:
    record = logging.LogRecord("failover", logging.ERROR, __file__, 1, "pass failed", None, None)
    try:
        raise RuntimeError("boom\u2028here")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    text = JsonFormatter().format(record)
    assert len(text.splitlines()) == 1
    assert "RuntimeError: boom" in json.loads(text)["exc"]


def test_an_extra_named_like_a_base_key_does_not_replace_it() -> None:
    record = logging.LogRecord("failover", logging.INFO, __file__, 1, "real", None, None)
    record.level = "spoofed"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "info"
    assert entry["extra_level"] == "spoofed"


def test_text_lines_end_with_the_fields() -> None:
    record = logging.LogRecord(
        "failover.service.monitor", logging.INFO, __file__, 1, "moved %s", ("db",), None
    )
    record.group, record.reason = "db", "primary failed 3 probes"
    line = TextFormatter().format(record)
    assert (
        ' INFO failover.service.monitor: moved db [group=db reason="primary failed 3 probes"]'
        in line
    )


def test_format_follows_the_terminal_unless_told() -> None:
    assert choose_format(None, io.StringIO()) == "json"
    assert choose_format(None, Tty()) == "text"
    assert choose_format("json", Tty()) == "json"
    assert choose_format("text", io.StringIO()) == "text"


def test_configure_replaces_its_handler_and_picks_text_on_a_tty(
    root_logging: logging.Logger,
) -> None:
    configure(None, logging.INFO, stream=io.StringIO())
    tty = Tty()
    configure(None, "warning", stream=tty)
    assert len(root_logging.handlers) == 1
    logging.getLogger("failover").warning("plain", extra={"group": "db"})
    [line] = lines(tty)
    assert line.endswith("WARNING failover: plain [group=db]")


def test_context_is_per_thread(root_logging: logging.Logger) -> None:
    out = io.StringIO()
    configure("json", "info", stream=out)
    log = logging.getLogger("failover")

    def other() -> None:
        log.info("other thread")

    with log_context(group="db"):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        log.info("this thread")
    log.info("after")
    entries = {e["msg"]: e for e in map(json.loads, lines(out))}
    assert entries["this thread"]["group"] == "db"
    assert "group" not in entries["other thread"]
    assert "group" not in entries["after"]
