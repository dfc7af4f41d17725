"""The world's fixed parameters, its hash streams and the procedural creation time.

Shared by the world's generation (:mod:`.growth`), the world (:mod:`.world`) and what
serves it (:mod:`.render`, :mod:`.server`), which all draw procedural fields from the
same ``(seed, stream, id)`` hashes.
"""

from __future__ import annotations

from datetime import UTC, datetime

SPAM_KINDS = ("none", "link_spam", "fake_batch", "follow_churn")
DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
FIRST_USER_S = int(datetime(2008, 1, 1, tzinfo=UTC).timestamp())
DEFAULT_CORE = 20_000
GONE_RATE = 0.06
LIFE_HOURS = 42 * 24  # plays are simulated for 6 weeks after upload
HISTORY_DAYS = 180  # tracks are uploaded from start-180d to the horizon's end

# hash streams for procedural fields
S_GONE, S_PLAN, S_NAME, S_CITY, S_DESC, S_TRACK, S_FAULT, S_CLIENT = range(1, 9)


def created_s_of(user_id: int, users: int, start_s: int) -> int:
    """Procedural ``created_at`` (epoch s) of any id: grows with the id."""
    span = start_s - 2 * 86400 - FIRST_USER_S
    return FIRST_USER_S + (user_id - 1) * span // max(users, 1)
