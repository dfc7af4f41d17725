"""The simulator's web pages (homepage, script bundles) and its test-only admin routes."""

from __future__ import annotations

import json
from collections.abc import Callable

import structlog
from aiohttp import web

from simulator import answers, render
from simulator.botprotect import BotProtection
from simulator.params import S_CLIENT
from simulator.state import ClientIds, Clock, Shared
from simulator.world import World

log = structlog.get_logger("simulator")


class WebPages:
    """What a browser gets at ``/`` and ``/assets/``: where discovery finds client_ids."""

    def __init__(
        self,
        world: World,
        client_ids: ClientIds,
        shared: Shared,
        bots: BotProtection | None,
        api_base: Callable[[web.Request], str],
        first_live: int,
    ) -> None:
        self.world = world
        self.client_ids = client_ids
        self.shared = shared
        self.bots = bots
        self.api_base = api_base
        self.first_live = first_live

    def _bundle_names(self, client_id: str) -> tuple[str, str]:
        tag = render.token(self.world.seed, S_CLIENT + 50, sum(map(ord, client_id)), 8)
        return f"0-{tag[:4]}{tag[4:]}.js", f"49-{tag[::-1]}.js"

    async def homepage(self, request: web.Request) -> web.Response:
        """The homepage: the client_id in its hydration, the script bundles named."""
        self.shared.homepage_visited()
        client_id = self.client_ids.current()
        hydration = [
            {"hydratable": "anonymousId", "data": "285105-278878-684219-149994"},
            {"hydratable": "features", "data": {"features": []}},
            {"hydratable": "geoip", "data": {"country_code": "DE", "country_name": "Germany"}},
            {"hydratable": "apiClient", "data": {"id": client_id, "isExpiring": False}},
        ]
        config = {"api_base": self.api_base(request), "first_user": self.first_live}
        first, last = self._bundle_names(client_id)
        html = (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            "<title>Stream and listen to music online for free with SoundCloud</title>"
            f"<script>window.__sf_config = {json.dumps(config)};</script></head>"
            '<body><div id="app"></div>'
            f"<script>window.__sc_hydration = {json.dumps(hydration)};</script>\n"
            f'<script crossorigin src="/assets/{first}"></script>\n'
            f'<script crossorigin src="/assets/{last}"></script>\n'
            "</body></html>"
        )
        resp = web.Response(text=html, content_type="text/html")
        if self.bots is not None:
            self.bots.hand_cookie(request, resp)  # DataDome's tag on the page sets it too
        return resp

    async def asset(self, request: web.Request) -> web.Response:
        """A script bundle: the last one holds the client_id and calls the API."""
        client_id = self.client_ids.current()
        first, last = self._bundle_names(client_id)
        name = request.match_info["name"]
        if name == first:
            body = (
                '(self.webpackChunk=self.webpackChunk||[]).push([[0],{1:function(e,t,n){"use '
                'strict";e.exports={version:"1.0.0",locale:"en"}}}]);'
                # A minimal webpack runtime: later chunks' modules run when pushed, so the
                # last bundle's code really calls the API in a browser (browser discovery).
                "self.webpackChunk.push=function(c){var m=c[1];"
                "for(var k in m){m[k]({exports:{}},{},null);}return 0;};"
            )
        elif name == last:
            body = (
                "(self.webpackChunk=self.webpackChunk||[]).push([[49],{2:function(e,t,n){"
                f'var c={{env:"production",client_id:"{client_id}",'
                'stripe_client_id:"pk_live_51SimulatorStripeKey",'
                'google_client_id:"1234567890-sim.apps.googleusercontent.com",'
                'widget_client_id:"wIdGeTcLiEnTiD00000000000000000"};'
                "var b=(window.__sf_config||{}).api_base;"
                "var u=(window.__sf_config||{}).first_user||1;"
                'if(b){fetch(b+"/users/"+u+"?client_id="+c.client_id).catch(function(){});}'
                "}}]);"
            )
        else:
            return web.Response(status=404, text="not found")
        return web.Response(text=body, content_type="application/javascript")


class Admin:
    """Test-only routes under ``/_admin/`` (mounted only with an admin token)."""

    def __init__(self, token: str, clock: Clock, client_ids: ClientIds, shared: Shared) -> None:
        self.token = token
        self.clock = clock
        self.client_ids = client_ids
        self.shared = shared

    def _admin_ok(self, request: web.Request) -> bool:
        token = self.token
        return bool(token) and request.headers.get("Authorization") == f"Bearer {token}"

    async def admin_clock(self, request: web.Request) -> web.Response:
        """``GET`` the simulated time, ``POST`` ``{advance_s}`` or ``{now}`` to move it."""
        if not self._admin_ok(request):
            return answers.error(401, "admin token required")
        if request.method == "POST":
            try:
                body = await request.json()
                if "advance_s" in body:
                    self.clock.set(self.clock.now_us() + int(float(body["advance_s"]) * 1e6))
                elif "now" in body:
                    self.clock.set(answers.parse_iso_us(str(body["now"])))
                else:
                    raise answers.BadRequest("expected advance_s or now")
            except (ValueError, TypeError, answers.BadRequest) as exc:
                return answers.error(400, f"invalid clock body: {exc}")
            log.info("clock_set", now=render.iso_ms(self.clock.now_us()))
        now = self.clock.now_us()
        return web.json_response({"now_us": now, "now": render.iso_ms(now)})

    async def admin_stats(self, request: web.Request) -> web.Response:
        """What was served, counted across processes."""
        if not self._admin_ok(request):
            return answers.error(401, "admin token required")
        stats = {k: v.value for k, v in self.shared.counts.items()}
        stats["homepage_min_gap_ms"] = self.shared.homepage_min_gap_ms.value
        return web.json_response(stats)

    async def admin_rotate(self, request: web.Request) -> web.Response:
        """Rotate the client_id now (the old one stays valid for its grace period)."""
        if not self._admin_ok(request):
            return answers.error(401, "admin token required")
        self.client_ids.rotate()
        log.info("client_id_rotated", client_id=self.client_ids.current()[:6] + "…")
        return web.json_response({"client_id": self.client_ids.current()})
