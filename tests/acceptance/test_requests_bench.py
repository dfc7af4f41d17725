"""The request-efficiency benchmark end to end at a small size: the ledger adds up."""

from __future__ import annotations

import asyncio

import pytest

from benchmarks import requests


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_every_job_is_accounted_for_request_by_request(admin_dsn: str) -> None:
    args = requests.parse_args(
        ["--users", "3000", "--rps", "200", "--sweep-ids", "200", "--network-users", "50",
         "--track-users", "100", "--poll-tracks", "60", "--poll-every", "1"]
    )  # fmt: skip
    result = asyncio.run(requests.main_async(args, admin_dsn))
    jobs = result["jobs"]
    assert set(jobs) == {"sweep", "network", "user_tracks", "timelines_page",
                         "timelines_exact", "play_poll"}  # fmt: skip
    for name, job in jobs.items():
        assert job["state"] == "done", name
        assert job["requests"] == sum(job["outcomes"].values()), name
        assert job["rows_landed"] > 0, name
        assert job["wasted"]["throttled"] == 0 and job["wasted"]["refused"] == 0, name
    # a sweep asks for every id once (web profiles aside), faults retried
    sweep = jobs["sweep"]["outcomes"]
    assert sweep.get("200", 0) + sweep.get("404", 0) >= 200
    # 60 tracks in batches of 50: two requests a poll, three polls
    assert jobs["play_poll"]["requests"] - jobs["play_poll"]["faults_injected"] == 6
    assert result["targets"]["all_done"] and result["targets"]["waste_le_1pct"]
