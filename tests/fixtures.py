"""Access to the real api-v2 bodies in the shared fixtures folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def fixtures_dir() -> Path:
    """``shared/fixtures/soundcloud-api-v2`` beside the checkout (or SOUNDFLEET_FIXTURES)."""
    env = os.environ.get("SOUNDFLEET_FIXTURES")
    if env:
        return Path(env)
    for base in (ROOT.parent / "shared", ROOT / "shared"):
        candidate = base / "fixtures" / "soundcloud-api-v2"
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("shared/fixtures/soundcloud-api-v2 not found beside the checkout")


def exchanges_dir() -> Path:
    """``shared/fixtures/recorded-exchanges`` (the real recorded exchanges)."""
    return fixtures_dir().parent / "recorded-exchanges"


def load(name: str) -> Any:
    """The decoded JSON body of fixture ``name``."""
    return json.loads((fixtures_dir() / name).read_text())


def all_names() -> list[str]:
    """Every fixture body's file name."""
    return sorted(p.name for p in fixtures_dir().glob("*.json"))
