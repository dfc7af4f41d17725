"""The simulator's request ledger: one line per request it answered, for request accounting.

``--ledger PATH`` appends ``wall_time<TAB>status<TAB>fault<TAB>key`` per request, where
``key`` is the path and query without the parameters that say who asked (client_id,
app_version, app_locale), so two fetches of the same page have the same key, and
``fault`` names an injected failure (``5xx``, ``malformed``) or is empty. Each line is
one ``write`` on a file opened for appending, so every server process may share the
file and a killed simulator loses nothing.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import web

from schemas.api_v2 import CLIENT_PARAMS

_WHO_ASKED = frozenset(CLIENT_PARAMS)


@dataclass(frozen=True)
class Entry:
    """One answered request."""

    at: float
    status: int
    fault: str
    key: str


def request_key(request: web.Request) -> str:
    """The request's path and query, without who asked."""
    query = [(k, v) for k, v in request.query.items() if k not in _WHO_ASKED]
    return request.path + ("?" + urlencode(query) if query else "")


class Ledger:
    """Appends one line per request to ``path`` (opened in each process on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = 0

    def record(self, request: web.Request, status: int, fault: str = "") -> None:
        """Append the request's line."""
        if self._fd is None or self._pid != os.getpid():  # forked server processes
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._pid = os.getpid()
        line = f"{time.time():.6f}\t{status}\t{fault}\t{request_key(request)}\n"
        os.write(self._fd, line.encode())


def read(path: Path) -> list[Entry]:
    """Every entry of a ledger file, in time order."""
    entries = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            at, status, fault, key = line.rstrip("\n").split("\t", 3)
            entries.append(Entry(float(at), int(status), fault, key))
    entries.sort(key=lambda e: e.at)
    return entries
