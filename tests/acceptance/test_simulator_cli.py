"""``soundfleet simulator`` as a user runs it: real subprocesses on loopback."""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.browser import chromium

EXE = str(Path(sys.executable).with_name("soundfleet"))


class Running:
    """A started simulator subprocess and its port."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [EXE, "simulator", "--port", "0", "--time-scale", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        m = re.fullmatch(r"simulator listening on http://127\.0\.0\.1:([0-9]+)\n", line)
        assert m, line
        self.port = int(m.group(1))
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        status, html = self.get("/")
        assert status == 200
        found = re.search(r'"apiClient", "data": \{"id": "([A-Za-z0-9]+)"', html.decode())
        assert found
        self.client_id = found.group(1)

    def get(self, path: str) -> tuple[int, bytes]:
        self.conn.request("GET", path)
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def rss_mb(self) -> float:
        p = psutil.Process(self.proc.pid)
        total = p.memory_info().rss + sum(c.memory_info().rss for c in p.children())
        return float(total) / 2**20

    def stop(self) -> None:
        self.conn.close()
        self.proc.terminate()
        self.proc.wait(15)


@pytest.fixture
def sweep_server() -> Iterator[Running]:
    r = Running("--seed", "2", "--users", "10000000", "--core", "2000")
    yield r
    r.stop()


def test_memory_stays_flat_over_a_10m_id_sweep(sweep_server: Running) -> None:
    r = sweep_server
    cid = r.client_id
    samples = []
    statuses: dict[int, int] = {}
    # 8 rounds of 600 ids, each round spread over the whole 10M id space at a new phase
    for rnd in range(8):
        for k in range(600):
            uid = 1 + (k * 16_661 + rnd * 2_083) % 10_000_000 + rnd
            status, body = r.get(f"/api/users/{uid}?client_id={cid}")
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                assert json.loads(body)["id"] == uid
        samples.append(r.rss_mb())
    assert set(statuses) == {200, 404}
    assert 0.03 < statuses[404] / sum(statuses.values()) < 0.1
    # after the first round (allocator warm-up) the RSS must not keep growing
    assert max(samples[1:]) - samples[1] < 8.0, samples


def test_several_processes_share_one_port() -> None:
    r = Running("--seed", "2", "--users", "5000", "--processes", "2")
    try:
        children = psutil.Process(r.proc.pid).children()
        assert len(children) == 1  # the parent serves too
        for uid in range(1, 60):
            conn = http.client.HTTPConnection("127.0.0.1", r.port, timeout=30)
            conn.request("GET", f"/api/users/{uid}?client_id={r.client_id}")
            assert conn.getresponse().status in (200, 404)
            conn.close()
    finally:
        r.stop()
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)


def test_a_dead_server_process_stops_the_whole_service() -> None:
    """Half a service must not serve on: the pod is restarted whole instead."""
    r = Running("--seed", "2", "--users", "2000", "--processes", "2")
    try:
        [child] = psutil.Process(r.proc.pid).children()
        child.kill()
        assert r.proc.wait(timeout=30) == 1
    finally:
        r.stop()


def test_truth_command_writes_the_ground_truth(tmp_path: Path) -> None:
    out = tmp_path / "truth"
    done = subprocess.run(
        [EXE, "simulator", "truth", "--seed", "2", "--users", "3000", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 2
    assert summary["users"] == 3000
    assert (out / "follows.parquet").stat().st_size > 0


def test_bad_arguments_exit_with_one_line() -> None:
    done = subprocess.run(
        [EXE, "simulator", "--users", "0", "--port", "0"], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0
    assert "--users" in done.stderr


@pytest.mark.browser
async def test_the_homepage_javascript_calls_the_api_with_the_client_id() -> None:
    executable = chromium()
    from playwright.async_api import async_playwright

    r = Running("--seed", "2", "--users", "2000")
    try:
        seen: list[str] = []
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=executable, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            try:
                page = await browser.new_page()
                page.on("request", lambda req: seen.append(req.url))
                async with page.expect_request(lambda req: "/api/" in req.url, timeout=30_000):
                    await page.goto(f"http://127.0.0.1:{r.port}/")
            finally:
                await browser.close()
        api_calls = [u for u in seen if u.startswith(f"http://127.0.0.1:{r.port}/api/")]
        assert api_calls
        assert f"client_id={r.client_id}" in api_calls[0]
    finally:
        r.stop()
