"""The coordinator's HTTP edge on real PostgreSQL: auth matrix, bad input, OpenAPI, health."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from coordinator.routes import ROUTE_TABLE
from tests import dbutil
from tests.coordinator_util import Api, app_client, auth, make_keys


@pytest.fixture
async def api(db_dsn: str) -> Any:
    keys = await make_keys(db_dsn)
    async with app_client(db_dsn, body_limit_bytes=4096) as client:
        yield Api(client, keys)


def _concrete(path: str) -> str:
    return (
        path.replace("{unit:\\d+}", "424242")
        .replace("{job_id:\\d+}", "424242")
        .replace("{run_id:\\d+}", "424242")
        .replace("{value}", "abcdefgh1234")
    )


async def test_auth_matrix_every_route_every_role_and_no_key(api: Api) -> None:
    checked = 0
    for route in ROUTE_TABLE:
        path = _concrete(route.path)
        body = {} if route.method == "POST" else None
        for who in (None, "bogus", "researcher", "worker", "admin"):
            headers = {}
            if who == "bogus":
                headers = auth("sf_not-a-real-key")
            elif who is not None:
                headers = auth(api.keys[who])
            resp = await api.client.request(route.method, path, json=body, headers=headers)
            data = await resp.json() if resp.content_type == "application/json" else None
            if route.roles is None:
                assert resp.status not in (401, 403), (route.path, who)
            elif who in (None, "bogus"):
                assert resp.status == 401, (route.path, who, data)
                assert data["error"] == "unauthorized"
            elif who in route.roles:
                assert resp.status not in (401, 403), (route.path, who, data)
            else:
                assert resp.status == 403, (route.path, who, data)
                assert who in data["message"]
            checked += 1
    assert checked == len(ROUTE_TABLE) * 5


async def test_researchers_see_only_their_own_jobs(api: Api) -> None:
    mine = await api.submit("score", {"model": "spam"}, as_="researcher")
    theirs = await api.submit("score", {"model": "network"}, as_="researcher2")
    status, page = await api.call("GET", "/v1/jobs", "researcher")
    assert status == 200
    assert [j["id"] for j in page["jobs"]] == [mine["id"]]
    assert page["jobs"][0]["owner"] == "researcher"
    status, _ = await api.call("GET", f"/v1/jobs/{theirs['id']}", "researcher")
    assert status == 404
    status, page = await api.call("GET", "/v1/jobs", "admin")
    assert {j["id"] for j in page["jobs"]} == {mine["id"], theirs["id"]}
    status, view = await api.call("GET", f"/v1/jobs/{theirs['id']}", "admin")
    assert (status, view["owner"]) == (200, "researcher2")


async def test_list_filters_and_paging(api: Api) -> None:
    ids = [(await api.submit("score", {"model": "spam"}))["id"] for _ in range(3)]
    await api.submit("user_tracks", {"user_ids": [1]})
    status, page = await api.call("GET", "/v1/jobs?kind=score&limit=2", "researcher")
    assert [j["id"] for j in page["jobs"]] == [ids[2], ids[1]]
    assert page["next_before"] == ids[1]
    status, page = await api.call(
        "GET", f"/v1/jobs?kind=score&limit=2&before={ids[1]}", "researcher"
    )
    assert [j["id"] for j in page["jobs"]] == [ids[0]]
    assert page["next_before"] is None
    status, page = await api.call("GET", "/v1/jobs?state=done", "researcher")
    assert page["jobs"] == []
    status, data = await api.call("GET", "/v1/jobs?state=bogus&limit=0", "researcher")
    assert status == 422
    assert {f["field"] for f in data["fields"]} == {"query.state", "query.limit"}


BAD_SUBMISSIONS: list[tuple[str, Any, int, str]] = [
    ("unknown kind", {"kind": "crawl_everything", "spec": {}}, 422, "kind"),
    ("no kind", {"spec": {}}, 422, "kind"),
    (
        "id below range",
        {"kind": "user_sweep", "spec": {"id_from": 0, "id_to": 10}},
        422,
        "spec.id_from",
    ),
    (
        "id above range",
        {"kind": "user_sweep", "spec": {"id_from": 1, "id_to": 2**60}},
        422,
        "spec.id_to",
    ),
    ("empty range", {"kind": "user_sweep", "spec": {"id_from": 10, "id_to": 10}}, 422, "spec"),
    (
        "too many units",
        {"kind": "user_sweep", "spec": {"id_from": 1, "id_to": 10**9, "chunk": 1}},
        422,
        "spec",
    ),
    ("depth > 3", {"kind": "network", "spec": {"seeds": [1], "depth": 4}}, 422, "spec.depth"),
    (
        "bad direction",
        {"kind": "network", "spec": {"seeds": [1], "direction": "sideways"}},
        422,
        "spec.direction",
    ),
    ("bad seed", {"kind": "network", "spec": {"seeds": ["has space"]}}, 422, "spec.seeds.0"),
    (
        "extra field",
        {"kind": "score", "spec": {"model": "spam", "colour": "red"}},
        422,
        "spec.colour",
    ),
    ("bad model", {"kind": "score", "spec": {"model": "astrology"}}, 422, "spec.model"),
    (
        "bad list",
        {"kind": "track_timelines", "spec": {"track_ids": [1], "lists": ["plays"]}},
        422,
        "spec.lists.0",
    ),
    (
        "poll too often",
        {"kind": "play_poll", "spec": {"track_ids": [1], "every_s": 0.1}},
        422,
        "spec.every_s",
    ),
    ("priority", {"kind": "score", "spec": {"model": "spam"}, "priority": 1000}, 422, "priority"),
    ("not an object", [1, 2], 422, "body"),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "field"), BAD_SUBMISSIONS, ids=[c[0] for c in BAD_SUBMISSIONS]
)
async def test_bad_job_specs_are_422_naming_the_field_and_write_nothing(
    api: Api, db: asyncpg.Connection, case: str, body: Any, status: int, field: str
) -> None:
    got, data = await api.call("POST", "/v1/jobs", "researcher", body)
    assert got == status, data
    assert data["error"] == "invalid"
    assert field in [f["field"] for f in data["fields"]], data
    assert await db.fetchval("SELECT count(*) FROM jobs") == 0
    assert await db.fetchval("SELECT count(*) FROM work_units") == 0


async def test_malformed_bodies_are_refused_and_write_nothing(
    api: Api, db: asyncpg.Connection
) -> None:
    headers = auth(api.keys["researcher"])
    cases = [
        # oversize (declared length)
        (
            {
                "data": json.dumps(
                    {"kind": "user_tracks", "spec": {"user_ids": list(range(1, 3000))}}
                ),
                "headers": {**headers, "Content-Type": "application/json"},
            },
            413,
            "body_too_large",
        ),
        # wrong content type
        (
            {
                "data": json.dumps({"kind": "score", "spec": {"model": "spam"}}),
                "headers": {**headers, "Content-Type": "text/plain"},
            },
            415,
            "unsupported_media_type",
        ),
        # form encoding
        ({"data": {"kind": "score"}, "headers": headers}, 415, "unsupported_media_type"),
        # broken JSON
        (
            {"data": '{"kind": ', "headers": {**headers, "Content-Type": "application/json"}},
            400,
            "bad_request",
        ),
        # no key at all
        ({"json": {"kind": "score", "spec": {"model": "spam"}}}, 401, "unauthorized"),
        # a worker key
        (
            {
                "json": {"kind": "score", "spec": {"model": "spam"}},
                "headers": auth(api.keys["worker"]),
            },
            403,
            "forbidden",
        ),
    ]
    for kwargs, status, code in cases:
        resp = await api.client.post("/v1/jobs", **kwargs)
        data = await resp.json()
        assert (resp.status, data["error"]) == (status, code), data
        assert data["message"]

    async def chunks() -> Any:
        # Chunked upload with no Content-Length: the limit applies while reading.
        yield b'{"kind": "user_tracks", "spec": {"user_ids": ['
        for _ in range(200):
            yield b"1, " * 20
        yield b"1]}}"

    resp = await api.client.post(
        "/v1/jobs", data=chunks(), headers={**headers, "Content-Type": "application/json"}
    )
    assert resp.status == 413
    assert (await resp.json())["error"] == "body_too_large"
    assert await db.fetchval("SELECT count(*) FROM jobs") == 0
    assert await db.fetchval("SELECT count(*) FROM work_units") == 0


async def test_lease_protocol_validation(api: Api) -> None:
    status, data = await api.call(
        "POST", "/v1/leases", "worker", {"worker_id": "w", "kinds": ["mining"], "max_units": 0}
    )
    assert status == 422
    assert {"kinds.0", "max_units"} <= {f["field"] for f in data["fields"]}
    status, data = await api.call("POST", "/v1/leases/1/complete", "worker", {"token": 1})
    assert status == 422
    assert data["fields"][0]["field"] == "worker_id"
    status, data = await api.call(
        "POST",
        "/v1/client-ids",
        "worker",
        {"value": "x y", "source": "hydration", "worker_id": "w"},
    )
    assert status == 422
    assert data["fields"][0]["field"] == "value"


async def test_unknown_routes_and_methods_are_json(api: Api) -> None:
    status, data = await api.call("GET", "/v1/nothing", "admin")
    assert (status, data["error"]) == (404, "not_found")
    status, data = await api.call("DELETE", "/v1/jobs", "admin")
    assert (status, data["error"]) == (405, "method_not_allowed")
    status, data = await api.call("GET", "/v1/jobs/abc", "admin")
    assert status == 404


async def test_openapi_document_matches_the_routes(api: Api) -> None:
    status, doc = await api.call("GET", "/openapi.json", None)
    assert status == 200
    assert doc["openapi"] == "3.1.0"
    for route in ROUTE_TABLE:
        path = route.path.replace(":\\d+", "")
        op = doc["paths"][path][route.method.lower()]
        if route.roles is None:
            assert op["security"] == []
        else:
            assert op["security"] == [{"bearerAuth": []}]
            assert {"401", "403"} <= set(op["responses"])
    submit = doc["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]
    kinds = set(submit["schema"]["discriminator"]["mapping"])
    assert kinds == {
        "user_sweep",
        "network",
        "user_tracks",
        "track_timelines",
        "play_poll",
        "score",
    }
    network = doc["components"]["schemas"]["NetworkSpec"]["properties"]["depth"]
    assert (network["minimum"], network["maximum"]) == (0, 3)

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if "$ref" in node else []
            return found + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"], ref


async def test_health_readiness_and_metrics(api: Api, admin_dsn: str, template_db: str) -> None:
    status, data = await api.call("GET", "/healthz", None)
    assert (status, data["status"]) == (200, "ok")
    status, data = await api.call("GET", "/readyz", None)
    assert (status, data["status"]) == (200, "ok")
    await api.submit("user_tracks", {"user_ids": [1, 2, 3]})
    await api.lease("w-metrics", ["user_tracks"])
    status, text = await api.call("GET", "/metrics", None)
    assert status == 200
    assert 'soundfleet_units{kind="user_tracks",state="queued"} 2.0' in text
    assert 'soundfleet_units{kind="user_tracks",state="leased"} 1.0' in text
    assert "soundfleet_workers_alive 1.0" in text
    assert "soundfleet_budget_rps 20.0" in text
    assert 'soundfleet_claims_total{kind="user_tracks"} 1.0' in text
    assert "soundfleet_lease_latency_seconds_count 1.0" in text

    empty = await dbutil.create_empty(admin_dsn)
    try:
        readiness = await _readyz_of_unmigrated(empty)
    finally:
        await dbutil.drop(admin_dsn, empty)
    assert readiness == (503, "unavailable")


async def _readyz_of_unmigrated(dsn: str) -> tuple[int, str]:
    async with app_client(dsn) as client:
        resp = await client.get("/readyz")
        data = await resp.json()
        assert "none" in data["detail"]
        return resp.status, data["status"]


async def test_scoring_runs_api(api: Api, db: asyncpg.Connection) -> None:
    status, job = await api.call(
        "POST", "/v1/scoring-runs", "researcher", {"model": "spam", "params": {"k": 3}}
    )
    assert (status, job["kind"], job["progress"]["total"]) == (201, "score", 1)
    [unit] = await api.lease("scorer", ["score"])
    assert unit["payload"] == {"model": "spam", "params": {"k": 3}}
    other = await api.submit("score", {"model": "network"}, as_="researcher2")
    insert = (
        "INSERT INTO scoring_runs (model, model_version, params, state, metrics, job_id,"
        " unit_id) VALUES ($1, 'v1', '{}', $2, $3, $4, $5) RETURNING id"
    )
    mine = await db.fetchval(insert, "spam", "done", '{"auc": 0.9}', job["id"], unit["unit_id"])
    loose = await db.fetchval(insert, "virality", "running", None, None, None)
    theirs = await db.fetchval(insert, "network", "failed", None, other["id"], None)
    status, page = await api.call("GET", "/v1/scoring-runs", "researcher")
    assert status == 200
    assert [r["id"] for r in page["runs"]] == [loose, mine]
    assert page["runs"][1]["metrics"] == {"auc": 0.9}
    status, page = await api.call("GET", "/v1/scoring-runs?model=network", "admin")
    assert [r["id"] for r in page["runs"]] == [theirs]
    status, _ = await api.call("GET", f"/v1/scoring-runs/{theirs}", "researcher")
    assert status == 404
    status, run = await api.call("GET", f"/v1/scoring-runs/{theirs}", "researcher2")
    assert (status, run["state"]) == (200, "failed")
    status, data = await api.call("GET", "/v1/scoring-runs?model=tarot", "researcher")
    assert (status, data["fields"][0]["field"]) == (422, "query.model")
    status, data = await api.call("POST", "/v1/scoring-runs", "researcher", {"model": "tarot"})
    assert (status, data["fields"][0]["field"]) == (422, "model")


async def test_text_postgresql_cannot_store_is_422_and_writes_nothing(
    api: Api, db: asyncpg.Connection
) -> None:
    headers = {**auth(api.keys["researcher"]), "Content-Type": "application/json"}
    score = '{"kind": "score", "spec": {"model": "spam", %s}}'
    bodies = {
        "spec.params.k": score % '"params": {"k": "a\\u0000"}',
        "spec.params.k\\x00": score % '"params": {"k\\u0000": 1}',
        "spec.colour\\x00": score % '"colour\\u0000": 1',
    }
    for field, raw in bodies.items():
        resp = await api.client.post("/v1/jobs", data=raw, headers=headers)
        data = await resp.json()
        assert resp.status == 422, data
        assert data["fields"][0]["field"] == field
    # Half a surrogate pair is not JSON at all.
    resp = await api.client.post(
        "/v1/jobs", data=score % '"params": {"k": "\\udae8"}', headers=headers
    )
    assert (resp.status, (await resp.json())["error"]) == (400, "bad_request")
    status, data = await api.call(
        "POST", "/v1/leases", "worker", {"worker_id": "w\u0000", "kinds": ["score"]}
    )
    assert (status, data["fields"][0]["field"]) == (422, "worker_id")
    status, data = await api.call("GET", "/v1/client-ids/current?worker_id=%00", "worker")
    assert (status, data["fields"][0]["field"]) == (422, "query.worker_id")
    # An escaped emoji (a valid surrogate pair) is fine.
    resp = await api.client.post(
        "/v1/jobs",
        data='{"kind": "score", "spec": {"model": "spam", "params": {"tag": "\\ud83d\\ude00"}}}',
        headers=headers,
    )
    assert resp.status == 201
    assert await db.fetchval("SELECT count(*) FROM jobs") == 1
    assert await db.fetchval("SELECT count(*) FROM workers") == 0


async def test_lost_database_connections_are_503_then_recovered(
    api: Api, db: asyncpg.Connection
) -> None:
    await api.submit("score", {"model": "spam"})
    await api.lease("w", ["user_range"])  # the pool holds live connections now
    # As if PostgreSQL restarted: every other session of this database is cut.
    await db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    statuses = []
    for _ in range(20):  # one per pooled connection at most, then all are fresh
        status, data = await api.call(
            "POST", "/v1/leases", "worker", {"worker_id": "w", "kinds": ["score"]}
        )
        statuses.append(status)
        assert status in (200, 503), data
        if status == 503:
            assert data["error"] == "unavailable"
        elif data["units"]:
            break
    assert statuses[-1] == 200


async def test_keys_cli_lists_and_revokes_and_revoked_keys_stop_working(
    api: Api, db_dsn: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from soundfleet.cli import main

    monkeypatch.setenv("DATABASE_URL", db_dsn)
    assert await asyncio.to_thread(main, ["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert "researcher2" in listing and "active" in listing
    assert all(key not in listing for key in api.keys.values())  # never the key itself
    worker_id = next(
        line.split()[0] for line in listing.splitlines() if line.split()[1] == "worker"
    )
    status, _ = await api.call("GET", "/v1/fleet", "worker")
    assert status == 200
    assert await asyncio.to_thread(main, ["keys", "revoke", worker_id]) == 0
    status, data = await api.call("GET", "/v1/fleet", "worker")
    assert (status, data["error"]) == (401, "unauthorized")
    assert await asyncio.to_thread(main, ["keys", "revoke", worker_id]) == 1
    assert "already revoked" in capsys.readouterr().err


async def test_per_key_quotas_refuse_with_429_and_write_nothing(
    db_dsn: str, db: asyncpg.Connection
) -> None:
    keys = await make_keys(db_dsn)
    async with app_client(db_dsn, quota_active_jobs=2, quota_queued_units=25) as client:
        api = Api(client, keys)
        sweep = {"kind": "user_sweep", "spec": {"id_from": 1, "id_to": 2001, "chunk": 100}}
        assert (await api.call("POST", "/v1/jobs", "researcher", sweep))[0] == 201  # 20 units
        big = {"kind": "user_sweep", "spec": {"id_from": 1, "id_to": 1001, "chunk": 100}}
        status, data = await api.call("POST", "/v1/jobs", "researcher", big)
        assert status == 429 and data["error"] == "quota_exceeded"
        assert "20 units queued; this job adds 10, past its quota of 25" in data["message"]
        small = {"kind": "user_tracks", "spec": {"user_ids": [1, 2, 3]}}
        assert (await api.call("POST", "/v1/jobs", "researcher", small))[0] == 201
        status, data = await api.call("POST", "/v1/jobs", "researcher", small)
        assert status == 429 and "2 active jobs, its quota is 2" in data["message"]
        # Another key has its own quota; an admin has none.
        assert (await api.call("POST", "/v1/jobs", "researcher2", small))[0] == 201
        assert (await api.call("POST", "/v1/jobs", "admin", big))[0] == 201
    assert await db.fetchval("SELECT count(*) FROM jobs") == 4


async def test_a_flood_of_bad_keys_cannot_flush_the_key_cache(
    db_dsn: str, db: asyncpg.Connection
) -> None:
    keys = await make_keys(db_dsn)
    async with app_client(db_dsn, key_cache_s=60.0) as client:
        api = Api(client, keys)
        assert (await api.call("GET", "/v1/jobs", "researcher"))[0] == 200  # now cached
        # Revoked in the database: only the cache still knows the key, which shows
        # whether the flood below evicted it.
        await db.execute("UPDATE api_keys SET revoked_at = now() WHERE name = 'researcher'")
        for i in range(10_050):  # past the 10,000 entries that used to flush the cache
            resp = await client.get("/v1/jobs", headers=auth(f"sf_bad_key_{i:05d}"))
            assert resp.status == 401
        assert (await api.call("GET", "/v1/jobs", "researcher"))[0] == 200
        resp = await client.get("/v1/jobs", headers=auth("sf_bad_key_10049"))
        assert resp.status == 401


async def test_metrics_gauges_are_read_once_per_interval(db_dsn: str) -> None:
    """A scrape storm costs one database read per metrics_cache_s, not one per scrape."""
    keys = await make_keys(db_dsn)
    async with app_client(db_dsn, metrics_cache_s=60.0) as client:
        api = Api(client, keys)
        await api.submit("user_tracks", {"user_ids": [1, 2]})
        _, first = await api.call("GET", "/metrics", None)
        assert 'soundfleet_units{kind="user_tracks",state="queued"} 2.0' in first
        await api.submit("user_tracks", {"user_ids": [3]})
        _, again = await api.call("GET", "/metrics", None)
        assert 'soundfleet_units{kind="user_tracks",state="queued"} 2.0' in again


async def test_progress_rate_is_over_the_job_s_own_age(api: Api, db: asyncpg.Connection) -> None:
    job = await api.submit("user_sweep", {"id_from": 1, "id_to": 2001, "chunk": 100})
    # 20 seconds old, 10 of its 20 units done: 0.5 units/s, not 10 / 60
    await db.execute(
        "UPDATE jobs SET created_at = now() - interval '20 seconds', state = 'running'"
        " WHERE id = $1",
        job["id"],
    )
    await db.execute(
        "UPDATE work_units SET state = 'done', done_at = now() WHERE id IN"
        " (SELECT id FROM work_units WHERE job_id = $1 ORDER BY id LIMIT 10)",
        job["id"],
    )
    _, view = await api.call("GET", f"/v1/jobs/{job['id']}", "researcher")
    p = view["progress"]
    assert p["units_per_s"] == pytest.approx(0.5, rel=0.05)
    assert p["eta_s"] == pytest.approx(20.0, rel=0.05)
    # cancelled: the rate is over its life, the bar counts only what ran
    _, view = await api.call("POST", f"/v1/jobs/{job['id']}/cancel", "researcher")
    assert view["state"] == "cancelled" and view["finished_at"] is not None
    assert view["progress"]["cancelled"] == 10 and view["progress"]["done"] == 10
    assert view["progress"]["units_per_s"] == pytest.approx(0.5, rel=0.05)


async def test_docs_page_lists_every_route_and_the_spec_fields(api: Api) -> None:
    resp = await api.client.get("/docs")
    assert resp.status == 200 and resp.content_type == "text/html"
    page = await resp.text()
    for route in ROUTE_TABLE:
        assert route.path.replace(":\\d+", "") in page, route.path
    # a job's spec fields with their limits, read from the models that validate them
    assert "max_users" in page and "&lt;= 500000" in page and "<script" not in page
