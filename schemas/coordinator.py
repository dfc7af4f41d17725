"""Settings of the coordinator service (``SOUNDFLEET_COORDINATOR_*`` environment)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REAL_API_HOST = "api-v2.soundcloud.com"


class CoordinatorSettings(BaseSettings):
    """Knobs of leasing, retries, politeness and the HTTP edge."""

    model_config = SettingsConfigDict(env_prefix="SOUNDFLEET_COORDINATOR_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Interface to bind.")
    port: int = Field(default=8700, ge=0, le=65535, description="Port (0: any free port).")
    processes: int = Field(
        default=1, ge=1, le=64, description="Server processes sharing the port (one pool each)."
    )
    lease_s: float = Field(
        default=60.0, gt=0, le=3600, description="Lease duration; heartbeats extend it."
    )
    lease_wait_max_s: float = Field(
        default=10.0,
        ge=0,
        le=30,
        description=(
            "Longest a lease call is held waiting for work (its `wait_s` is cut to this; "
            "a proxy's idle timeout must be longer)."
        ),
    )
    max_attempts: int = Field(
        default=8, ge=1, le=100, description="Claims of a unit before it goes `dead`."
    )
    backoff_base_s: float = Field(
        default=2.0, ge=0, description="First retry delay; doubles per attempt (with jitter)."
    )
    backoff_max_s: float = Field(default=600.0, ge=0, description="Cap of the retry delay.")
    platform_api_base: str = Field(
        default=f"https://{REAL_API_HOST}",
        description=(
            "The platform the fleet crawls; on the real host the politeness defaults are "
            "the real platform's (budget_rps, rediscovery_interval_s)."
        ),
    )
    egress_ips: int = Field(
        default=1, ge=1, le=10_000, description="Distinct egress IPs the workers send from."
    )
    budget_rps: float = Field(
        default=20.0,  # replaced by _platform_defaults when not set
        gt=0,
        description=(
            "Fleet-wide request budget toward the platform (max). Default: 1 request/s per "
            "egress IP on the real host (other tools see 429s beyond about 600 requests "
            "per 10 minutes), 20/s elsewhere."
        ),
    )
    block_base_s: float = Field(
        default=60.0, gt=0, description="Fleet pause after a bot-protection block."
    )
    block_max_s: float = Field(
        default=1800.0, gt=0, description="Longest block pause (the pause doubles per block)."
    )
    block_reset_s: float = Field(
        default=3600.0,
        ge=0,
        description="A block this long after the last pause ended starts again from block_base_s.",
    )
    rediscovery_interval_s: float = Field(
        default=2.0,  # replaced by _platform_defaults when not set
        ge=0,
        description=(
            "At most one client_id rediscovery per this long, fleet-wide "
            "(default 60 s on the real host, 2 s elsewhere)."
        ),
    )
    budget_min_rps: float = Field(default=0.5, gt=0, description="AIMD floor of the budget.")
    budget_increase_rps_per_s: float = Field(
        default=0.2,  # replaced by _platform_defaults when not set
        ge=0,
        description=(
            "AIMD additive increase while no 429 arrives. Default: the budget over "
            "budget_recovery_s (a halved budget is back in half that time)."
        ),
    )
    budget_recovery_s: float = Field(
        default=120.0,
        gt=0,
        description="Seconds the default increase takes from zero to the full budget.",
    )
    budget_decrease_factor: float = Field(
        default=0.5, gt=0, lt=1, description="AIMD multiplicative decrease on a 429."
    )
    budget_decrease_window_s: float = Field(
        default=2.0,
        ge=0,
        description="429s within this long after a decrease count as the same congestion event.",
    )
    worker_alive_s: float = Field(
        default=30.0,  # replaced by _platform_defaults when not set
        gt=0,
        description=(
            "A worker seen this recently gets a budget share. Default: two thirds of "
            "lease_s (two heartbeats), so a killed worker's share is handed on soon."
        ),
    )
    quota_active_jobs: int = Field(
        default=50, ge=1, description="Jobs one non-admin key may have queued or running."
    )
    quota_queued_units: int = Field(
        default=2_000_000,
        ge=1,
        description="Units one non-admin key may have waiting (queued) across its jobs.",
    )
    worker_pause_max_s: float = Field(
        default=600.0,
        ge=0,
        description=(
            "Longest fleet pause a worker key can cause with one 429 report (its "
            "Retry-After is cut to this); admin keys are not capped."
        ),
    )
    discovery_timeout_s: float = Field(
        default=90.0, gt=0, description="How long one worker may hold the client_id discovery."
    )
    body_limit_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body accepted."
    )
    key_cache_s: float = Field(
        default=5.0, ge=0, description="API key lookups are cached this long (revocation lag)."
    )
    fleet_cache_s: float = Field(
        default=0.5, ge=0, description="Fleet advice (budget share, pause) is cached this long."
    )
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="A connection's first request headers must arrive within."
    )
    keepalive_s: float = Field(
        default=75.0, gt=0, description="Idle time a kept-alive connection may wait."
    )
    max_connections: int = Field(
        default=1000, ge=1, description="Open connections per server process (more: refused)."
    )
    metrics_cache_s: float = Field(
        default=10.0,
        ge=0,
        description=(
            "/metrics reads its fleet-wide gauges from the database at most this often "
            "(a GROUP BY over every unit: a scrape storm costs one query per interval)."
        ),
    )
    db_pool_size: int = Field(default=16, ge=1, le=200, description="Database connections.")

    @property
    def on_real_host(self) -> bool:
        """True when the fleet crawls the real platform."""
        return (urlsplit(self.platform_api_base).hostname or "").lower() == REAL_API_HOST

    @model_validator(mode="before")
    @classmethod
    def _platform_defaults(cls, data: Any) -> Any:
        # Defaults that depend on which platform is crawled, filled in before validation
        # so that an explicit setting (init or environment) always wins.
        if not isinstance(data, dict):
            return data
        base = str(data.get("platform_api_base") or f"https://{REAL_API_HOST}")
        real = (urlsplit(base).hostname or "").lower() == REAL_API_HOST
        if data.get("budget_rps") is None:
            try:
                egress = max(1, int(data.get("egress_ips") or 1))
            except (TypeError, ValueError):
                egress = 1  # the field's own validation names the bad value
            data = {**data, "budget_rps": 1.0 * egress if real else 20.0}
        if data.get("rediscovery_interval_s") is None:
            data = {**data, "rediscovery_interval_s": 60.0 if real else 2.0}
        if data.get("budget_increase_rps_per_s") is None:
            budget = _number(data.get("budget_rps"), 20.0)
            data = {
                **data,
                "budget_increase_rps_per_s": budget / _number(data.get("budget_recovery_s"), 120.0),
            }
        if data.get("worker_alive_s") is None:
            # Workers heartbeat every third of a lease: two missed beats mean gone.
            data = {**data, "worker_alive_s": max(3.0, _number(data.get("lease_s"), 60.0) * 2 / 3)}
        return data


def _number(value: Any, default: float) -> float:
    """``value`` as a positive float, ``default`` when it is none (the field's own
    validation names a bad value)."""
    try:
        number = float(value) if value is not None else default
    except (TypeError, ValueError):
        return default
    return number if number > 0 else default
