"""The scoring worker against a stand-in coordinator: lease, run, complete or fail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web

from scoring.worker import serve
from tests.coordinator_util import Api, app_client, make_keys


class FakeCoordinator:
    """Serves queued score units once each and records every report."""

    def __init__(self, units: list[dict[str, Any]]) -> None:
        self.units = units
        self.calls: list[tuple[str, int, dict[str, Any]]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/leases", self.lease)
        app.router.add_post("/v1/leases/{unit}/{action}", self.report)
        return app

    async def lease(self, request: web.Request) -> web.Response:
        body = await request.json()
        assert body["kinds"] == ["score"]
        units = [self.units.pop(0)] if self.units else []
        expires = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
        return web.json_response(
            {
                "units": [
                    {**u, "kind": "score", "token": 1, "cursor": None, "lease_expires_at": expires}
                    for u in units
                ],
                "fleet": {"rate_share_rps": 1.0},
            }
        )

    async def report(self, request: web.Request) -> web.Response:
        unit = int(request.match_info["unit"])
        self.calls.append((request.match_info["action"], unit, await request.json()))
        return web.json_response({"unit_id": unit, "state": "done"})


async def test_worker_runs_units_and_reports_outcomes(db: asyncpg.Connection, db_dsn: str) -> None:
    await db.execute("INSERT INTO jobs (id, kind, spec) VALUES (1, 'score', '{}')")
    await db.execute(
        "INSERT INTO follows (follower_id, followee_id, event_time, time_source, fetched_at)"
        " VALUES (1, 2, now(), 'exact', now()), (2, 1, now(), 'exact', now()),"
        " (3, 1, now(), 'exact', now())"
    )
    payloads = [
        {"model": "network", "params": {"scope": "global"}},
        {"model": "spam", "params": {}},
        {"model": "network", "params": {"hops": 7}},
    ]
    fake = FakeCoordinator(
        [{"unit_id": 11 + i, "job_id": 1, "payload": p} for i, p in enumerate(payloads)]
    )
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        outcome = await serve(f"http://127.0.0.1:{port}", "key", db_dsn, poll_s=0.05, max_units=3)
    finally:
        await runner.cleanup()
    assert (outcome["complete"], outcome["fail"]) == (2, 1)
    actions = {unit: (action, body) for action, unit, body in fake.calls}
    assert actions[11][0] == "complete" and actions[11][1]["token"] == 1
    # No users crawled: the spam run records why it could not score; the unit is done.
    assert actions[12][0] == "complete"
    assert actions[13][0] == "fail" and actions[13][1]["retryable"] is False
    assert "params.hops" in actions[13][1]["error"]
    runs = {
        r["unit_id"]: (r["model"], r["state"], r["job_id"])
        for r in await db.fetch("SELECT unit_id, model, state, job_id FROM scoring_runs")
    }
    assert runs == {11: ("network", "done", 1), 12: ("spam", "failed", 1)}
    assert await db.fetchval("SELECT count(*) FROM user_graph_stats") == 3


async def test_scorer_runs_a_score_job_of_the_real_coordinator(
    db: asyncpg.Connection, db_dsn: str
) -> None:
    await db.execute(
        "INSERT INTO follows (follower_id, followee_id, event_time, time_source, fetched_at)"
        " VALUES (1, 2, now(), 'exact', now()), (2, 3, now(), 'exact', now())"
    )
    keys = await make_keys(db_dsn)
    async with app_client(db_dsn) as client:
        api = Api(client, keys)
        job = await api.submit("score", {"model": "network", "params": {"scope": "global"}})
        base = str(client.make_url("")).rstrip("/")
        outcome = await serve(base, keys["worker"], db_dsn, poll_s=0.05, max_units=1)
        status, view = await api.call("GET", f"/v1/jobs/{job['id']}", "researcher")
    assert outcome["complete"] == 1 and status == 200
    assert view["state"] == "done", view
    run = await db.fetchrow("SELECT state, job_id, unit_id FROM scoring_runs")
    assert run["state"] == "done" and run["job_id"] == job["id"] and run["unit_id"] is not None
