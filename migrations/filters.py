"""What Alembic compares: our own tables, not the SQL-managed reporting views."""

from __future__ import annotations


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Skip objects outside the default schema (the ``reporting`` views)."""
    schema = getattr(obj, "schema", None)
    return not (type_ == "table" and schema is not None)
