"""Settings come from the environment; DATABASE_URL is validated with clear errors."""

from __future__ import annotations

import pytest

from runtime.database import parse_database_url
from schemas.errors import ConfigError
from schemas.settings import Settings


def test_env_prefix_and_database_url(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example:5433/x")
    monkeypatch.setenv("SOUNDFLEET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SOUNDFLEET_LOG_LEVEL", "debug")
    s = Settings()
    assert s.database_url == "postgresql://u@db.example:5433/x"
    assert s.data_dir == tmp_path
    assert s.log_level == "debug"


def test_every_setting_is_documented() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, f"setting {name} has no description"


def test_bad_setting_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOUNDFLEET_DB_POOL_SIZE", "lots")
    with pytest.raises(ValueError, match="db_pool_size"):
        Settings()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u@h/db", "scheme 'mysql' is not PostgreSQL"),
        ("not a url", "is not a database URL"),
        ("postgresql://u@h:99999999/db", "malformed"),
        ("postgresql://u@h:5432/", "names no database"),
        ("postgresql:///db", "names no host"),
    ],
)
def test_malformed_database_url(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_database_url(url)


def test_asyncpg_and_socket_urls_are_accepted() -> None:
    assert parse_database_url("postgresql+asyncpg://u@h/db") == "postgresql://u@h/db"
    sock = "postgresql://postgres:@/postgres?host=/tmp/pg"
    assert parse_database_url(sock).startswith("postgresql://postgres")


def test_the_real_host_gets_polite_defaults_and_loopback_keeps_fast_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from crawler.config import WorkerSettings
    from schemas.coordinator import CoordinatorSettings

    real = CoordinatorSettings()
    assert real.on_real_host
    assert real.budget_rps == 1.0  # about 600 requests per 10 minutes per address
    assert real.rediscovery_interval_s == 60.0
    assert real.budget_increase_rps_per_s == pytest.approx(1.0 / 120)
    assert CoordinatorSettings(egress_ips=8).budget_rps == 8.0
    local = CoordinatorSettings(platform_api_base="http://127.0.0.1:8701/api", lease_s=9)
    assert not local.on_real_host
    assert (local.budget_rps, local.rediscovery_interval_s) == (20.0, 2.0)
    assert local.worker_alive_s == pytest.approx(6.0)  # two heartbeats of a 9 s lease
    # An explicit setting always wins, from the environment too.
    monkeypatch.setenv("SOUNDFLEET_COORDINATOR_BUDGET_RPS", "3")
    monkeypatch.setenv("SOUNDFLEET_COORDINATOR_BUDGET_INCREASE_RPS_PER_S", "0.5")
    env = CoordinatorSettings()
    assert (env.budget_rps, env.budget_increase_rps_per_s) == (3.0, 0.5)
    monkeypatch.setenv("SOUNDFLEET_COORDINATOR_BUDGET_RPS", "lots")
    with pytest.raises(ValueError, match="budget_rps"):
        CoordinatorSettings()
    worker = WorkerSettings(api_key="k")
    assert worker.throttle_wait_s() == 30.0
    assert worker.user_agent.startswith("Mozilla/5.0")
    loop = WorkerSettings(api_key="k", api_base="http://127.0.0.1:8701/api")
    assert loop.throttle_wait_s() == 1.0
