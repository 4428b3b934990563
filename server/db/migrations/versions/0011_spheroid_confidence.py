"""The spheroid table gains the ``confidence`` metric (``cluster.SpheroidMetrics.confidence``: how sure the
ResUNet was of an outline, 0..1), so a project's spheroids can be sorted by it and the least certain
reviewed first.

Nothing is filled in: every version stored before has no confidence (segmenters gave none), so the column
stays ``NULL`` for them, as it does for outlines of the classical method or drawn by a person.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

METRICS = ("confidence",)
"""The metric columns this migration adds, after those of 0010 (written out, so it never changes)."""


def upgrade() -> None:
    with op.batch_alter_table("spheroid_rows") as batch:
        for name in METRICS:
            batch.add_column(sa.Column(name, sa.Float(), nullable=True))


def downgrade() -> None:
    # the spheroid table is an index of the stored versions: rebuilt from them, nothing is lost
    with op.batch_alter_table("spheroid_rows") as batch:
        for name in METRICS:
            batch.drop_column(name)
