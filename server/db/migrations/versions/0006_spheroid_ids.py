"""Spheroids get ids that last across versions, and every version says where it came from.

``images.last_spheroid_id`` is the largest spheroid id given out in an image, so that an id is never given
out twice (``server.domain.versions.with_spheroid_ids``); ``segmentations.origin`` is the
:class:`~server.domain.versions.SaveOrigin` of a version. Records stored before this migration get ids now:
nothing says which spheroid of one version is which of another, so each version's spheroids get ids of
their own, in version order, and the current version keeps the largest. A version stored with a model's
name was a job's result; the others were people's edits (reverts and imports were not told apart before).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, which SQLite does in place: a rebuilt table would lose its triggers (0002).
    op.add_column("images", sa.Column("last_spheroid_id", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("segmentations", sa.Column("origin", sa.String(16), nullable=False, server_default="edit"))
    op.execute("UPDATE segmentations SET origin = 'job' WHERE model_name <> ''")
    _number_stored_spheroids()


def _number_stored_spheroids() -> None:
    bind = op.get_bind()
    segmentations = sa.table(
        "segmentations",
        sa.column("id", sa.Integer),
        sa.column("image_id", sa.Integer),
        sa.column("version", sa.Integer),
        sa.column("spheroids", sa.JSON),
    )
    images = sa.table("images", sa.column("id", sa.Integer), sa.column("last_spheroid_id", sa.Integer))
    last_ids: dict[int, int] = {}
    rows = bind.execute(
        sa.select(segmentations.c.id, segmentations.c.image_id, segmentations.c.spheroids).order_by(
            segmentations.c.image_id, segmentations.c.version
        )
    )
    for seg_id, image_id, records in rows.all():
        records = json.loads(records) if isinstance(records, str) else records
        last = last_ids.get(image_id, 0)
        for record in records:
            last += 1
            record["id"] = last
        last_ids[image_id] = last
        bind.execute(segmentations.update().where(segmentations.c.id == seg_id).values(spheroids=records))
    for image_id, last in last_ids.items():
        bind.execute(images.update().where(images.c.id == image_id).values(last_spheroid_id=last))


def downgrade() -> None:
    with op.batch_alter_table("segmentations") as batch:
        batch.drop_column("origin")
    with op.batch_alter_table("images") as batch:
        batch.drop_column("last_spheroid_id")
