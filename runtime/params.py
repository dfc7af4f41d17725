"""``k=v`` command-line pairs as a JSON-ish dict (job specs, scoring parameters)."""

from __future__ import annotations

import json
from typing import Any

from schemas.errors import InputError


def parse_params(items: list[str] | None, option: str = "--param") -> dict[str, Any]:
    """``["depth=2", "seeds=[1,2]", "direction=both"]`` as a dict.

    A value is decoded as JSON when it is JSON (``1``, ``true``, ``[1,2]``), else kept as
    text; :class:`InputError` names a pair that is not ``k=v``.
    """
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"{option} {item!r} is not of the form key=value")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params
