"""Prometheus metrics of one worker process (served with ``--metrics-port``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class WorkerMetrics:
    """The worker's counters, on a registry of its own (tests build several workers)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "soundfleet_worker_requests", "Platform API responses by status", ["status"], registry=r
        )
        self.pages = Counter(
            "soundfleet_worker_pages", "API pages (and user objects) fetched", ["kind"], registry=r
        )
        self.rows = Counter(
            "soundfleet_worker_rows_landed", "Rows written to the database", ["table"], registry=r
        )
        self.retries = Counter(
            "soundfleet_worker_retries", "Request retries by reason", ["reason"], registry=r
        )
        self.discoveries = Counter(
            "soundfleet_worker_discoveries", "client_id discoveries", ["source", "ok"], registry=r
        )
        self.lease_losses = Counter(
            "soundfleet_worker_lease_losses", "Units whose lease was re-issued", registry=r
        )
        self.units = Counter(
            "soundfleet_worker_units", "Units finished by outcome", ["kind", "outcome"], registry=r
        )
        self.units_active = Gauge(
            "soundfleet_worker_units_active", "Units being worked on", registry=r
        )
        self.latency = Histogram(
            "soundfleet_worker_request_seconds",
            "Platform API request latency",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.rate_share = Gauge(
            "soundfleet_worker_rate_share_rps",
            "This worker's share of the fleet budget",
            registry=r,
        )

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` on ``host``:``port`` (0: any free port); returns the port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        return int(server.server_port)
