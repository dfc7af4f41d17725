"""CI-sized chaos: faults, worker kills, a coordinator and a database restart; exact truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.chaos import ChaosConfig, run_chaos
from tests import dbutil


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    """The run's outcome without its long trace: what a failure message can show whole."""
    return {k: v for k, v in result.items() if k not in ("fleet_trace", "config")}


def _failure(table: str, result: dict[str, Any]) -> str:
    """What went wrong first (the table, the units given up and why), then the rest."""
    head = {"table": table, table: result[table], "units_given_up": result["units_given_up"]}
    return f"{head!r}\nunits: {result['units_by_state']!r}\nrun: {_summary(result)!r}"


def _assert_tables_match(result: dict[str, Any]) -> None:
    """Every crawled table equals the truth; a failure names the units given up first."""
    for table in ("users", "user_ids_gone", "reposts", "likes", "follower_pairs"):
        got = (result[table]["missing"], result[table]["extra"])
        assert got == (0, 0), _failure(table, result)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_chaos_run_equals_truth(admin_dsn: str, tmp_path: Path) -> None:
    # Restart PostgreSQL only when it is the embedded server these tests started.
    pgdata = dbutil.embedded_pgdata()
    cfg = ChaosConfig(
        users=2_000,
        workers=2,
        max_users=200,
        timeline_tracks=6,
        kill_every_s=6.0,
        # Id ranges small enough to finish between kills (a range restarts when re-leased).
        chunk=100,
        rate_limit=300.0,
        rotate_client_id_s=10.0,
        timeout_s=480.0,
    )
    result = run_chaos(cfg, admin_dsn, tmp_path / "logs", pgdata)
    assert result["jobs"] == {"user_sweep": "done", "network": "done", "track_timelines": "done"}, (
        result
    )
    assert result["worker_kills"] >= 2 and result["coordinator_restarts"] == 1
    if pgdata is not None:
        assert result["database_restarts"] == 1
    _assert_tables_match(result)
    assert result["reposts"]["duplicates"] == result["likes"]["duplicates"] == 0
    assert result["units_by_state"].get("leased", 0) == 0
    assert result["units_given_up"] == []
    assert result["mismatches"] == 0


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_chaos_under_the_real_platforms_bot_protection(admin_dsn: str, tmp_path: Path) -> None:
    """DataDome-shaped 403s, text 429s, ms cursors, URN web-profiles, kills: the truth."""
    cfg = ChaosConfig(
        users=3_000,
        workers=2,
        depth=1,
        max_users=300,
        timeline_tracks=6,
        kill_every_s=6.0,
        chunk=100,
        rotate_client_id_s=15.0,
        timeout_s=480.0,
        profile="real",
        # The fleet's budget is twice what the bot protection lets through before it
        # blocks the address, and the limiter below that answers in plain text.
        bot_burst=150.0,
        rate_limit=120.0,
        budget_rps=300.0,
        restart_coordinator=False,
        worker_args=("--units", "2"),  # web-profiles too (URN-only on this profile)
    )
    result = run_chaos(cfg, admin_dsn, tmp_path / "logs", None)
    assert result["jobs"] == {"user_sweep": "done", "network": "done", "track_timelines": "done"}, (
        result
    )
    assert not result["timed_out"]
    assert result["worker_kills"] >= 2
    _assert_tables_match(result)
    assert result["units_given_up"] == [] and result["mismatches"] == 0
    bot = result["bot"]
    assert bot["text_429"] > 0, bot  # the limiter was met, in the real platform's form
    assert bot["blocked_no_browser"] == 0, bot
    assert result["rediscoveries"]["within_limit"], result["rediscoveries"]
    assert result["ok"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_chaos_with_frozen_workers_and_heavy_faults(admin_dsn: str, tmp_path: Path) -> None:
    """Half the kills are 10 s SIGSTOPs past a 4 s lease: stale rows are fenced off."""
    pgdata = dbutil.embedded_pgdata()
    cfg = ChaosConfig(
        users=2_000,
        workers=3,
        depth=1,
        max_users=200,
        timeline_tracks=6,
        kill_every_s=2.5,
        sigstop_share=0.5,
        sigstop_s=10.0,
        lease_s=4.0,
        chunk=100,
        fault_5xx=0.15,
        fault_malformed=0.05,
        rate_limit=300.0,
        rotate_client_id_s=5.0,
        timeout_s=480.0,
    )
    result = run_chaos(cfg, admin_dsn, tmp_path / "logs", pgdata)
    assert not result["timed_out"], _summary(result)
    assert result["worker_freezes"] >= 1 and result["worker_kills"] >= 1
    _assert_tables_match(result)
    assert result["reposts"]["not_exact"] == result["likes"]["not_exact"] == 0
    assert result["units_given_up"] == [] and result["mismatches"] == 0
