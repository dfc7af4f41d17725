"""Start-up checks: a process that lacks a secret or a setting stops at once, naming it.

Deployments say what each process cannot run without through ``SOUNDFLEET_REQUIRE``
(e.g. ``database_url,api_key`` for a worker pod). Without this, a pod whose Secret lost
its ``DATABASE_URL`` would quietly start an embedded PostgreSQL inside the container and
lose everything it crawled, and a worker without a key would only fail at its first
lease. :func:`check_startup` turns both into one line at start, and
:func:`load_settings` does the same for a malformed value (a pydantic error would
otherwise surface as a traceback).

This module imports only :mod:`schemas` (and pydantic), so every entry point may call it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings

from schemas.errors import ConfigError
from schemas.settings import Settings

S = TypeVar("S", bound=BaseSettings)

#: Settings read from a variable other than ``SOUNDFLEET_<FIELD>``.
_ENV_NAMES = {"database_url": "DATABASE_URL"}


def env_var(field: str, prefix: str = "SOUNDFLEET_") -> str:
    """The environment variable that sets ``field`` (``database_url`` -> ``DATABASE_URL``)."""
    if field in _ENV_NAMES:
        return _ENV_NAMES[field]
    if field.isupper():  # already an alias such as DATABASE_URL
        return field
    return f"{prefix}{field.upper()}"


def _prefix_of(cls: type[BaseSettings]) -> str:
    return str(cls.model_config.get("env_prefix", "SOUNDFLEET_"))


def describe_validation_error(exc: ValidationError, cls: type[BaseSettings] | None = None) -> str:
    """One line for a settings validation error: each bad field with what is wrong.

    With ``cls`` the fields are named by their environment variables; without, as
    ``Model.field`` (the model is known, its environment prefix is not).
    """
    problems = []
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"]) or "?"
        name = env_var(field, _prefix_of(cls)) if cls is not None else f"{exc.title}.{field}"
        problems.append(f"{name}: {err['msg']}")
    return "; ".join(problems).replace("\n", " ")


def load_settings(cls: type[S]) -> S:
    """``cls()`` from the environment; a malformed value is a :class:`ConfigError` naming it."""
    try:
        return cls()
    except ValidationError as exc:
        raise ConfigError("invalid setting " + describe_validation_error(exc, cls)) from None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def require_settings(settings: BaseModel, fields: Iterable[str]) -> None:
    """Raise :class:`ConfigError` naming the variable of every field in ``fields`` that is unset.

    Empty strings count as unset: an empty Secret key mounted as an environment variable
    is as good as none.
    """
    names = type(settings).model_fields
    wanted = [f.strip() for f in fields if f.strip()]
    unknown = [f for f in wanted if f not in names]
    if unknown:
        raise ConfigError(
            "SOUNDFLEET_REQUIRE names unknown settings: "
            + ", ".join(sorted(unknown))
            + f" (known: {', '.join(sorted(names))})"
        )
    missing = [f for f in wanted if _missing(getattr(settings, f))]
    if missing:
        prefix = _prefix_of(type(settings)) if isinstance(settings, BaseSettings) else ""
        variables = ", ".join(env_var(f, prefix or "SOUNDFLEET_") for f in missing)
        plural = "s" if len(missing) > 1 else ""
        raise ConfigError(f"missing required setting{plural}: {variables} (unset or empty)")


def required_fields(settings: Settings) -> list[str]:
    """The settings ``SOUNDFLEET_REQUIRE`` lists, in order."""
    return [f.strip() for f in settings.require.split(",") if f.strip()]


def check_startup(settings: Settings | None = None) -> Settings:
    """Load the settings and enforce ``SOUNDFLEET_REQUIRE``; returns the settings.

    Call it once at an entry point, before anything connects or starts.
    """
    loaded = load_settings(Settings) if settings is None else settings
    require_settings(loaded, required_fields(loaded))
    return loaded
