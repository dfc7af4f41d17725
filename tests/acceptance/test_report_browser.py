"""The report as a person opens it: in real Chromium, every image loads, no panel blank."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from soundfleet.report import PLOTS, write_report
from tests.browser import chromium
from tests.integration.test_report import fill

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# Per image: loaded, and how many distinct colours a 64x64 sample holds (a blank or
# single-colour image has one or two).
_IMAGES_JS = """
() => Array.from(document.images).map(img => {
  const c = document.createElement('canvas'); c.width = 64; c.height = 64;
  const g = c.getContext('2d'); g.drawImage(img, 0, 0, 64, 64);
  const d = g.getImageData(0, 0, 64, 64).data; const seen = new Set();
  for (let i = 0; i < d.length; i += 4) seen.add(d[i] + ',' + d[i+1] + ',' + d[i+2]);
  return {src: img.getAttribute('src'), ok: img.complete && img.naturalWidth > 0,
          colours: seen.size};
})
"""


@pytest.mark.browser
async def test_report_in_chromium(db: asyncpg.Connection, db_dsn: str, tmp_path: Path) -> None:
    executable = chromium()
    from playwright.async_api import async_playwright

    await fill(db)
    await asyncio.to_thread(write_report, db_dsn, tmp_path, {"world": "seed 7"})
    # served over loopback HTTP as a person's static host would (file:// pages may not
    # read their own images' pixels)
    app = web.Application()
    app.router.add_static("/", tmp_path)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1200, "height": 900})
            await page.goto(str(server.make_url("/index.html")))
            header = await page.inner_text("#header")
            assert "generated" in header and "seed 7" in header and "database" in header
            assert "spam scores" in header  # the runs the figures come from
            assert "follows" in await page.inner_text("#rows")
            images = await page.evaluate(_IMAGES_JS)
            assert len(images) == len(PLOTS)  # every panel drawn from data
            for image in images:
                assert image["ok"] and image["colours"] > 8, image
            assert await page.query_selector_all(".missing") == []
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            await browser.close()
            await server.close()
