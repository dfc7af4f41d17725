"""API keys: generation, hashing, and the roles each route admits.

A key is shown once at creation; only its sha256 is stored. Keys look like
``sf_<43 url-safe characters>`` so they are easy to spot in a leaked config.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_PREFIX = "sf_"

RESEARCHER = frozenset({"researcher", "admin"})
WORKER = frozenset({"worker", "admin"})
ANY_ROLE = frozenset({"researcher", "worker", "admin"})


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, name and role."""

    key_id: int
    name: str
    role: str

    @property
    def is_admin(self) -> bool:
        """Admins see and act on every job."""
        return self.role == "admin"


def hash_key(key: str) -> str:
    """The stored form of a key (hex sha256)."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str, str]:
    """A fresh key: ``(key, its hash, a display prefix)``."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, hash_key(key), key[:10]
