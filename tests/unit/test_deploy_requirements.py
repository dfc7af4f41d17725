"""runtime.requirements: what a process cannot run without, named in one line."""

from __future__ import annotations

import pytest

from runtime.requirements import (
    check_startup,
    env_var,
    load_settings,
    require_settings,
    required_fields,
)
from schemas.errors import ConfigError
from schemas.settings import Settings


def test_env_var_names_the_variable_a_user_sets() -> None:
    assert env_var("database_url") == "DATABASE_URL"
    assert env_var("api_key") == "SOUNDFLEET_API_KEY"
    assert env_var("DATABASE_URL") == "DATABASE_URL"


def test_missing_and_empty_values_are_named_together() -> None:
    settings = Settings(database_url=None, api_key="  ")
    with pytest.raises(ConfigError) as err:
        require_settings(settings, ["database_url", "api_key", "coordinator_url"])
    message = str(err.value)
    assert message == (
        "missing required settings: DATABASE_URL, SOUNDFLEET_API_KEY (unset or empty)"
    )
    assert "\n" not in message


def test_present_values_pass() -> None:
    settings = Settings(database_url="postgresql://u@h/d", api_key="k")
    require_settings(settings, ["database_url", "api_key"])


def test_unknown_requirement_is_a_config_error_not_a_silent_pass() -> None:
    with pytest.raises(ConfigError, match="unknown settings: api_secret"):
        require_settings(Settings(), ["api_secret"])


def test_required_fields_parse_the_comma_list() -> None:
    settings = Settings(require=" database_url, ,api_key ")
    assert required_fields(settings) == ["database_url", "api_key"]


def test_check_startup_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOUNDFLEET_REQUIRE", "api_key")
    monkeypatch.delenv("SOUNDFLEET_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="SOUNDFLEET_API_KEY"):
        check_startup()
    monkeypatch.setenv("SOUNDFLEET_API_KEY", "sf_worker_key")
    assert check_startup().api_key == "sf_worker_key"


def test_malformed_value_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOUNDFLEET_DB_POOL_SIZE", "lots")
    with pytest.raises(ConfigError) as err:
        load_settings(Settings)
    assert str(err.value).startswith("invalid setting SOUNDFLEET_DB_POOL_SIZE: ")


def test_validation_errors_without_a_known_prefix_name_model_and_field() -> None:
    from pydantic import ValidationError

    from runtime.requirements import describe_validation_error

    with pytest.raises(ValidationError) as err:
        Settings(db_pool_size=0, log_level="loud")
    line = describe_validation_error(err.value)
    assert "\n" not in line
    assert line.startswith("Settings.db_pool_size: ")
    assert "; Settings.log_level: " in line
    named = describe_validation_error(err.value, Settings)
    assert named.startswith("SOUNDFLEET_DB_POOL_SIZE: ")
