"""schemas.records: the tuple a sweep lands is laid out in the columns it names."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas import api_v2, tables
from schemas.api_v2 import User
from schemas.records import USER_COLUMNS, user_record, user_row
from tests import fixtures


def _users() -> list[User]:
    """Real users of the recorded bodies, plus one whose every counter differs."""
    real = api_v2.parse(User, fixtures.load("TeamNewPipe__user_10494998.json"))
    distinct = real.model_copy(
        update={name: 1000 + i for i, name in enumerate(USER_COLUMNS) if name.endswith("_count")}
    )
    return [real, distinct]


def test_user_columns_are_the_users_table_columns() -> None:
    assert len(set(USER_COLUMNS)) == len(USER_COLUMNS)
    assert set(USER_COLUMNS) <= set(tables.users.columns.keys())


def test_each_value_of_a_user_record_sits_under_its_column() -> None:
    at = datetime(2026, 12, 6, tzinfo=UTC)
    for user in _users():
        record = user_record(user, at)
        assert len(record) == len(USER_COLUMNS)
        for name, value in zip(USER_COLUMNS, record, strict=True):
            expected = at if name == "fetched_at" else getattr(user, name)
            assert value == expected, name
        assert user_row(user, at) == dict(zip(USER_COLUMNS, record, strict=True))
