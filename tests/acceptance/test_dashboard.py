"""The operator dashboard in real Chromium: sign in, then what it shows equals the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from runtime import database, processes
from soundfleet.cli_db import migrate_target
from soundfleet.fleet import create_key, drop_database, scratch_database
from tests.browser import chromium

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
async def coordinator(admin_dsn: str, tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    dsn = await asyncio.to_thread(scratch_database, admin_dsn, "soundfleet_dashboard")
    await asyncio.to_thread(migrate_target, database.DatabaseTarget(dsn, embedded=False))
    service = await asyncio.to_thread(
        processes.start,
        "coordinator",
        processes.soundfleet_argv("coordinator", "--port", "0"),
        log_dir=tmp_path,
        env=database.env_with_database(dsn),
    )
    try:
        keys = {
            role: await asyncio.to_thread(create_key, dsn, role, f"dash-{role}")
            for role in ("admin", "researcher", "worker")
        }
        yield {"url": service.url, "dsn": dsn, **keys}
    finally:
        await asyncio.to_thread(processes.stop, service, grace_s=10)
        await asyncio.to_thread(drop_database, admin_dsn, dsn)


async def _api(
    session: aiohttp.ClientSession, key: str, method: str, url: str, body: Any = None
) -> Any:
    async with session.request(
        method, url, json=body, headers={"Authorization": f"Bearer {key}"}
    ) as resp:
        assert resp.status < 300, await resp.text()
        return await resp.json()


async def _make_activity(c: dict[str, Any]) -> None:
    """Two jobs, a live worker, one unit that died with an error, a bot-protection block."""
    base = c["url"]
    async with aiohttp.ClientSession() as s:
        await _api(
            s,
            c["researcher"],
            "POST",
            f"{base}/v1/jobs",
            {"kind": "user_sweep", "spec": {"id_from": 1, "id_to": 3001, "chunk": 1000}},
        )
        await _api(
            s,
            c["researcher"],
            "POST",
            f"{base}/v1/jobs",
            {"kind": "track_timelines", "spec": {"track_ids": [7]}, "max_attempts": 1},
        )
        gone = await _api(
            s,
            c["researcher"],
            "POST",
            f"{base}/v1/jobs",
            {"kind": "user_tracks", "spec": {"user_ids": [3, 4]}},
        )
        await _api(s, c["researcher"], "POST", f"{base}/v1/jobs/{gone['id']}/cancel", None)
        leased = await _api(
            s,
            c["worker"],
            "POST",
            f"{base}/v1/leases",
            {"worker_id": "dash-worker-1", "kinds": ["track_list"], "max_units": 1},
        )
        [unit] = leased["units"]
        await _api(
            s,
            c["worker"],
            "POST",
            f"{base}/v1/leases/{unit['unit_id']}/fail",
            {
                "worker_id": "dash-worker-1",
                "token": unit["token"],
                "error": "HTTP 503 from the platform, three times",
                "retryable": True,
            },
        )
        await _api(
            s,
            c["worker"],
            "POST",
            f"{base}/v1/fleet/block",
            {"worker_id": "dash-worker-1", "reason": "HTTP 403 from DataDome bot protection"},
        )


@pytest.mark.browser
async def test_dashboard_in_chromium(coordinator: dict[str, Any]) -> None:
    executable = chromium()
    from playwright.async_api import async_playwright

    await _make_activity(coordinator)
    async with database.connection(coordinator["dsn"]) as conn:
        jobs = {r["id"]: r["state"] for r in await conn.fetch("SELECT id, state FROM jobs")}
        dead = await conn.fetch("SELECT id, last_error FROM work_units WHERE state = 'dead'")
        units = {
            r["job_id"]: r["n"]
            for r in await conn.fetch(
                "SELECT job_id, count(*) AS n FROM work_units GROUP BY job_id"
            )
        }
    assert len(dead) == 1

    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            await page.goto(coordinator["url"] + "/")
            await page.fill("#key", coordinator["researcher"])
            await page.click("button[type=submit]")
            assert "not an admin key" in await page.inner_text("body")

            await page.fill("#key", coordinator["admin"])
            await page.click("button[type=submit]")
            await page.wait_for_selector("#jobs")
            rows = await page.query_selector_all("#jobs tr[data-job]")
            shown = {}
            for row in rows:
                cells = [await c.inner_text() for c in await row.query_selector_all("td")]
                shown[int(cells[0])] = (cells[2], cells[4], cells[5], cells[6])
            assert {j: s for j, (s, *_) in shown.items()} == jobs
            for job_id, (state, progress, submitted, finished) in shown.items():
                assert progress.split()[0].endswith(f"/{units[job_id]}")
                assert submitted.startswith("20") and len(submitted) == 19  # a UTC time
                if state == "cancelled":
                    # what ran, then what was cancelled: never a full bar
                    assert progress.split() == [
                        f"0/{units[job_id]}",
                        str(units[job_id]),
                        "cancelled",
                    ]
                    assert finished.startswith("20")
            dead_text = await page.inner_text("#dead")
            assert str(dead[0]["id"]) in dead_text
            assert "HTTP 503 from the platform" in dead_text
            assert await page.inner_text("#workers-alive") == "1"
            blocked = await page.inner_text("#blocked")
            assert "BLOCKED" in blocked and "DataDome" in blocked and "next try" in blocked
            await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        finally:
            await browser.close()
