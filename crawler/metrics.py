"""Prometheus metrics of one worker process, and its liveness (``--metrics-port``).

The endpoint runs in a thread of its own, so ``/metrics`` answers even when the event
loop is stuck; ``/healthz`` is what tells: it fails once the loop has not ticked for
``stall_s`` seconds, which is what a Kubernetes liveness probe must see.
"""

from __future__ import annotations

import asyncio
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class RequestStats(Collector):
    """Responses by status and their latency, counted in plain ints on the event loop.

    Every platform request is recorded here, thousands a second: a prometheus_client
    ``Counter.inc`` plus ``Histogram.observe`` take a lock each and cost about as much
    as validating the body. This collector only bumps list/dict slots (the event loop
    is the one writer) and builds the metric families when Prometheus scrapes.
    """

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self.by_status: dict[str, int] = {}
        self._counts = [0] * (len(buckets) + 1)  # the last slot is +Inf
        self._sum = 0.0

    def record(self, status: str, seconds: float) -> None:
        """Count one response (``status``: the HTTP status, or ``error``) and its latency."""
        by_status = self.by_status
        by_status[status] = by_status.get(status, 0) + 1
        self._counts[bisect_left(self.buckets, seconds)] += 1
        self._sum += seconds

    def collect(self) -> Iterator[Metric]:
        """The two metric families, as of now (called from the metrics server thread)."""
        requests = CounterMetricFamily(
            "soundfleet_worker_requests", "Platform API responses by status", labels=["status"]
        )
        for status, count in sorted(self.by_status.copy().items()):
            requests.add_metric([status], count)
        yield requests
        counts = list(self._counts)
        cumulative, running = [], 0
        for bound, count in zip((*map(str, self.buckets), "+Inf"), counts, strict=True):
            running += count
            cumulative.append((bound, running))
        latency = HistogramMetricFamily(
            "soundfleet_worker_request_seconds", "Platform API request latency"
        )
        latency.add_metric([], cumulative, sum_value=self._sum)
        yield latency


class WorkerMetrics:
    """The worker's counters, on a registry of its own (tests build several workers)."""

    def __init__(self) -> None:
        self.loop_tick: float | None = None  # monotonic time of the event loop's last tick
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = RequestStats()
        r.register(self.requests)
        self.pages = Counter(
            "soundfleet_worker_pages", "API pages (and user objects) fetched", ["kind"], registry=r
        )
        self.rows = Counter(
            "soundfleet_worker_rows_landed", "Rows written to the database", ["table"], registry=r
        )
        self.retries = Counter(
            "soundfleet_worker_retries", "Request retries by reason", ["reason"], registry=r
        )
        self.blocks = Counter(
            "soundfleet_worker_blocks", "Bot-protection blocks met (one per pause)", registry=r
        )
        self.cursors = Counter(
            "soundfleet_worker_cursors",
            "next_href cursors read, by format and whether a time came from it",
            ["format", "timed"],
            registry=r,
        )
        self.items_skipped = Counter(
            "soundfleet_worker_items_skipped", "List items no model fits, skipped", registry=r
        )
        self.discoveries = Counter(
            "soundfleet_worker_discoveries", "client_id discoveries", ["source", "ok"], registry=r
        )
        self.lease_losses = Counter(
            "soundfleet_worker_lease_losses", "Units whose lease was re-issued", registry=r
        )
        self.fenced_rows = Counter(
            "soundfleet_worker_fenced_rows",
            "Rows refused at landing because their lease had run out or moved on",
            registry=r,
        )
        self.units = Counter(
            "soundfleet_worker_units", "Units finished by outcome", ["kind", "outcome"], registry=r
        )
        self.units_active = Gauge(
            "soundfleet_worker_units_active", "Units being worked on", registry=r
        )
        self.rate_share = Gauge(
            "soundfleet_worker_rate_share_rps",
            "This worker's share of the fleet budget",
            registry=r,
        )

    async def tick_forever(self, every_s: float = 1.0) -> None:
        """Record that the event loop runs, every ``every_s`` (a task on that loop)."""
        while True:
            self.loop_tick = time.monotonic()
            await asyncio.sleep(every_s)

    def loop_stalled_s(self) -> float | None:
        """Seconds since the loop last ticked (None before its first tick)."""
        tick = self.loop_tick
        return None if tick is None else time.monotonic() - tick

    def serve(self, port: int, host: str = "127.0.0.1", stall_s: float = 30.0) -> int:
        """Serve ``/metrics`` and ``/healthz`` on ``host``:``port`` (0: any free port).

        Returns the port. ``/healthz`` answers 503 once the loop has not ticked for
        ``stall_s`` seconds (before the first tick the process is starting: 200).
        """
        metrics_app = make_wsgi_app(self.registry)

        def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            if environ.get("PATH_INFO") != "/healthz":
                return metrics_app(environ, start_response)  # type: ignore[no-any-return]
            stalled = self.loop_stalled_s()
            if stalled is not None and stalled > stall_s:
                body = f"event loop stalled for {stalled:.0f} s\n".encode()
                start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            else:
                body = b"ok\n"
                start_response("200 OK", [("Content-Type", "text/plain")])
            return [body]

        server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
        threading.Thread(target=server.serve_forever, daemon=True, name="metrics").start()
        return int(server.server_port)


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape or probe on stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        pass
