"""Logging: our events and the standard library's records leave as the same JSON lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from runtime.logs import configure_logging


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def test_stdlib_records_are_json_like_ours(
    capsys: pytest.CaptureFixture[str], restore_root: None
) -> None:
    configure_logging("info", "json")
    structlog.get_logger("soundfleet").info("unit_done", rows=3)
    logging.getLogger("aiohttp.access").warning("GET /v1/jobs %s", 200)
    logging.getLogger("noise").info("below the library threshold")
    try:
        raise ZeroDivisionError("x")
    except ZeroDivisionError:
        logging.getLogger("asyncio").exception("task failed")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == ["unit_done", "GET /v1/jobs 200", "task failed"]
    assert lines[1]["logger"] == "aiohttp.access" and lines[1]["level"] == "warning"
    assert "timestamp" in lines[1] and "ZeroDivisionError" in lines[2]["exception"]
