"""Worker settings, read from the environment with the ``SOUNDFLEET_`` prefix.

Command-line flags of ``soundfleet worker`` override them field by field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from crawler.transport import DEFAULT_USER_AGENT, TransportName
from schemas.work import CRAWL_KINDS

DiscoveryMode = Literal["auto", "hydration", "bundles", "browser"]
DISCOVERY_ORDER: tuple[str, ...] = ("hydration", "bundles", "browser")

REAL_API_HOST = "api-v2.soundcloud.com"
"""The real platform's API host: politeness defaults differ there (see ``on_real_host``)."""


def on_real_host(api_base: str) -> bool:
    """True when ``api_base`` is the real platform (not loopback, not the simulator)."""
    return (urlsplit(api_base).hostname or "").lower() == REAL_API_HOST


class WorkerSettings(BaseSettings):
    """Everything a crawler worker process needs to know."""

    model_config = SettingsConfigDict(env_prefix="SOUNDFLEET_", extra="ignore")

    coordinator_url: str = Field(
        default="http://127.0.0.1:8700", description="Base URL of the coordinator."
    )
    api_key: str | None = Field(default=None, description="Worker-role bearer key.")
    api_base: str = Field(
        default="https://api-v2.soundcloud.com",
        description="Platform API base URL; `next_href`s off it are refused.",
    )
    web_base: str = Field(
        default="https://soundcloud.com", description="Platform web client, for discovery."
    )
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "SOUNDFLEET_DATABASE_URL", "database_url"),
        description="Where rows land (unset: the embedded PostgreSQL).",
    )
    kinds: tuple[str, ...] = Field(
        default=CRAWL_KINDS, description="Unit kinds this worker leases."
    )
    concurrency: int = Field(default=64, ge=1, le=2048, description="Requests in flight.")
    unit_slots: int = Field(
        default=8, ge=1, le=256, description="Units worked on at once (leased in batches)."
    )
    grace_s: float = Field(
        default=20.0, ge=0, description="SIGTERM: seconds to finish or checkpoint units."
    )
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="Serve Prometheus metrics on this port."
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="Interface of the metrics port (0.0.0.0 in a pod, so Prometheus can scrape).",
    )
    discovery: DiscoveryMode = Field(
        default="auto", description="client_id discovery: one strategy, or all in order."
    )
    chromium: Path | None = Field(
        default=None, description="Chromium for browser discovery (else /usr/bin/chromium)."
    )
    request_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Per request; checked once a second (crawler.deadlines), so up to 1 s late.",
    )
    max_retries: int = Field(
        default=6, ge=0, le=100, description="Retries of one request on 5xx/connection/body."
    )
    max_throttle_waits: int = Field(
        default=60, ge=0, description="429s one request may wait out before its unit fails."
    )
    max_rejections: int = Field(
        default=5, ge=0, description="401/403s one request may see (one rediscovery each)."
    )
    max_block_waits: int = Field(
        default=12, ge=0, description="Bot-protection pauses one request may wait out."
    )
    throttle_default_s: float | None = Field(
        default=None,
        gt=0,
        description=(
            "First wait after a 429 without Retry-After, doubling while they repeat "
            "(default: 30 s on the real host, 1 s elsewhere)."
        ),
    )
    throttle_max_s: float = Field(default=1800.0, gt=0, description="Longest such wait.")
    block_base_s: float = Field(
        default=60.0, gt=0, description="Without a coordinator: first pause after a block."
    )
    block_max_s: float = Field(
        default=1800.0, gt=0, description="Without a coordinator: longest block pause."
    )
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="Largest response body read; a larger one is abandoned (unit retried).",
    )
    transport: TransportName = Field(
        default="aiohttp",
        description="HTTP client: aiohttp, or 'impersonate' (curl_cffi, a browser's TLS).",
    )
    user_agent: str = Field(
        default=DEFAULT_USER_AGENT, description="User-Agent of every platform request."
    )
    accept_language: str = Field(
        default="en-US,en;q=0.9", description="Accept-Language of every platform request."
    )
    origin: str | None = Field(
        default=None,
        description="Origin/Referer of API requests (default: the web client, web_base).",
    )
    backoff_base_s: float = Field(default=0.2, gt=0, description="First retry's mean wait.")
    backoff_max_s: float = Field(default=10.0, gt=0, description="Longest retry wait.")
    web_profiles: bool = Field(
        default=True,
        description=(
            "user_range: also fetch each live user's /web-profiles (the spam model's links); "
            "one more request per live user"
        ),
    )
    max_gone_share: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description=(
            "user_range: a batch with more 404s than this share (or no live user) is "
            "only marked gone once a known-live user still answers."
        ),
    )
    page_limit: int = Field(default=200, ge=1, le=200, description="`limit` of list pages.")
    max_pages: int = Field(
        default=100_000,
        ge=1,
        description=(
            "List units: pages one lease may walk before the unit fails as a loop "
            "(100,000 pages of 200 is a 20M-follower list)."
        ),
    )
    id_batch: int = Field(
        # 1,000: a default unit lands once. A batch is also cut after a checkpoint
        # period (crawler.handlers._flush_period), so on a slow platform this bounds
        # nothing and on loopback a sweep ran ~6% faster than at 500 (six of six
        # interleaved pairs of a 100,000-id sweep).
        default=1000,
        ge=1,
        le=10_000,
        description="user_range: ids fetched per landed batch.",
    )
    flush_rows: int = Field(
        default=2000, ge=1, description="List units: land (and checkpoint) every N rows."
    )
    heartbeat_s: float | None = Field(
        default=None, gt=0, description="Heartbeat period (default: a third of the lease)."
    )
    advice_refresh_s: float = Field(
        # 0.5: a job's last units get the budget their finished neighbours freed within
        # a second (exact timelines used 0.945 of it at 1.0, 0.97 at 0.5).
        default=0.5,
        gt=0,
        le=60,
        description=(
            "Ask the coordinator for this worker's budget share this often while units "
            "run; a larger share is taken up only after one such period."
        ),
    )
    idle_poll_s: float = Field(
        default=1.0,
        gt=0,
        le=30,
        description="How long a lease call waits at the coordinator while no unit is leasable.",
    )
    db_pool_size: int = Field(default=4, ge=1, le=64, description="Landing connections.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"

    def throttle_wait_s(self) -> float:
        """First wait after a 429 without Retry-After: the setting, else by platform.

        On the real platform that means minutes, not a second (other tools report about
        600 requests per 10 minutes before 429s). Read at use, not at construction:
        ``soundfleet worker`` applies its flags (``--api-base``) after the environment.
        """
        if self.throttle_default_s is not None:
            return self.throttle_default_s
        return 30.0 if on_real_host(self.api_base) else 1.0
