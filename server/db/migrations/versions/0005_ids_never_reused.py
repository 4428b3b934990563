"""Ids are never reused: SQLite tables with ``AUTOINCREMENT`` (PostgreSQL's sequences never go back: no-op).

Without ``AUTOINCREMENT`` SQLite gives a new row the largest id in the table plus one, so deleting the
newest project, image or job handed its id to the next one, and a late result or a stale link for the
deleted row could land on the new one. SQLite cannot add ``AUTOINCREMENT`` to a table, so each table is
rebuilt (copied into a new one, which keeps every row and id) with its indexes and triggers. The rebuild
drops the old tables, so it needs foreign keys off (``server.db.migrate.upgrade`` turns them off; with
them on, dropping ``images`` would delete every segmentation through ``ON DELETE CASCADE``). Ids deleted
before this migration above a table's largest remaining id can be given out once more.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = ("users", "sessions", "projects", "images", "segmentations", "jobs", "tasks")
"""Every table with a single integer id (signing_keys has AUTOINCREMENT from its start)."""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    if bind.execute(text("PRAGMA foreign_keys")).scalar():
        raise RuntimeError(
            "migration 0005 rebuilds tables and needs SQLite's foreign keys off: "
            "run it with `spheroseg server migrate`"
        )
    for table in TABLES:
        triggers = list(
            bind.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
                {"t": table},
            )
        )
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": True}):
            pass
        for _, sql in triggers:  # a rebuilt table loses its triggers (project_stats counters, 0002)
            op.execute(sql)
    problems = list(bind.execute(text("PRAGMA foreign_key_check")))
    if problems:
        raise RuntimeError(f"rows refer to missing rows after rebuilding the tables: {problems[:5]}")


def downgrade() -> None:
    """Nothing to undo: AUTOINCREMENT only stops ids coming back, and every row is kept either way."""
