"""Alembic migrations, applied programmatically by :func:`reelgate.store.migrate.upgrade`."""
