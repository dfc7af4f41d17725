"""A container started without one of its secrets exits at once with one line naming it.

Real ``soundfleet`` processes, configured as the images and manifests configure them
(``SOUNDFLEET_REQUIRE``), with the secret left out or empty as a Kubernetes Secret with
an empty key would leave it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SOUNDFLEET = str(Path(sys.executable).parent / "soundfleet")


def run(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SOUNDFLEET_") and k != "DATABASE_URL"
    }
    base["SOUNDFLEET_DATA_DIR"] = str(tmp_path / "data")
    base.update(env)
    return subprocess.run(
        [SOUNDFLEET, *args], env=base, capture_output=True, text=True, timeout=60, check=False
    )


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "require"),
    [
        (["db", "migrate"], "database_url"),
        (["coordinator", "--host", "127.0.0.1", "--port", "0"], "database_url"),
        (["score", "spam"], "database_url"),
    ],
    ids=["migrate", "coordinator", "score"],
)
def test_missing_database_url_stops_the_process_before_it_starts_anything(
    args: list[str], require: str, tmp_path: Path
) -> None:
    proc = run(args, {"SOUNDFLEET_REQUIRE": require, "DATABASE_URL": ""}, tmp_path)
    assert proc.returncode == 1
    assert one_line(proc) == (
        "soundfleet: error: missing required setting: DATABASE_URL (unset or empty)"
    )
    # Without the requirement these commands would have started an embedded PostgreSQL.
    assert not (tmp_path / "data").exists()


def test_worker_without_its_key_names_the_key(tmp_path: Path) -> None:
    proc = run(
        ["worker", "--coordinator", "http://127.0.0.1:9", "--grace", "5"],
        {
            "SOUNDFLEET_REQUIRE": "database_url,api_key",
            "DATABASE_URL": "postgresql://soundfleet@127.0.0.1:9/soundfleet",
            "SOUNDFLEET_API_KEY": "",
        },
        tmp_path,
    )
    assert proc.returncode == 1
    assert one_line(proc) == (
        "soundfleet: error: missing required setting: SOUNDFLEET_API_KEY (unset or empty)"
    )


def test_malformed_setting_is_one_line_naming_it(tmp_path: Path) -> None:
    proc = run(["db", "status"], {"SOUNDFLEET_DB_POOL_SIZE": "lots"}, tmp_path)
    assert proc.returncode == 1
    line = one_line(proc)
    assert line.startswith("soundfleet: error: invalid setting SOUNDFLEET_DB_POOL_SIZE: ")


def test_malformed_worker_setting_is_one_line_naming_it(tmp_path: Path) -> None:
    # WorkerSettings are the crawler's own: the same one-line rule holds for them.
    proc = run(
        ["worker", "--check"],
        {
            "DATABASE_URL": "postgresql://soundfleet@127.0.0.1:9/soundfleet",
            "SOUNDFLEET_CONCURRENCY": "lots",
        },
        tmp_path,
    )
    assert proc.returncode == 1
    line = one_line(proc)
    assert line.startswith("soundfleet: error: invalid setting SOUNDFLEET_CONCURRENCY: ")
