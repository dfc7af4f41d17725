"""The simulated platform's state beside the world: configuration, the clock,
client_ids, the per-client rate limiter and the counters every process shares.
"""

from __future__ import annotations

import math
import multiprocessing
import multiprocessing.sharedctypes
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from simulator import render
from simulator.botprotect import BotConfig
from simulator.params import S_CLIENT

log = structlog.get_logger("simulator.server")


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``soundfleet simulator`` takes besides the world itself."""

    host: str = "127.0.0.1"
    port: int = 8701
    api_prefix: str = "/api"
    time_scale: float = 1.0
    rotate_client_id_s: float = 0.0
    client_id_grace_s: float = 10.0
    fault_5xx: float = 0.0
    fault_malformed: float = 0.0
    fault_slow: float = 0.0
    fault_slow_ms: int = 0
    # A hostile platform, per track: its reposters/likers answer a body of this many MB
    # (streamed, no Content-Length), or a page whose next_href is the page itself.
    hostile_body_tracks: tuple[int, ...] = ()
    hostile_body_mb: int = 300
    hostile_loop_tracks: tuple[int, ...] = ()
    rate_limit: float = 0.0
    # The real platform's failure modes (``--profile real``): DataDome in front of the
    # API, text 429s without Retry-After, epoch-millisecond cursors on follow lists,
    # web-profiles served only by URN.
    bot_protection: BotConfig | None = None
    fault_429_text: float = 0.0
    follow_cursor: str = "us"
    urn_web_profiles_only: bool = False
    admin_token: str | None = None
    processes: int = 1
    clock_start_us: int | None = None  # default: the world's start
    # Append one line per request answered here (see simulator.ledger).
    ledger: Path | None = None


STAT_NAMES = (
    "homepage",
    "api_requests",
    "blocked_no_browser",
    "blocked_no_cookie",
    "blocked_burst",
    "blocked_ip",
    "text_429",
    "retry_after_429",
    "unauthorized",
)


class Shared:
    """State every worker process sees: admin clock offset and forced client_id rotations."""

    def __init__(self) -> None:
        self.t0 = time.time()
        self.offset_us = multiprocessing.sharedctypes.RawValue("d", 0.0)
        self.bumps = multiprocessing.sharedctypes.RawValue("q", 0)
        self.bump_wall = multiprocessing.sharedctypes.RawValue("d", 0.0)
        # What was served, for /_admin/stats (approximate across processes: no lock).
        self.counts = {name: multiprocessing.sharedctypes.RawValue("q", 0) for name in STAT_NAMES}
        # Wall time of the last homepage visit and the shortest gap between two (ms; -1:
        # fewer than two): how often the fleet rediscovered, fleet-wide.
        self.homepage_at = multiprocessing.sharedctypes.RawValue("d", 0.0)
        self.homepage_min_gap_ms = multiprocessing.sharedctypes.RawValue("q", -1)

    def bump(self, name: str) -> None:
        """Count one ``name`` event."""
        self.counts[name].value += 1

    def homepage_visited(self) -> None:
        """Count a homepage visit and keep the shortest gap between two."""
        now = time.time()
        last = self.homepage_at.value
        if last:
            gap = int((now - last) * 1000)
            if self.homepage_min_gap_ms.value < 0 or gap < self.homepage_min_gap_ms.value:
                self.homepage_min_gap_ms.value = gap
        self.homepage_at.value = now
        self.bump("homepage")


class Clock:
    """Simulated time: ``start + offset + (wall - t0) * scale`` in epoch µs."""

    def __init__(self, start_us: int, scale: float, shared: Shared) -> None:
        self.start_us = start_us
        self.scale = scale
        self.shared = shared

    def now_us(self) -> int:
        """The current simulated time."""
        elapsed = (time.time() - self.shared.t0) * self.scale * 1e6
        return self.start_us + int(self.shared.offset_us.value) + int(elapsed)

    def set(self, target_us: int) -> None:
        """Jump to ``target_us`` (forward or back; tests only)."""
        self.shared.offset_us.value += float(target_us - self.now_us())


class ClientIds:
    """The current client_id (rotating every ``period_s`` and on demand) and its grace."""

    def __init__(self, seed: int, period_s: float, grace_s: float, shared: Shared) -> None:
        self.seed = seed
        self.period_s = period_s
        self.grace_s = grace_s
        self.shared = shared
        self._cache: dict[int, str] = {}

    def _epoch(self) -> tuple[int, float]:
        now = time.time()
        epoch = int(self.shared.bumps.value)
        began = self.shared.bump_wall.value
        if self.period_s > 0:
            k = int((now - self.shared.t0) // self.period_s)
            epoch += k
            began = max(began, self.shared.t0 + k * self.period_s)
        return epoch, began

    def value(self, epoch: int) -> str:
        """The client_id of rotation ``epoch``."""
        if epoch not in self._cache:
            self._cache[epoch] = render.token(self.seed, S_CLIENT, epoch, 32)
        return self._cache[epoch]

    def current(self) -> str:
        """The client_id the homepage hands out now."""
        return self.value(self._epoch()[0])

    def valid(self, candidate: str) -> bool:
        """Current id, or the previous one within the grace period after a rotation."""
        epoch, began = self._epoch()
        if candidate == self.value(epoch):
            return True
        return (
            epoch > 0 and candidate == self.value(epoch - 1) and time.time() - began < self.grace_s
        )

    def rotate(self) -> None:
        """Force a rotation now (admin route)."""
        self.shared.bump_wall.value = time.time()
        self.shared.bumps.value += 1


class RateLimiter:
    """Token bucket of ``rate`` requests/s (burst ``max(1, rate)``) per client_id."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = max(1.0, rate)
        self._buckets: dict[str, tuple[float, float]] = {}

    def retry_after(self, client_id: str) -> int:
        """0 if the request may go ahead, else the seconds to wait."""
        if self.rate <= 0:
            return 0
        now = time.monotonic()
        tokens, last = self._buckets.get(client_id, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[client_id] = (tokens - 1.0, now)
            return 0
        self._buckets[client_id] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self.rate))
