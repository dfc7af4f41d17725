"""Settings come from the environment; DATABASE_URL is validated with clear errors."""

from __future__ import annotations

import pytest

from schemas.errors import ConfigError
from schemas.settings import Settings
from soundfleet.database import parse_database_url


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
