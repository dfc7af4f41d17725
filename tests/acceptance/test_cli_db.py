"""``soundfleet db …`` as a user runs it: one clear line on bad input, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def _run(*args: str, database_url: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "soundfleet.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://postgres@127.0.0.1:1/nothing", "cannot reach the database at 127.0.0.1:1"),
        ("mysql://u@h/db", "DATABASE_URL is malformed"),
        ("postgresql://u@h.invalid/db", "cannot reach the database at h.invalid:5432"),
    ],
)
def test_migrate_bad_database(url: str, message: str) -> None:
    proc = _run("db", "migrate", database_url=url)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_migrate_then_status(db_dsn: str) -> None:
    migrate = _run("db", "migrate", database_url=db_dsn)
    assert migrate.returncode == 0, migrate.stderr
    status = _run("db", "status", database_url=db_dsn)
    assert status.returncode == 0, status.stderr
    assert "(at head)" in status.stdout
    for table in ("users", "follows", "work_units", "revisit_fits"):
        assert f"  {table} " in status.stdout


def test_embedded_up_status_down(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["SOUNDFLEET_DATA_DIR"] = str(tmp_path / "data")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "soundfleet.cli", "db", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    up = run("up")
    try:
        assert up.returncode == 0, up.stderr
        assert up.stdout.startswith("postgresql://")
        assert run("migrate").returncode == 0
        status = run("status")
        assert status.returncode == 0 and "(embedded)" in status.stdout
        assert "(at head)" in status.stdout
    finally:
        down = run("down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert "was not running" in run("down").stdout
