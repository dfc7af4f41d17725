"""Alembic migrations; ``target_metadata`` is :data:`schemas.tables.metadata`."""
