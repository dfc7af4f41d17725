"""Coarse per-request deadlines: one periodic check instead of a timer per request.

aiohttp's ``total`` timeout schedules and cancels an event-loop timer, and enters a
timer context, for every request: about 4% of a sweep worker's CPU, thousands of
times a second, for timeouts that almost never fire. :class:`Deadlines` keeps each
request's deadline in a dict instead, and a single callback, scheduled only while
requests are in flight, cancels the tasks whose requests are overdue, the way
``asyncio.timeout`` does: the request that timed out sees the cancellation, turns it
into a timeout once :meth:`Deadlines.timed_out` says it was ours, and any other
cancellation of the task (a drain, a shutdown) still goes through.

A deadline fires up to one check period late (a quarter of the timeout, at most one
second).

The deadlines of one instance belong to one event loop (the one of its first request,
as an aiohttp session's connections do): on Python 3.11 every ``get_running_loop()``
and argument-less ``current_task()`` is a ``getpid`` system call, and a sweep worker
made two of them per request.
"""

from __future__ import annotations

import asyncio


class Deadlines:
    """Deadlines of the requests in flight, one per task, checked periodically."""

    __slots__ = ("_check", "_expired", "_inflight", "_loop", "_period", "timeout_s")

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._period = min(1.0, timeout_s / 4)
        self._inflight: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._check: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, task: asyncio.Task[object] | None = None) -> asyncio.Task[object]:
        """Give a request its deadline; returns its task (for the other methods).

        ``task``: the task making the request, when the caller knows it (a lane does);
        else the current task.
        """
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        if task is None:
            task = asyncio.current_task(loop)
            if task is None:  # pragma: no cover - requests always run in a task
                raise RuntimeError("a request outside a task has no deadline")
        self._inflight[task] = loop.time() + self.timeout_s
        if self._check is None:
            self._check = loop.call_later(self._period, self._sweep)
        return task

    def finish(self, task: asyncio.Task[object]) -> None:
        """The request of ``task`` is over (whatever its outcome)."""
        del self._inflight[task]
        if task in self._expired:
            # Cancelled by us, but the request ended without the cancellation reaching
            # :meth:`timed_out` (the client turned it into an error of its own): withdraw it.
            self._expired.discard(task)
            task.uncancel()

    def timed_out(self, task: asyncio.Task[object]) -> bool:
        """Whether a cancellation ``task`` just received was this deadline's.

        True only if the deadline cancelled the task and nothing else did: the
        cancellation is then withdrawn, and the caller raises a timeout instead.
        """
        if task not in self._expired:
            return False
        self._expired.discard(task)
        return task.uncancel() == 0

    def _sweep(self) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        expired = self._expired
        for task, deadline in self._inflight.items():
            if deadline <= now and task not in expired:
                expired.add(task)
                task.cancel()
        # Checks run only while something is in flight: an idle worker, and a loop
        # being closed, hold no timer of ours.
        self._check = loop.call_later(self._period, self._sweep) if self._inflight else None
