"""Sessions remember when they were last used; one-time bootstrap tokens for the offline start.

``sessions.last_used_at`` is written at most once every few minutes per session (see
``server.services.sessions``), so a list of a user's sessions can say which devices are still in use.
``bootstrap_tokens`` hold the hash of a token that ``spheroseg server serve --offline`` (or
``spheroseg server bootstrap-token``) prints, with its expiry; exchanging it for a session marks it used.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "bootstrap_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_bootstrap_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_bootstrap_tokens_token_hash"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_bootstrap_tokens_user_id_users", ondelete="CASCADE"
        ),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("bootstrap_tokens")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("last_used_at")
