"""Leasing on real PostgreSQL through the HTTP API: expiry, fencing, stress, expansion."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import asyncpg
import pytest

from coordinator.http import COORDINATOR
from schemas.work import BatchCompleteResponse, LeaseResponse
from tests.coordinator_util import Api, app_client, make_keys

ALL_KINDS = ["user_range", "follow_list", "user_tracks", "track_list", "play_poll", "score"]


@pytest.fixture
async def api(db_dsn: str) -> Any:
    keys = await make_keys(db_dsn)
    async with app_client(
        db_dsn, backoff_base_s=0.0, backoff_max_s=0.0, lease_wait_max_s=30
    ) as client:
        yield Api(client, keys)


async def _expire(db: asyncpg.Connection, unit_id: int) -> None:
    # Simulate a worker that died: its lease ran out without a heartbeat.
    await db.execute(
        "UPDATE work_units SET lease_expires_at = now() - interval '1 second' WHERE id = $1",
        unit_id,
    )


async def test_lease_expiry_reissues_with_a_new_token_and_fences_the_old_holder(
    api: Api, db: asyncpg.Connection
) -> None:
    await api.submit("score", {"model": "spam"})
    [first] = await api.lease("w-a", ["score"])
    assert first["token"] == 1
    # Not expired yet: nobody else gets it.
    assert await api.lease("w-b", ["score"]) == []
    status, _ = await api.call(
        "POST",
        f"/v1/leases/{first['unit_id']}/heartbeat",
        "worker",
        {"worker_id": "w-a", "token": 1, "cursor": "https://api/next?cursor=5", "rows": 7},
    )
    assert status == 200
    await _expire(db, first["unit_id"])
    [again] = await api.lease("w-b", ["score"])
    assert again["unit_id"] == first["unit_id"]
    assert again["token"] == 2
    assert again["cursor"] == "https://api/next?cursor=5"  # resumes, not restarts

    # The first holder is fenced off on every call.
    for action, body in (
        ("heartbeat", {"worker_id": "w-a", "token": 1}),
        ("complete", {"worker_id": "w-a", "token": 1, "rows": 3}),
        ("fail", {"worker_id": "w-a", "token": 1, "error": "late"}),
        ("release", {"worker_id": "w-a", "token": 1}),
    ):
        status, data = await api.call(
            "POST", f"/v1/leases/{first['unit_id']}/{action}", "worker", body
        )
        assert status == 409, (action, data)
        assert data["error"] == "conflict"
        assert "token 1" in data["message"]

    status, data = await api.complete("w-b", again, rows=5)
    assert (status, data["state"]) == (200, "done")
    row = await db.fetchrow("SELECT state, rows_landed, attempt FROM work_units")
    assert (row["state"], row["rows_landed"], row["attempt"]) == ("done", 12, 2)
    job = await db.fetchrow("SELECT state, rows_landed FROM jobs")
    assert (job["state"], job["rows_landed"]) == ("done", 12)


async def test_rows_landed_are_kept_on_every_outcome(api: Api, db: asyncpg.Connection) -> None:
    """A unit that lands rows and then fails or is released keeps them in its count."""
    await api.submit("user_tracks", {"user_ids": [1]})
    [unit] = await api.lease("w-a", ["user_tracks"])
    body = {"worker_id": "w-a", "token": unit["token"], "error": "HTTP 503", "rows": 2}
    status, _ = await api.call("POST", f"/v1/leases/{unit['unit_id']}/fail", "worker", body)
    assert status == 200
    assert await db.fetchval("SELECT rows_landed FROM work_units") == 2
    await db.execute("UPDATE work_units SET not_before = now()")
    [unit] = await api.lease("w-b", ["user_tracks"])
    body = {"worker_id": "w-b", "token": unit["token"], "cursor": "https://a/p?offset=9", "rows": 3}
    status, _ = await api.call("POST", f"/v1/leases/{unit['unit_id']}/release", "worker", body)
    assert status == 200
    assert await db.fetchval("SELECT rows_landed FROM work_units") == 5
    [unit] = await api.lease("w-c", ["user_tracks"])
    status, _ = await api.complete("w-c", unit, rows=1)
    assert status == 200
    assert await db.fetchval("SELECT rows_landed FROM work_units") == 6
    assert await db.fetchval("SELECT rows_landed FROM jobs") == 6


async def test_unknown_unit_is_404(api: Api) -> None:
    status, data = await api.call(
        "POST", "/v1/leases/999999/complete", "worker", {"worker_id": "w", "token": 1}
    )
    assert status == 404
    assert "999999" in data["message"]


async def test_expired_unit_out_of_attempts_goes_dead_with_its_last_error(
    api: Api, db: asyncpg.Connection
) -> None:
    status, job = await api.call(
        "POST",
        "/v1/jobs",
        "researcher",
        {"kind": "score", "spec": {"model": "virality"}, "max_attempts": 2},
    )
    assert status == 201
    [unit] = await api.lease("w-a", ["score"])
    await _expire(db, unit["unit_id"])
    [unit] = await api.lease("w-b", ["score"])
    assert unit["token"] == 2
    await _expire(db, unit["unit_id"])
    assert await api.lease("w-c", ["score"]) == []
    row = await db.fetchrow("SELECT state, last_error FROM work_units")
    assert row["state"] == "dead"
    assert "lease expired on attempt 2" in row["last_error"]
    status, view = await api.call("GET", f"/v1/jobs/{job['id']}", "researcher")
    assert view["state"] == "failed"
    assert view["progress"]["dead"] == 1


async def test_attempts_that_move_the_cursor_do_not_use_one_up(
    api: Api, db: asyncpg.Connection
) -> None:
    """A long walk killed again and again lives while it lands pages, and only then."""
    status, _ = await api.call(
        "POST",
        "/v1/jobs",
        "researcher",
        {"kind": "user_tracks", "spec": {"user_ids": [1]}, "max_attempts": 2},
    )
    assert status == 201
    for n in range(1, 6):  # five kills, each after a checkpoint further on (two of them)
        [unit] = await api.lease(f"w-{n}", ["user_tracks"])
        assert unit["token"] == n
        for beat in (f"c-{n}", f"c-{n}-b"):  # one refund per attempt, however many moves
            body = {"worker_id": f"w-{n}", "token": n, "cursor": beat, "rows": 1}
            status, _ = await api.call(
                "POST", f"/v1/leases/{unit['unit_id']}/heartbeat", "worker", body
            )
            assert status == 200
        await _expire(db, unit["unit_id"])
    row = await db.fetchrow("SELECT state, attempt, max_attempts FROM work_units")
    assert (row["state"], row["attempt"], row["max_attempts"]) == ("leased", 5, 7)
    # A failure that moved the cursor is retried even past max_attempts ...
    [unit] = await api.lease("w-6", ["user_tracks"])
    body = {"worker_id": "w-6", "token": 6, "error": "HTTP 503", "cursor": "c-6"}
    status, data = await api.call("POST", f"/v1/leases/{unit['unit_id']}/fail", "worker", body)
    assert (status, data.get("state")) == (200, "queued"), data
    # ... and attempts that get nowhere use up what is left.
    await db.execute("UPDATE work_units SET not_before = now()")
    for n in (7, 8):
        [unit] = await api.lease(f"w-{n}", ["user_tracks"])
        body = {"worker_id": f"w-{n}", "token": n, "cursor": "c-6", "rows": 0}
        await api.call("POST", f"/v1/leases/{unit['unit_id']}/heartbeat", "worker", body)
        await _expire(db, unit["unit_id"])
    assert await api.lease("w-9", ["user_tracks"]) == []
    row = await db.fetchrow("SELECT state, attempt, cursor, last_error FROM work_units")
    assert (row["state"], row["attempt"], row["cursor"]) == ("dead", 8, "c-6")
    assert "lease expired on attempt 8" in row["last_error"]


async def test_fail_retries_with_backoff_then_dead(db_dsn: str, db: asyncpg.Connection) -> None:
    keys = await make_keys(db_dsn)
    async with app_client(db_dsn, backoff_base_s=3600.0, backoff_max_s=7200.0) as client:
        api = Api(client, keys)
        status, _ = await api.call(
            "POST",
            "/v1/jobs",
            "researcher",
            {"kind": "score", "spec": {"model": "spam"}, "max_attempts": 2},
        )
        [unit] = await api.lease("w", ["score"])
        status, data = await api.call(
            "POST",
            f"/v1/leases/{unit['unit_id']}/fail",
            "worker",
            {"worker_id": "w", "token": 1, "error": "HTTP 500 from /users/1"},
        )
        assert (status, data["state"]) == (200, "queued")
        delay = await db.fetchval("SELECT extract(epoch FROM not_before - now()) FROM work_units")
        assert 1800 <= delay <= 3600  # base * 2^0 with jitter in [0.5, 1]
        assert await api.lease("w", ["score"]) == []  # backing off
        await db.execute("UPDATE work_units SET not_before = now()")
        [unit] = await api.lease("w", ["score"])
        status, data = await api.call(
            "POST",
            f"/v1/leases/{unit['unit_id']}/fail",
            "worker",
            {"worker_id": "w", "token": 2, "error": "HTTP 500 again"},
        )
        assert data["state"] == "dead"
        row = await db.fetchrow("SELECT state, last_error FROM work_units")
        assert (row["state"], row["last_error"]) == ("dead", "HTTP 500 again")
        assert await db.fetchval("SELECT state FROM jobs") == "failed"


async def test_not_retryable_failure_is_final(api: Api, db: asyncpg.Connection) -> None:
    await api.submit("track_timelines", {"track_ids": [5]})
    [unit] = await api.lease("w", ["track_list"])
    status, data = await api.call(
        "POST",
        f"/v1/leases/{unit['unit_id']}/fail",
        "worker",
        {"worker_id": "w", "token": 1, "error": "track gone", "retryable": False},
    )
    assert (status, data["state"]) == (200, "failed")
    assert await db.fetchval("SELECT error FROM jobs") == "1 unit(s) failed; last error: track gone"


async def test_release_requeues_without_using_an_attempt(api: Api, db: asyncpg.Connection) -> None:
    await api.submit("user_tracks", {"user_ids": [1]})
    [unit] = await api.lease("w", ["user_tracks"])
    status, data = await api.call(
        "POST",
        f"/v1/leases/{unit['unit_id']}/release",
        "worker",
        {"worker_id": "w", "token": 1, "cursor": "c-1"},
    )
    assert (status, data["state"]) == (200, "queued")
    [again] = await api.lease("w2", ["user_tracks"])
    assert (again["token"], again["cursor"]) == (2, "c-1")
    row = await db.fetchrow("SELECT attempt, max_attempts FROM work_units")
    assert row["max_attempts"] - row["attempt"] == 8 - 1  # one real attempt in flight


async def test_kinds_filter_serves_only_requested_kinds(api: Api) -> None:
    await api.submit("score", {"model": "spam"})
    await api.submit("user_tracks", {"user_ids": [1, 2]})
    units = await api.lease("crawl", ["user_tracks", "follow_list"], n=10)
    assert {u["kind"] for u in units} == {"user_tracks"}
    assert len(units) == 2
    [score] = await api.lease("scorer", ["score"], n=10)
    assert score["payload"] == {"model": "spam", "params": {}}


async def test_two_workers_never_hold_one_unit(api: Api, db: asyncpg.Connection) -> None:
    await api.submit("user_sweep", {"id_from": 1, "id_to": 40_001, "chunk": 100})
    held: Counter[int] = Counter()
    completions: Counter[int] = Counter()

    async def worker(name: str) -> None:
        while True:
            units = await api.lease(name, ["user_range"], n=7)
            if not units:
                return
            for u in units:
                held[u["unit_id"]] += 1
            status, data = await api.call(
                "POST",
                "/v1/leases/complete",
                "worker",
                {
                    "worker_id": name,
                    "items": [{"unit_id": u["unit_id"], "token": u["token"]} for u in units],
                },
            )
            assert status == 200, data
            for r in data["results"]:
                assert r["state"] == "done"
                completions[r["unit_id"]] += 1

    await asyncio.gather(*(worker(f"w{i}") for i in range(24)))
    assert len(held) == 400
    assert set(held.values()) == {1}
    assert set(completions.values()) == {1}
    assert await db.fetchval("SELECT count(*) FROM work_units WHERE state = 'done'") == 400
    assert await db.fetchval("SELECT state FROM jobs") == "done"


async def test_concurrent_claims_on_raw_connections_are_disjoint(
    db_dsn: str, db: asyncpg.Connection
) -> None:
    from coordinator import queries as q

    job_id = await db.fetchval(
        "INSERT INTO jobs (kind, spec) VALUES ('user_sweep', '{}') RETURNING id"
    )
    await q.insert_sweep(db, job_id, 1, 3001, 10, 0, 8, True)
    pool = await asyncpg.create_pool(db_dsn, min_size=16, max_size=16)
    try:

        async def claimer(i: int) -> list[int]:
            got: list[int] = []
            while True:
                async with pool.acquire() as conn:
                    rows = await q.claim(conn, f"w{i}", ["user_range"], 5, 60.0)
                if not rows:
                    return got
                got += [r.unit_id for r in rows]

        results = await asyncio.gather(*(claimer(i) for i in range(16)))
    finally:
        await pool.close()
    claimed = [u for r in results for u in r]
    assert len(claimed) == 300
    assert len(set(claimed)) == 300


async def test_cancel_stops_queued_units_and_tells_leased_ones(
    api: Api, db: asyncpg.Connection
) -> None:
    job = await api.submit("user_tracks", {"user_ids": [1, 2, 3, 4]})
    [unit] = await api.lease("w", ["user_tracks"])
    status, view = await api.call("POST", f"/v1/jobs/{job['id']}/cancel", "researcher")
    assert status == 200
    assert view["state"] == "cancelled"
    assert view["progress"]["cancelled"] == 3
    assert view["progress"]["leased"] == 1
    assert await api.lease("w", ["user_tracks"], n=10) == []
    status, hb = await api.call(
        "POST",
        f"/v1/leases/{unit['unit_id']}/heartbeat",
        "worker",
        {"worker_id": "w", "token": unit["token"]},
    )
    assert (status, hb["cancel"]) == (200, True)
    # Cancelling twice is harmless; the job's owner only.
    status, _ = await api.call("POST", f"/v1/jobs/{job['id']}/cancel", "researcher")
    assert status == 200
    status, _ = await api.call("POST", f"/v1/jobs/{job['id']}/cancel", "researcher2")
    assert status == 404
    # A cancelled job's expired lease is closed, not re-issued.
    await _expire(db, unit["unit_id"])
    assert await api.lease("w2", ["user_tracks"]) == []
    assert await db.fetchval("SELECT count(*) FROM work_units WHERE state = 'cancelled'") == 4


async def test_network_expansion_dedups_users_and_respects_depth_and_max_users(
    api: Api, db: asyncpg.Connection
) -> None:
    job = await api.submit(
        "network", {"seeds": [10, 20, 10], "depth": 1, "direction": "followers", "max_users": 5}
    )
    assert job["progress"]["total"] == 2  # seed 10 given twice
    units = await api.lease("w", ["follow_list"], n=10)
    assert sorted(u["payload"]["user_id"] for u in units) == [10, 20]
    assert all(u["payload"]["expand"] for u in units)
    by_user = {u["payload"]["user_id"]: u for u in units}
    # Discoveries repeat seeds and each other; only new users are queued.
    status, _ = await api.complete("w", by_user[10], discovered_user_ids=[20, 30, 30, 40, 10])
    assert status == 200
    status, _ = await api.complete("w", by_user[20], discovered_user_ids=[40, 50, 60, 70])
    assert status == 200
    users = await db.fetch(
        "SELECT (payload->>'user_id')::bigint AS u, depth, (payload->>'expand')::bool AS e"
        " FROM work_units ORDER BY id"
    )
    assert [r["u"] for r in users] == [10, 20, 30, 40, 50]  # capped at max_users = 5
    assert [r["depth"] for r in users] == [0, 0, 1, 1, 1]
    assert [r["e"] for r in users] == [True, True, False, False, False]
    # Depth 1 is the last level: its discoveries spawn nothing.
    deeper = await api.lease("w", ["follow_list"], n=10)
    assert len(deeper) == 3
    for u in deeper:
        status, _ = await api.complete("w", u, discovered_user_ids=[99, 98])
        assert status == 200
    assert await db.fetchval("SELECT count(*) FROM work_units") == 5
    status, view = await api.call("GET", f"/v1/jobs/{job['id']}", "researcher")
    assert view["state"] == "done"
    assert view["progress"]["done"] == 5


async def test_network_both_directions_and_permalink_seeds(
    api: Api, db: asyncpg.Connection
) -> None:
    await db.execute(
        "INSERT INTO users (id, permalink, fetched_at) VALUES (77, 'Some-Artist', now())"
    )
    job = await api.submit("network", {"seeds": ["some-artist", 77], "depth": 2})
    units = await api.lease("w", ["follow_list"], n=10)
    assert sorted(u["payload"]["direction"] for u in units) == ["followers", "followings"]
    assert {u["payload"]["user_id"] for u in units} == {77}
    status, _ = await api.complete("w", units[0], discovered_user_ids=[5])
    status, _ = await api.complete("w", units[1], discovered_user_ids=[5, 6])
    spawned = await api.lease("w", ["follow_list"], n=10)
    assert sorted((u["payload"]["user_id"], u["payload"]["direction"]) for u in spawned) == [
        (5, "followers"),
        (5, "followings"),
        (6, "followers"),
        (6, "followings"),
    ]
    assert all(u["payload"]["depth"] == 1 and u["payload"]["expand"] for u in spawned)
    assert job["kind"] == "network"
    status, data = await api.call(
        "POST", "/v1/jobs", "researcher", {"kind": "network", "spec": {"seeds": [1, "nobody"]}}
    )
    assert status == 422
    assert data["fields"][0]["field"] == "spec.seeds.1"


async def test_user_tracks_chains_track_timelines(api: Api) -> None:
    await api.submit(
        "user_tracks",
        {
            "user_ids": [1],
            "then_timelines": {"lists": ["reposters", "likers"], "timestamps": "page"},
        },
    )
    [unit] = await api.lease("w", ["user_tracks"])
    status, _ = await api.complete("w", unit, discovered_track_ids=[11, 12, 11, 0, -5, 2**60])
    assert status == 200
    lists = await api.lease("w", ["track_list"], n=10)
    assert sorted((u["payload"]["track_id"], u["payload"]["list"]) for u in lists) == [
        (11, "likers"),
        (11, "reposters"),
        (12, "likers"),
        (12, "reposters"),
    ]
    assert {u["payload"]["timestamps"] for u in lists} == {"page"}


async def test_play_poll_units_wait_for_not_before(api: Api, db: asyncpg.Connection) -> None:
    await api.submit("play_poll", {"track_ids": [3, 4], "every_s": 600, "for_s": 1800})
    offsets = await db.fetch(
        "SELECT round(extract(epoch FROM not_before - created_at))::int AS s FROM work_units"
        " ORDER BY not_before"
    )
    # both tracks in one batch (one request a tick)
    assert [r["s"] for r in offsets] == [0, 600, 1200, 1800]
    due = await api.lease("w", ["play_poll"], n=10)
    assert [u["payload"]["track_ids"] for u in due] == [[3, 4]]
    assert await api.lease("w", ["play_poll"], n=10) == []
    # Time passes: the next tick becomes claimable.
    await db.execute("UPDATE work_units SET not_before = not_before - interval '600 seconds'")
    nxt = await api.lease("w", ["play_poll"], n=10)
    assert len(nxt) == 1


async def test_user_sweep_ranges_cover_the_interval(api: Api, db: asyncpg.Connection) -> None:
    job = await api.submit(
        "user_sweep", {"id_from": 5, "id_to": 2506, "chunk": 1000, "shuffle": True}
    )
    assert job["progress"]["total"] == 3
    ranges = await db.fetch(
        "SELECT (payload->>'id_from')::int a, (payload->>'id_to')::int b FROM work_units ORDER BY 1"
    )
    assert [(r["a"], r["b"]) for r in ranges] == [(5, 1005), (1005, 2005), (2005, 2506)]


async def test_client_id_discovery_is_single_flight(api: Api) -> None:
    async def ask(worker: str) -> Any:
        status, data = await api.call(
            "GET", "/v1/client-ids/current", "worker", params={"worker_id": worker}
        )
        assert status == 200
        return data

    answers = await asyncio.gather(*(ask(f"w{i}") for i in range(12)))
    assert sum(a["discover"] for a in answers) == 1
    discoverer = next(f"w{i}" for i, a in enumerate(answers) if a["discover"])
    waiting = [a for a in answers if not a["discover"]]
    assert all(a["client_id"] is None and a["retry_after_s"] > 0 for a in waiting)
    status, data = await api.call(
        "POST",
        "/v1/client-ids",
        "worker",
        {"value": "AbCdEfGh12345678", "source": "bundles", "worker_id": discoverer},
    )
    assert (status, data["client_id"]) == (200, "AbCdEfGh12345678")
    assert (await ask("w5"))["client_id"] == "AbCdEfGh12345678"
    # Rotated: many workers see 401 at once; exactly one rediscovers.
    results = await asyncio.gather(
        *(
            api.call(
                "POST",
                "/v1/client-ids/AbCdEfGh12345678/invalidate",
                "worker",
                {"worker_id": f"w{i}"},
            )
            for i in range(8)
        )
    )
    assert sum(r[1]["discover"] for r in results) == 1
    status, lease = await api.call(
        "POST", "/v1/leases", "worker", {"worker_id": "w1", "kinds": ["score"]}
    )
    assert lease["fleet"]["client_id"] is None


async def test_the_budget_is_shared_by_the_crawl_units_each_worker_holds(api: Api) -> None:
    await api.submit("user_sweep", {"id_from": 1, "id_to": 401, "chunk": 100})
    status, answer = await api.call(
        "POST", "/v1/leases", "worker", {"worker_id": "w1", "kinds": ["user_range"], "max_units": 3}
    )
    assert status == 200 and len(answer["units"]) == 3
    # the lease's own advice counts the units it just handed out: all of them are w1's
    assert answer["fleet"]["rate_share_rps"] == pytest.approx(20.0)
    assert len(await api.lease("w2", ["user_range"], n=5)) == 1
    await api.lease("w3", ["user_range"])  # nothing left: holds no unit
    shares = {}
    for worker in ("w1", "w2", "w3"):
        status, advice = await api.call(
            "GET", "/v1/fleet/advice", "worker", params={"worker_id": worker}
        )
        assert status == 200, advice
        shares[worker] = advice["rate_share_rps"]
    assert shares["w1"] == pytest.approx(15.0, rel=0.05)  # 3 of the 4 units held
    assert shares["w2"] == pytest.approx(5.0, rel=0.05)
    assert shares["w3"] == pytest.approx(20.0 / 3, rel=0.05)  # none held: an equal share
    status, error = await api.call("GET", "/v1/fleet/advice", "worker")
    assert status == 422 and "worker_id" in str(error)
    status, _ = await api.call("GET", "/v1/fleet/advice", "researcher", params={"worker_id": "w1"})
    assert status == 403


async def test_throttle_halves_the_budget_once_and_pauses_the_fleet(api: Api) -> None:
    await api.lease("w1", ["user_range"])
    await api.lease("w2", ["user_range", "score"])
    await api.lease("scorer", ["score"])  # sends nothing to the platform: no share
    status, before = await api.call("GET", "/v1/fleet", "worker")
    assert before["budget_rps"] == pytest.approx(20.0)
    reports = await asyncio.gather(
        *(
            api.call(
                "POST", "/v1/fleet/throttle", "worker", {"worker_id": f"w{i}", "retry_after_s": 30}
            )
            for i in range(5)
        )
    )
    assert all(status == 200 for status, _ in reports)
    status, after = await api.call("GET", "/v1/fleet", "worker")
    # One congestion event, however many workers reported it.
    assert after["budget_rps"] == pytest.approx(10.0, abs=0.5)
    assert after["throttles"] == 5
    assert after["paused_until"] is not None
    status, lease = await api.call(
        "POST", "/v1/leases", "worker", {"worker_id": "w1", "kinds": ["score"]}
    )
    assert status == 200
    assert lease["fleet"]["paused_until"] is not None
    assert lease["fleet"]["rate_share_rps"] == pytest.approx(after["budget_rps"] / 2, rel=0.1)
    # While paused, crawl work stays queued; scoring work is still handed out.
    await api.submit("user_tracks", {"user_ids": [1]})
    await api.submit("score", {"model": "spam"})
    units = await api.lease("w1", ["user_tracks", "score"], n=5)
    assert [u["kind"] for u in units] == ["score"]
    assert {w["id"] for w in after["workers"]} == {"w1", "w2", "scorer"}


async def test_piggybacked_and_batch_completions_fence_each_item(
    api: Api, db: asyncpg.Connection
) -> None:
    await api.submit("user_tracks", {"user_ids": [1, 2, 3, 4, 5]})
    units = await api.lease("w-a", ["user_tracks"], n=3)
    stolen = units[0]
    await _expire(db, stolen["unit_id"])
    [again] = await api.lease("w-b", ["user_tracks"])
    assert again["unit_id"] == stolen["unit_id"]
    # w-a reports its batch while asking for more: the re-issued unit is refused alone.
    status, data = await api.call(
        "POST",
        "/v1/leases",
        "worker",
        {
            "worker_id": "w-a",
            "kinds": ["user_tracks"],
            "max_units": 5,
            "complete": [{"unit_id": u["unit_id"], "token": u["token"], "rows": 2} for u in units],
        },
    )
    assert status == 200
    LeaseResponse.model_validate(data)  # the hand-serialized hot path keeps the model's shape
    outcome = {r["unit_id"]: r["state"] for r in data["completed"]}
    assert outcome == {
        stolen["unit_id"]: "stale",
        units[1]["unit_id"]: "done",
        units[2]["unit_id"]: "done",
    }
    assert len(data["units"]) == 2  # the two never-leased ones
    status, data = await api.call(
        "POST",
        "/v1/leases/complete",
        "worker",
        {
            "worker_id": "w-b",
            "items": [{"unit_id": again["unit_id"], "token": again["token"]}]
            + [{"unit_id": u["unit_id"], "token": 99} for u in data["units"]],
        },
    )
    assert [r["state"] for r in data["results"]] == ["done", "stale", "stale"]
    BatchCompleteResponse.model_validate(data)
    counts = dict(await db.fetch("SELECT state, count(*) FROM work_units GROUP BY state"))
    assert counts == {"done": 3, "leased": 2}


async def test_concurrent_network_expansion_never_exceeds_max_users(
    api: Api, db: asyncpg.Connection
) -> None:
    job = await api.submit(
        "network", {"seeds": [1], "depth": 3, "direction": "both", "max_users": 40}
    )

    async def worker(i: int) -> None:
        idle = 0
        while idle < 3:
            units = await api.lease(f"net-{i}", ["follow_list"], n=2)
            if not units:
                idle += 1
                await asyncio.sleep(0.05)
                continue
            idle = 0
            for u in units:
                uid = u["payload"]["user_id"]
                # Overlapping neighbourhoods: many users are discovered by several units.
                found = [(uid * 7 + k) % 97 + 1 for k in range(12)]
                status, data = await api.complete(f"net-{i}", u, discovered_user_ids=found)
                assert status == 200, data

    await asyncio.gather(*(worker(i) for i in range(8)))
    users = await db.fetch(
        "SELECT (payload->>'user_id')::bigint AS u, count(*) AS n FROM work_units GROUP BY 1"
    )
    assert len(users) == 40
    assert {r["n"] for r in users} == {2}  # both directions, once each
    assert await db.fetchval("SELECT max(depth) FROM work_units") <= 3
    status, view = await api.call("GET", f"/v1/jobs/{job['id']}", "researcher")
    assert (status, view["state"], view["progress"]["done"]) == (200, "done", 80)


async def test_reading_a_job_repairs_a_missed_finish(api: Api, db: asyncpg.Connection) -> None:
    job = await api.submit("user_tracks", {"user_ids": [1, 2]})
    assert len(await api.lease("w", ["user_tracks"], n=2)) == 2
    # As if a coordinator died between committing these completions and closing the job.
    await db.execute("UPDATE work_units SET state = 'done', done_at = now()")
    assert await db.fetchval("SELECT state FROM jobs") == "running"
    status, view = await api.call("GET", f"/v1/jobs/{job['id']}", "researcher")
    assert (status, view["state"]) == (200, "done")
    assert view["finished_at"] is not None
    assert view["progress"]["done"] == 2


# ------------------------------------------------------------------------ long-poll
# A waiting call is given 30 s; each test's bound of 10 s is a liveness check (the call
# must be woken, not left to its timeout), not a measurement.


def _wait_lease(api: Api, worker: str, kinds: list[str]) -> asyncio.Task[tuple[int, Any]]:
    body = {"worker_id": worker, "kinds": kinds, "max_units": 5, "wait_s": 30}
    return asyncio.create_task(api.call("POST", "/v1/leases", "worker", body))


async def test_a_waiting_lease_call_claims_a_job_submitted_meanwhile(api: Api) -> None:
    waiting = _wait_lease(api, "w", ["score"])
    await asyncio.sleep(0.3)
    assert not waiting.done()  # nothing to lease: the call is held
    await api.submit("score", {"model": "spam"})
    status, data = await asyncio.wait_for(waiting, 10)
    assert status == 200, data
    assert [u["kind"] for u in data["units"]] == ["score"]


async def test_a_release_through_one_coordinator_wakes_a_call_waiting_on_another(
    api: Api, db_dsn: str
) -> None:
    await api.submit("score", {"model": "spam"})
    [unit] = await api.lease("w-a", ["score"])
    async with app_client(db_dsn, lease_wait_max_s=30) as other:
        waiting = _wait_lease(Api(other, api.keys), "w-b", ["score"])
        await asyncio.sleep(0.3)
        assert not waiting.done()
        status, _ = await api.call(
            "POST", f"/v1/leases/{unit['unit_id']}/release", "worker",
            {"worker_id": "w-a", "token": unit["token"]},
        )  # fmt: skip
        assert status == 200
        status, data = await asyncio.wait_for(waiting, 10)
    assert status == 200, data
    assert [(u["unit_id"], u["token"]) for u in data["units"]] == [(unit["unit_id"], 2)]


async def test_shutdown_answers_waiting_lease_calls_at_once(api: Api) -> None:
    waiting = _wait_lease(api, "w", ["score"])
    await asyncio.sleep(0.3)
    assert not waiting.done()
    api.client.app[COORDINATOR].close()
    status, data = await asyncio.wait_for(waiting, 10)
    assert (status, data["units"]) == (200, [])


async def test_the_listener_reconnects_after_its_connection_is_cut(
    api: Api, db: asyncpg.Connection
) -> None:
    listening = "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN %' AND pid <> $1"
    own = await db.fetchval("SELECT pg_backend_pid()")
    [old] = [r["pid"] for r in await db.fetch(listening, own)]
    await db.execute("SELECT pg_terminate_backend($1)", old)
    for _ in range(200):  # it reconnects after 5 s
        pids = [r["pid"] for r in await db.fetch(listening, own)]
        if pids and pids != [old]:
            break
        await asyncio.sleep(0.1)
    assert pids and old not in pids
    waiting = _wait_lease(api, "w", ["score"])
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await api.submit("score", {"model": "spam"})
    status, data = await asyncio.wait_for(waiting, 10)
    assert (status, len(data["units"])) == (200, 1)


# ----------------------------------------------------------------- bot-protection blocks


@pytest.fixture
async def blocky(db_dsn: str) -> Any:
    """A coordinator with short block pauses and a rediscovery interval, as on the real host."""
    keys = await make_keys(db_dsn)
    async with app_client(
        db_dsn,
        block_base_s=0.3,
        block_max_s=1.0,
        block_reset_s=30.0,
        rediscovery_interval_s=0.6,
    ) as client:
        yield Api(client, keys)


@pytest.fixture
async def long_blocks(db_dsn: str) -> Any:
    """Block pauses long enough (1 s, cap 2 s) for six concurrent reports to fall inside
    the first one on a busy machine (0.3 s did not, on CI)."""
    keys = await make_keys(db_dsn)
    async with app_client(
        db_dsn, block_base_s=1.0, block_max_s=2.0, block_reset_s=30.0, rediscovery_interval_s=0.6
    ) as client:
        yield Api(client, keys)


async def _block(api: Api, worker: str, reason: str = "HTTP 403 from DataDome") -> Any:
    status, data = await api.call(
        "POST", "/v1/fleet/block", "worker", {"worker_id": worker, "reason": reason}
    )
    assert status == 200, data
    return data


async def _ask(api: Api, worker: str) -> Any:
    status, data = await api.call(
        "GET", "/v1/client-ids/current", "worker", params={"worker_id": worker}
    )
    assert status == 200, data
    return data


async def test_a_block_pauses_the_fleet_once_and_doubles_when_it_recurs(
    long_blocks: Api,
) -> None:
    api = long_blocks
    await api.lease("w1", ["user_range"])
    reports = await asyncio.gather(*(_block(api, f"w{i}") for i in range(6)))
    assert sum(r["new"] for r in reports) == 1  # one episode, however many workers met it
    assert {r["level"] for r in reports} == {0}
    assert all(0 < r["wait_s"] <= 1.0 for r in reports)
    # No id is known and none was ever fetched, yet nobody may fetch the homepage from
    # a blocked address.
    assert not (await _ask(api, "w2"))["discover"]
    _, fleet = await api.call("GET", "/v1/fleet", "worker")
    assert fleet["blocked"] and fleet["block_level"] == 0 and fleet["blocks"] == 1
    assert fleet["blocked_since"] is not None and fleet["block_until"] is not None
    assert "DataDome" in fleet["block_reason"]
    assert fleet["budget_rps"] == pytest.approx(10.0, abs=0.5)  # the AIMD cut
    _, text = await api.call("GET", "/metrics", None)
    assert "soundfleet_fleet_blocked 1.0" in text
    assert "soundfleet_fleet_block_level 0.0" in text
    # While blocked, crawl work is not handed out.
    await api.submit("user_tracks", {"user_ids": [1]})
    assert await api.lease("w1", ["user_tracks"]) == []
    # Blocked again right after the pause: the pause doubles, up to its cap.
    waits = []
    for level in (1, 2, 3):
        await asyncio.sleep(fleet_wait(await api.call("GET", "/v1/fleet", "worker")))
        got = await _block(api, "w1")
        assert got["new"] and got["level"] == level
        waits.append(got["wait_s"])
    assert waits[0] == pytest.approx(2.0, abs=0.1)
    assert waits[1] == pytest.approx(2.0, abs=0.1) and waits[2] == pytest.approx(2.0, abs=0.1)
    await asyncio.sleep(2.05)
    _, fleet = await api.call("GET", "/v1/fleet", "worker")
    assert not fleet["blocked"] and fleet["blocks"] == 4
    assert len(await api.lease("w1", ["user_tracks"])) == 1


def fleet_wait(answer: tuple[int, Any]) -> float:
    """Seconds until the fleet's block pause ends (and a hair more)."""
    from datetime import UTC, datetime

    until = datetime.fromisoformat(answer[1]["block_until"])
    return max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.05


async def test_rediscovery_is_rationed_and_a_returned_id_is_taken_back(blocky: Api) -> None:
    api = blocky
    assert (await _ask(api, "w1"))["discover"]
    status, _ = await api.call(
        "POST",
        "/v1/client-ids",
        "worker",
        {"value": "Id1aaaaaaaaaaaaa", "source": "hydration", "worker_id": "w1"},
    )
    assert status == 200
    await api.call(
        "POST", "/v1/client-ids/Id1aaaaaaaaaaaaa/invalidate", "worker", {"worker_id": "w2"}
    )
    # The last grant was under the interval ago: nobody may fetch the homepage yet.
    early = await _ask(api, "w2")
    assert not early["discover"] and early["client_id"] is None
    assert 0 < early["retry_after_s"] <= 0.6
    await asyncio.sleep(early["retry_after_s"] + 0.05)
    assert (await _ask(api, "w2"))["discover"]
    assert not (await _ask(api, "w3"))["discover"]  # still one at a time
    # The homepage names the refused id again: it was a block, not a rotation.
    status, state = await api.call(
        "POST",
        "/v1/client-ids",
        "worker",
        {"value": "Id1aaaaaaaaaaaaa", "source": "hydration", "worker_id": "w2"},
    )
    assert status == 200 and state["client_id"] == "Id1aaaaaaaaaaaaa"
    _, fleet = await api.call("GET", "/v1/fleet", "worker")
    assert fleet["client_id"] == "Id1aaaaaaaaaaaaa"
    assert fleet["blocked"] and fleet["blocks"] == 1
    assert "refused client_id" in fleet["block_reason"]


# ----------------------------------------------------------------- least privilege


async def test_a_worker_key_cannot_stop_or_steer_the_fleet(api: Api) -> None:
    from datetime import UTC, datetime

    await api.lease("w1", ["user_range"])
    # One 429 report of an hour pauses the fleet for worker_pause_max_s (600 s) at most.
    status, _ = await api.call(
        "POST", "/v1/fleet/throttle", "worker", {"worker_id": "w1", "retry_after_s": 3600}
    )
    assert status == 200
    _, fleet = await api.call("GET", "/v1/fleet", "worker")
    paused = datetime.fromisoformat(fleet["paused_until"]) - datetime.now(UTC)
    assert 590 < paused.total_seconds() <= 600
    status, _ = await api.call(
        "POST", "/v1/fleet/throttle", "admin", {"worker_id": "ops", "retry_after_s": 3600}
    )
    _, fleet = await api.call("GET", "/v1/fleet", "worker")
    assert (datetime.fromisoformat(fleet["paused_until"]) - datetime.now(UTC)).seconds > 3500
    # Only the granted discoverer may set the fleet's client_id; an admin may always.
    report = {"value": "Forged0000000000", "source": "hydration", "worker_id": "w1"}
    status, data = await api.call("POST", "/v1/client-ids", "worker", report)
    assert status == 403 and "does not hold the client_id discovery" in data["message"]
    assert (await _ask(api, "w2"))["discover"]
    report = {**report, "worker_id": "w2", "value": "Granted000000000"}
    assert (await api.call("POST", "/v1/client-ids", "worker", report))[0] == 200
    status, data = await api.call("POST", "/v1/client-ids", "worker", report)
    assert status == 403  # the grant ends with the report
    admin = {**report, "worker_id": "ops", "value": "ByAdmin000000000"}
    assert (await api.call("POST", "/v1/client-ids", "admin", admin))[0] == 200
    _, fleet = await api.call("GET", "/v1/fleet", "worker")
    assert fleet["client_id"] == "ByAdmin000000000"


async def test_researchers_see_the_fleet_without_its_internals(api: Api) -> None:
    await api.lease("w1", ["user_range"])
    status, mine = await api.call("GET", "/v1/fleet", "researcher")
    assert status == 200
    assert mine["workers"] == [] and mine["client_id"] is None
    assert mine["discovery_worker"] is None and mine["budget_rps"] > 0
    _, full = await api.call("GET", "/v1/fleet", "worker")
    assert [w["id"] for w in full["workers"]] == ["w1"]
