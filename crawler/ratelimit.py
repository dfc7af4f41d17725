"""A local token bucket enforcing this worker's share of the fleet's request budget."""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    """Requests per second with a small burst; ``pause`` holds every caller until a time.

    The coordinator splits the fleet budget into per-worker shares and sends this
    worker's share with every lease and heartbeat response; :meth:`set_rate` applies it.
    A rate of 0 or less means "unlimited".
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self._rate = rate
        self._burst = burst
        self._capacity = self._capacity_at(rate)
        self._tokens = self._capacity
        self._stamp = time.monotonic()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self._queued = 0  # callers in (or waiting for) acquire's queue

    @property
    def rate(self) -> float:
        """Current rate in requests per second (<= 0: unlimited)."""
        return self._rate

    @property
    def capacity(self) -> float:
        """How many tokens may accumulate: the burst, default a quarter second's worth."""
        return self._capacity

    def _capacity_at(self, rate: float) -> float:
        if self._burst is not None:
            return self._burst
        return max(1.0, rate * 0.25)

    def set_rate(self, rate: float) -> None:
        """Apply a new rate share (tokens already held are capped to the new burst)."""
        self._refill(time.monotonic())
        self._rate = rate
        self._capacity = self._capacity_at(rate)
        self._tokens = min(self._tokens, self._capacity)

    def pause(self, seconds: float) -> None:
        """Hold every request for ``seconds`` from now (a 429's ``Retry-After``)."""
        self._paused_until = max(self._paused_until, time.monotonic() + max(0.0, seconds))

    def _refill(self, now: float) -> None:
        if self._rate > 0:
            self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    def try_take(self) -> bool:
        """Take a token now if that needs no wait (no pause, nobody queued); else False.

        Synchronous, so a caller awaits :meth:`acquire` only when it must wait.
        """
        # Called before every request: one clock read serves the pause and the refill.
        now = time.monotonic()
        if now < self._paused_until or self._queued:
            return False
        # Nobody is waiting: take a token without queueing (no await between the check
        # and the take, so this is atomic on the event loop).
        if self._rate <= 0:
            return True
        self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    async def acquire(self) -> None:
        """Wait for the pause to end and for one token."""
        if self.try_take():
            return
        # The lock makes waiters queue in order instead of all waking on every refill;
        # while any caller is queued, try_take lets nobody overtake it.
        self._queued += 1
        try:
            async with self._lock:
                await self._wait_for_token()
        finally:
            self._queued -= 1

    async def _wait_for_token(self) -> None:
        while True:
            now = time.monotonic()
            if now < self._paused_until:
                await asyncio.sleep(self._paused_until - now)
                continue
            if self._rate <= 0:
                return
            self._refill(now)
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return
            await asyncio.sleep((1.0 - self._tokens) / self._rate)
