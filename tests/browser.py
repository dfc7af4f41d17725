"""The Chromium that browser tests drive (Debian's; Playwright's own download is unreachable)."""

from __future__ import annotations

import os

import pytest


def chromium() -> str:
    """The Chromium executable; skips the test without one, fails it when CI requires one.

    ``SOUNDFLEET_CHROMIUM`` names it, else ``/usr/bin/chromium``; with
    ``SOUNDFLEET_REQUIRE_BROWSER`` set (CI) a missing Chromium fails instead of skipping.
    """
    for candidate in (os.environ.get("SOUNDFLEET_CHROMIUM"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    if os.environ.get("SOUNDFLEET_REQUIRE_BROWSER"):
        pytest.fail("SOUNDFLEET_REQUIRE_BROWSER is set but no Chromium was found")
    pytest.skip("no Chromium on this machine")
