"""Two real ``soundfleet coordinator`` processes on one database serve one fleet."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from runtime import database


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "soundfleet.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _start(env: dict[str, str], processes: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "soundfleet.cli",
            "coordinator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--processes",
            str(processes),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("coordinator listening on http://127.0.0.1:"):
            return proc, line.split()[-1]
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("coordinator did not print its URL")


@pytest.fixture
def fleet_env(db_dsn: str) -> dict[str, str]:
    env = database.env_with_database(db_dsn)
    env["SOUNDFLEET_LOG_FORMAT"] = "json"
    env["SOUNDFLEET_COORDINATOR_DB_POOL_SIZE"] = "4"
    env["SOUNDFLEET_COORDINATOR_FLEET_CACHE_S"] = "0"
    return env


@pytest.fixture
def coordinators(fleet_env: dict[str, str]) -> Iterator[list[str]]:
    # One single-process coordinator and one with two server processes on one port.
    procs = [_start(fleet_env, 1), _start(fleet_env, 2)]
    try:
        yield [url for _, url in procs]
    finally:
        for proc, _ in procs:
            proc.send_signal(signal.SIGTERM)
        for proc, _ in procs:
            # A clean SIGTERM shutdown exits 0.
            assert proc.wait(30) == 0


def _key(env: dict[str, str], role: str) -> str:
    done = _cli("keys", "create", "--role", role, "--name", f"{role}-{os.getpid()}", env=env)
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip()
    assert key.startswith("sf_") and "shown only once" in done.stderr
    return key


@pytest.mark.slow
async def test_two_coordinators_share_one_queue(
    fleet_env: dict[str, str], coordinators: list[str]
) -> None:
    researcher, worker = _key(fleet_env, "researcher"), _key(fleet_env, "worker")
    a, b = coordinators
    rh = {"Authorization": f"Bearer {researcher}"}
    wh = {"Authorization": f"Bearer {worker}"}
    jobs_cli = ("jobs", "--coordinator", a, "--key", researcher)
    empty = _cli(*jobs_cli, env=fleet_env)
    assert (empty.returncode, empty.stdout) == (0, "no jobs yet\n"), empty.stderr
    async with aiohttp.ClientSession() as http:

        async def post(base: str, path: str, body: Any, headers: dict[str, str]) -> Any:
            async with http.post(base + path, json=body, headers=headers) as resp:
                data = await resp.json()
                assert resp.status in (200, 201), (path, resp.status, data)
                return data

        job = await post(
            a,
            "/v1/jobs",
            {"kind": "user_sweep", "spec": {"id_from": 1, "id_to": 601, "chunk": 1}},
            rh,
        )
        held: Counter[int] = Counter()

        async def run_worker(i: int) -> None:
            # Lease from one coordinator, complete through the other.
            lease_at, complete_at = (a, b) if i % 2 else (b, a)
            name = f"acc-{i}"
            while True:
                got = await post(
                    lease_at,
                    "/v1/leases",
                    {"worker_id": name, "kinds": ["user_range"], "max_units": 5},
                    wh,
                )
                if not got["units"]:
                    return
                for u in got["units"]:
                    held[u["unit_id"]] += 1
                items = [{"unit_id": u["unit_id"], "token": u["token"]} for u in got["units"]]
                result = await post(
                    complete_at, "/v1/leases/complete", {"worker_id": name, "items": items}, wh
                )
                assert {r["state"] for r in result["results"]} == {"done"}

        await asyncio.gather(*(run_worker(i) for i in range(12)))
        assert len(held) == 600 and set(held.values()) == {1}
        async with http.get(f"{b}/v1/jobs/{job['id']}", headers=rh) as resp:
            view = await resp.json()
        assert view["state"] == "done"
        assert view["progress"]["done"] == 600
        listed = _cli(*jobs_cli, env=fleet_env).stdout.splitlines()
        assert "submitted (UTC)" in listed[0] and "finished (UTC)" in listed[0]
        assert listed[1].split()[:4] == [str(job["id"]), "user_sweep", "done", "600/600"]
        assert listed[1].count(view["created_at"][:10]) == 2  # submitted and finished

        # client_id single flight across both processes.
        async def ask(i: int) -> Any:
            base = a if i % 2 else b
            async with http.get(
                f"{base}/v1/client-ids/current", params={"worker_id": f"acc-{i}"}, headers=wh
            ) as resp:
                return await resp.json()

        answers = await asyncio.gather(*(ask(i) for i in range(10)))
        assert sum(x["discover"] for x in answers) == 1

        # A 429 reported to one coordinator pauses leases handed out by the other.
        await post(a, "/v1/fleet/throttle", {"worker_id": "acc-1", "retry_after_s": 60}, wh)
        got = await post(b, "/v1/leases", {"worker_id": "acc-2", "kinds": ["score"]}, wh)
        assert got["fleet"]["paused_until"] is not None
        for base in (a, b):
            async with http.get(f"{base}/readyz") as resp:
                assert resp.status == 200


async def _closed_by_peer(reader: asyncio.StreamReader) -> bool:
    """True when the server ends the connection without a response (FIN or RST)."""
    try:
        return await asyncio.wait_for(reader.read(), timeout=15) == b""
    except ConnectionResetError:
        return True


@pytest.mark.slow
async def test_slow_headers_are_cut_off_and_connections_are_capped(
    fleet_env: dict[str, str],
) -> None:
    env = {
        **fleet_env,
        "SOUNDFLEET_COORDINATOR_HEADER_TIMEOUT_S": "1",
        "SOUNDFLEET_COORDINATOR_MAX_CONNECTIONS": "20",
    }
    proc, url = _start(env, 1)
    host, port = url.removeprefix("http://").split(":")
    try:
        # A client trickling its headers is disconnected once the timeout passes.
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        await writer.drain()
        started = time.monotonic()
        assert await _closed_by_peer(reader)
        assert time.monotonic() - started < 10
        writer.close()
        # 20 idle connections fill the cap; the 21st is closed at once, and once they
        # are gone the coordinator answers again.
        held = [await asyncio.open_connection(host, int(port)) for _ in range(20)]
        await asyncio.sleep(0.2)
        extra_reader, extra_writer = await asyncio.open_connection(host, int(port))
        extra_writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await _closed_by_peer(extra_reader)
        extra_writer.close()
        for _, w in held:
            w.close()
        await asyncio.sleep(0.3)
        async with aiohttp.ClientSession() as http, http.get(f"{url}/healthz") as resp:
            assert resp.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
