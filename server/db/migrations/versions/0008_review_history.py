"""Review history: one ``reviews`` row per verdict on an image (who, when, status, comment, version).

The image row keeps the latest verdict as before; the history starts with it: every image reviewed before
this migration gets one row from its ``reviewed_by``, ``reviewed_at``, status and comment, about its
current segmentation version (the one the verdict stood for, as far as the database knows).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name="fk_reviews_image_id_images", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["reviewer_id"], ["users.id"], name="fk_reviews_reviewer_id_users", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_reviews"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_reviews_image_id", "reviews", ["image_id", "id"])
    op.execute(
        "INSERT INTO reviews (image_id, reviewer_id, status, comment, version, created_at) "
        "SELECT id, reviewed_by, review_status, review_comment, current_version, reviewed_at "
        "FROM images WHERE reviewed_at IS NOT NULL ORDER BY reviewed_at, id"
    )


def downgrade() -> None:
    op.drop_index("ix_reviews_image_id", table_name="reviews")
    op.drop_table("reviews")
