"""``soundfleet demo`` end to end on a small world, and the researcher CLI's bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "soundfleet.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_small_demo_finishes_with_a_summary(admin_dsn: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": admin_dsn}
    out = tmp_path / "demo"
    proc = _run(
        [
            "demo",
            "--users",
            "1500",
            "--workers",
            "1",
            "--time-scale",
            "14400",
            "--out",
            str(out),
            "--json",
        ],
        env,
        timeout=540,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary == json.loads((out / "summary.json").read_text())
    kinds = [j["kind"] for j in summary["jobs"]]
    assert kinds[:2] == ["user_sweep", "network"] and kinds.count("score") == 4
    assert all(j["state"] == "done" for j in summary["jobs"])
    tables = summary["tables"]
    assert tables["users"] + tables["user_ids_gone"] == 1500
    assert tables["follows"] > 0 and tables["track_stats"] > 0
    assert set(summary["evaluation"]) == {"spam", "virality", "revisit", "network"}
    assert (out / "report" / "index.html").exists()
    assert (out / "report" / "timelines.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["jobs", "--coordinator", "http://127.0.0.1:1", "--key", "k"], "is down"),
        (["export", "secrets", "--out", "/tmp/never.csv"], "unknown view 'secrets'"),
        (["submit", "network", "--param", "depth", "--key", "k"], "is not of the form"),
        (["demo", "--users", "10"], "--users must be at least 100"),
    ],
)
def test_bad_input_is_one_line(args: list[str], message: str, admin_dsn: str) -> None:
    proc = _run(args, {**os.environ, "DATABASE_URL": admin_dsn})
    assert proc.returncode == 1, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
