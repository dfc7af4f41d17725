"""The real platform's bot protection, as the simulator's ``--profile real`` serves it.

SoundCloud's api-v2 sits behind DataDome (``shared/fixtures/recorded-exchanges``: every
``/users/{id}/tracks`` response carries ``x-datadome: protected`` and sets a ``datadome``
cookie). What a client meets there, and what this module reproduces per client IP:

* no browser User-Agent (``Mozilla/…``): a 403 at once;
* no ``datadome`` cookie (or one this server did not issue to that IP): allowed for
  ``cookieless_allowance`` requests per ``cookieless_window_s`` from one IP (new clients
  behind it pick the cookie up from their first answer), then 403: a client that never
  keeps the cookie, or fans out before its first answer, runs through that at once;
* a burst above ``burst`` requests per ``window_s``: the IP is blocked for ``block_s``
  (every request 403s), then let through again;
* the 403 body is DataDome's JSON (``{"url": "https://geo.captcha-delivery.com/…"}``)
  or its HTML interstitial, never api-v2's error shape.

State is per server process (each of ``--processes`` keeps its own); the counters of
what was served go to shared memory for ``/_admin/stats``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from aiohttp import web

from simulator import hashing, render

COOKIE = "datadome"
_S_BOT = 9_100


@dataclass(frozen=True)
class BotConfig:
    """How strict the simulated bot protection is."""

    cookieless_allowance: int = 50
    cookieless_window_s: float = 60.0
    burst: float = 0.0  # requests per window per IP (0: no burst blocks)
    window_s: float = 1.0
    block_s: float = 5.0


def _captcha_json(seed: int, n: int) -> bytes:
    cid = render.token(seed, _S_BOT, n, 24)
    url = (
        "https://geo.captcha-delivery.com/captcha/?initialCid=AHrlqAAAAAMA"
        f"{cid}&hash=BEB8D7B3&cid={cid}&t=fe&referer=https%3A%2F%2Fapi-v2.soundcloud.com"
    )
    return json.dumps({"url": url}).encode()


_CAPTCHA_HTML = (
    "<html><head><title>soundcloud.com</title><style>#cmsg{animation: A 1.5s;}</style>"
    '</head><body style="margin:0"><p id="cmsg">Please enable JS and disable any ad '
    "blocker</p><script data-cfasync=\"false\">var dd={'rt':'c','cid':'AHrlqAAAAAMA',"
    "'hsh':'BEB8D7B3','t':'fe','s':46180,'host':'geo.captcha-delivery.com'}</script>"
    '<script data-cfasync="false" src="https://ct.captcha-delivery.com/c.js"></script>'
    "</body></html>"
)


class BotProtection:
    """Per-IP decisions of the simulated DataDome in front of the API."""

    def __init__(self, seed: int, cfg: BotConfig) -> None:
        self.seed = seed
        self.cfg = cfg
        self._cookieless: dict[str, tuple[float, float]] = {}
        self._tokens: dict[str, tuple[float, float]] = {}
        self._blocked_until: dict[str, float] = {}
        self._n = 0

    def cookie_for(self, ip: str) -> str:
        """The cookie this server issues to ``ip`` (deterministic: any process agrees)."""
        return render.token(self.seed, _S_BOT + 1, sum(map(ord, ip)) * 7919 + len(ip), 40)

    def refusal(self, request: web.Request) -> tuple[str, web.Response] | None:
        """A 403 and its cause when ``request`` is refused, else None (let it through)."""
        ip = request.remote or "?"
        now = time.monotonic()
        if self._blocked_until.get(ip, 0.0) > now:
            return "ip", self._forbidden()
        agent = request.headers.get("User-Agent", "")
        if not agent.startswith("Mozilla/"):
            return "no_browser", self._forbidden()
        if request.cookies.get(COOKIE) != self.cookie_for(ip) and not self._take_cookieless(
            ip, now
        ):
            return "no_cookie", self._forbidden()
        if self.cfg.burst > 0 and not self._take(ip, now):
            self._blocked_until[ip] = now + self.cfg.block_s
            return "burst", self._forbidden()
        return None

    def _take_cookieless(self, ip: str, now: float) -> bool:
        """One cookieless request of ``ip``'s allowance (a bucket refilled over the window)."""
        allowance = float(self.cfg.cookieless_allowance)
        tokens, last = self._cookieless.get(ip, (allowance, now))
        tokens = min(allowance, tokens + (now - last) * allowance / self.cfg.cookieless_window_s)
        if tokens < 1.0:
            self._cookieless[ip] = (tokens, now)
            return False
        self._cookieless[ip] = (tokens - 1.0, now)
        return True

    def _take(self, ip: str, now: float) -> bool:
        rate = self.cfg.burst / self.cfg.window_s
        tokens, last = self._tokens.get(ip, (self.cfg.burst, now))
        tokens = min(self.cfg.burst, tokens + (now - last) * rate)
        if tokens < 1.0:
            self._tokens[ip] = (tokens, now)
            return False
        self._tokens[ip] = (tokens - 1.0, now)
        return True

    def _forbidden(self) -> web.Response:
        self._n += 1
        headers = {"x-datadome": "protected", "x-dd-b": "1"}
        if hashing.uniform(self.seed, _S_BOT + 2, self._n) < 0.5:
            return web.Response(
                status=403,
                body=_captcha_json(self.seed, self._n),
                content_type="application/json",
                headers=headers,
            )
        return web.Response(
            status=403, text=_CAPTCHA_HTML, content_type="text/html", headers=headers
        )

    def hand_cookie(self, request: web.Request, response: web.StreamResponse) -> None:
        """Set the cookie on ``response`` when the request did not carry ours."""
        ip = request.remote or "?"
        value = self.cookie_for(ip)
        if request.cookies.get(COOKIE) != value:
            response.set_cookie(COOKIE, value, max_age=31_536_000, path="/", samesite="Lax")
