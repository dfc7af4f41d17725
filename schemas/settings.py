"""Runtime settings, read from the environment with the ``SOUNDFLEET_`` prefix.

``DATABASE_URL`` (no prefix) is honoured as the conventional name for the database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """Where soundfleet keeps its embedded database and outputs by default."""
    return Path(platformdirs.user_data_dir("soundfleet"))


class Settings(BaseSettings):
    """Settings shared by every soundfleet process."""

    model_config = SettingsConfigDict(env_prefix="SOUNDFLEET_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "SOUNDFLEET_DATABASE_URL"),
        description=(
            "PostgreSQL URL (postgresql://user:pass@host:port/db). Unset: an embedded "
            "PostgreSQL is started in `data_dir`."
        ),
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Directory for the embedded database, reports and demo output.",
    )
    db_pool_size: int = Field(default=10, ge=1, le=200, description="Connections per process.")
    db_connect_timeout_s: float = Field(
        default=10.0, gt=0, description="Seconds to wait for a database connection."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Lowest log level printed."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", description="`auto`: console renderer on a TTY, JSON lines otherwise."
    )
    coordinator_url: str = Field(
        default="http://127.0.0.1:8700", description="Base URL of the coordinator service."
    )
    api_key: str | None = Field(
        default=None, description="Bearer key for the coordinator (researcher or worker role)."
    )
    api_base: str = Field(
        default="https://api-v2.soundcloud.com",
        description="Base URL of the platform API; `next_href`s off this host are refused.",
    )
    web_base: str = Field(
        default="https://soundcloud.com",
        description="Base URL of the platform web client, used for client_id discovery.",
    )
    chromium: Path | None = Field(
        default=None,
        description="Chromium executable for browser discovery (else /usr/bin/chromium).",
    )
    require: str = Field(
        default="",
        description=(
            "Comma-separated settings this process cannot run without (e.g. "
            "`database_url,api_key`; containers set it): a missing or empty one stops the "
            "process at start with one line naming its variable, instead of falling back "
            "to a default (such as an embedded database inside a pod)."
        ),
    )
