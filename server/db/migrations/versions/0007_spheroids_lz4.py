"""PostgreSQL compresses stored spheroids with LZ4, not pglz (SQLite: no-op).

A version of an image with thousands of spheroids is megabytes of JSON (13 MB for 5,000), which PostgreSQL
compresses into TOAST as the row is written. With the default pglz that took 0.5 to 0.9 s a version; LZ4
writes the same row 4 to 5 times faster (measured on this project's PostgreSQL 15), so an edit of one
spheroid (``editSegmentation``, which writes the whole next version) is not held up by compression. Rows
written before keep pglz until rewritten; readers see no difference. A PostgreSQL built without LZ4 keeps
pglz.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text
from sqlalchemy.engine import Connection

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or not _has_lz4(bind):
        return
    op.execute("ALTER TABLE segmentations ALTER COLUMN spheroids SET COMPRESSION lz4")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql" or not _has_lz4(bind):
        return
    op.execute("ALTER TABLE segmentations ALTER COLUMN spheroids SET COMPRESSION pglz")


def _has_lz4(bind: Connection) -> bool:
    found = bind.execute(
        text("SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)")
    ).scalar()
    return found is not None
