"""``soundfleet smoke``: its steps on the simulator's real profile, its cap, its refusal.

The command itself is only ever run by an operator with ``--live``; here the same code
runs against a loopback simulator.
"""

from __future__ import annotations

import numpy as np
import pytest

from crawler.smoke import SmokeConfig, run_smoke, summary
from crawler.transport import AiohttpTransport, BrowserProfile, create_session
from soundfleet.cli import main
from tests.integration.test_crawler_handlers import _real_profile, start_sim


async def _smoke(max_requests: int) -> dict[str, object]:
    s = await start_sim(**_real_profile())
    w = s.world
    artist = int(np.argmax(np.bincount(w.tracks.user_id[w.tracks.public])))
    profile = BrowserProfile()
    transport = AiohttpTransport(create_session(1, 10, profile))
    cfg = SmokeConfig(
        api_base=s.api_base,
        web_base=s.web_base,
        user=str(artist),
        max_requests=max_requests,
        interval_s=0.0,
        page_limit=2,  # every list of an artist has a next page, so its cursor is read
    )
    try:
        return summary(await run_smoke(cfg, transport, profile))
    finally:
        await transport.close()
        await s.close()


async def test_smoke_walks_every_step_and_reads_the_cursor_forms() -> None:
    result = await _smoke(20)
    steps = {s["name"]: s for s in result["steps"]}  # type: ignore[union-attr, index]
    assert "client_id found in hydration" in steps["homepage"]["outcome"]
    assert steps["homepage"]["cookies_set"] == ["datadome"]
    for name in ("user", "followers", "followings", "tracks", "likes", "web-profiles (URN)"):
        assert steps[name]["status"] == 200, steps[name]
    assert steps["followers"]["cursor_format"] == "epoch_ms"  # the real profile's form
    assert steps["tracks"]["cursor_format"] == "iso"
    assert steps["track likers"]["cursor_format"] == "epoch_us"
    assert steps["web-profiles (numeric)"]["status"] == 404  # URN only, as on the real host
    assert steps["track reposters"]["status"] == 200
    assert "client_id=" not in " ".join(s["url"] for s in steps.values())
    assert result["requests"] == len(steps) and not result["blocked"]
    assert "epoch_ms" in result["cursor_formats"]  # type: ignore[operator]


async def test_smoke_stops_at_its_request_cap() -> None:
    result = await _smoke(3)
    assert result["requests"] == 3
    assert result["steps"][-1]["name"] == "stopped"  # type: ignore[index]


def test_smoke_refuses_without_live(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["smoke"]) == 2
    assert "--live" in capsys.readouterr().err
    assert main(["smoke", "--live", "--max-requests", "0"]) == 1
