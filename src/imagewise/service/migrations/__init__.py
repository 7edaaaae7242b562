"""Alembic migrations of the service's database (run by ``db.connect`` on every start)."""
