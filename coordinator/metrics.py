"""Prometheus metrics of one coordinator process (its own registry, so apps can coexist).

Counters and histograms are per process (Prometheus sums across replicas); the gauges
describing shared state (units by state, workers alive, budget) are read from the
database at scrape time, so every replica reports the same fleet-wide truth.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """The coordinator's metric families."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.claims = Counter(
            "soundfleet_claims",
            "Units leased, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.claim_calls = Counter(
            "soundfleet_claim_requests", "Lease requests served.", registry=self.registry
        )
        self.lease_latency = Histogram(
            "soundfleet_lease_latency_seconds",
            "Time to run the claim transaction.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.completions = Counter(
            "soundfleet_unit_outcomes",
            "Units completed, failed, released or refused as stale.",
            ["outcome"],
            registry=self.registry,
        )
        self.throttles = Counter(
            "soundfleet_throttles", "429s reported by workers.", registry=self.registry
        )
        self.blocks = Counter(
            "soundfleet_blocks",
            "Bot-protection block episodes and deepenings recorded by this process.",
            registry=self.registry,
        )
        self.discoveries = Counter(
            "soundfleet_discoveries_granted",
            "client_id rediscoveries granted by this process.",
            registry=self.registry,
        )
        self.http_requests = Counter(
            "soundfleet_http_requests",
            "HTTP requests by route and status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.units = Gauge(
            "soundfleet_units",
            "Work units by kind and state (fleet-wide).",
            ["kind", "state"],
            registry=self.registry,
        )
        self.workers_alive = Gauge(
            "soundfleet_workers_alive",
            "Workers seen within the liveness window (fleet-wide).",
            registry=self.registry,
        )
        self.budget = Gauge(
            "soundfleet_budget_rps",
            "Current fleet-wide request budget toward the platform.",
            registry=self.registry,
        )
        self.budget_max = Gauge(
            "soundfleet_budget_max_rps",
            "The fleet-wide budget's ceiling (budget_rps as configured).",
            registry=self.registry,
        )
        self.throttles_total = Gauge(
            "soundfleet_fleet_throttles",
            "429s recorded fleet-wide since the fleet started.",
            registry=self.registry,
        )
        self.blocked = Gauge(
            "soundfleet_fleet_blocked",
            "1 while a bot-protection pause is running (fleet-wide).",
            registry=self.registry,
        )
        self.blocked_since = Gauge(
            "soundfleet_fleet_blocked_since_seconds",
            "Unix time the running block episode began (0: not blocked).",
            registry=self.registry,
        )
        self.block_next_try = Gauge(
            "soundfleet_fleet_block_next_try_seconds",
            "Unix time the block pause ends (0: not blocked).",
            registry=self.registry,
        )
        self.block_level = Gauge(
            "soundfleet_fleet_block_level",
            "Doublings of the block pause in the current episode.",
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, int], Counter] = {}

    def http_request(self, route: str, status: int) -> Counter:
        """The request counter of one route and status (children cached: hot path)."""
        key = (route, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.http_requests.labels(route, str(status))
        return child
