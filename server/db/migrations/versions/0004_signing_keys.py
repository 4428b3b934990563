"""Rotations of the image URL signing key: an id and a random salt per rotation, no key.

The key itself is derived from the server's secret and the salt (server.delivery.keyring), so this table
alone signs nothing, and every replica reading it derives the same key.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_signing_keys"),
        sqlite_autoincrement=True,  # a retired rotation's id is never given to a new one
    )


def downgrade() -> None:
    op.drop_table("signing_keys")
