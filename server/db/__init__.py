"""The database layer: SQLAlchemy 2 (async) models, the engine, Alembic migrations and repositories."""
