"""The project-wide spheroid table (``spheroid_rows``, filled from the current versions), and export jobs
(``jobs.kind``, the zip an export job wrote, and the heartbeat of the server running it).

``spheroid_rows`` has one row per spheroid of each image's current segmentation, with the metrics as
columns, so that a project's spheroids can be paged and sorted by a metric in SQL; the save function keeps
it in step from now on (``server.db.spheroid_table``). The metric columns are the names of
``cluster.SpheroidMetrics`` as they are today, written out here so this migration never changes. The
backfill copies what each stored record holds: a metric an older record lacks stays ``NULL`` until the
image is saved again (the stored JSON stays the truth; nothing is measured here).

Existing jobs are segmentation jobs (``kind`` ``segment``).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)

METRICS = (
    "area_px",
    "area_um2",
    "perimeter_px",
    "perimeter_um",
    "perimeter_with_holes_px",
    "perimeter_with_holes_um",
    "equivalent_diameter_px",
    "equivalent_diameter_um",
    "circularity",
    "compactness",
    "sphericity",
    "convexity",
    "solidity",
    "extent",
    "feret_max_px",
    "feret_max_um",
    "feret_min_px",
    "feret_min_um",
    "aspect_ratio",
    "major_axis_px",
    "major_axis_um",
    "minor_axis_px",
    "minor_axis_um",
    "orientation_deg",
    "centroid_x",
    "centroid_y",
    "bbox_x_min",
    "bbox_y_min",
    "bbox_x_max",
    "bbox_y_max",
    "hole_count",
    "hole_area_px",
    "hole_area_um2",
)
BORDER_MARGIN_PX = 1.0
BATCH = 500
"""Images read per statement during the backfill."""


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="segment"))
        jobs.add_column(sa.Column("result_key", sa.String(255), nullable=True))
        jobs.add_column(sa.Column("result_expires_at", TS, nullable=True))
        jobs.add_column(sa.Column("heartbeat_at", TS, nullable=True))
    table = op.create_table(
        "spheroid_rows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("spheroid_id", sa.Integer(), nullable=False),
        sa.Column("touches_border", sa.Boolean(), nullable=False),
        *[
            sa.Column(name, sa.Integer() if name == "hole_count" else sa.Float(), nullable=True)
            for name in METRICS
        ],
        sa.PrimaryKeyConstraint("id", name="pk_spheroid_rows"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_spheroid_rows_project_id_projects", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name="fk_spheroid_rows_image_id_images", ondelete="CASCADE"
        ),
    )
    op.create_index(
        "ix_spheroid_rows_project_image", "spheroid_rows", ["project_id", "image_id", "spheroid_id"]
    )
    op.create_index("ix_spheroid_rows_image_id", "spheroid_rows", ["image_id"])
    for rows in _current_rows():
        if rows:
            op.bulk_insert(table, rows)


def _current_rows() -> Iterator[list[dict[str, Any]]]:
    """The rows of the current versions, a batch of images at a time."""
    bind = op.get_bind()
    last = 0
    while True:
        found = list(
            bind.execute(
                sa.text(
                    "SELECT i.id, i.project_id, i.width, i.height, s.spheroids "
                    "FROM images i JOIN segmentations s "
                    "ON s.image_id = i.id AND s.version = i.current_version "
                    "WHERE i.id > :last ORDER BY i.id LIMIT :batch"
                ),
                {"last": last, "batch": BATCH},
            )
        )
        if not found:
            return
        last = found[-1][0]
        yield [
            _row(image_id, project_id, width, height, record)
            for image_id, project_id, width, height, records in found
            for record in _json(records)
        ]


def _json(value: Any) -> list[Mapping[str, Any]]:
    records = json.loads(value) if isinstance(value, str | bytes) else value
    return list(records or [])


def _row(
    image_id: int,
    project_id: int,
    width: int,
    height: int,
    record: Mapping[str, Any],
) -> dict[str, Any]:
    metrics: Mapping[str, Any] = record.get("metrics") or {}
    return {
        "project_id": project_id,
        "image_id": image_id,
        "spheroid_id": record["id"],  # given by migration 0006
        "touches_border": _touches_border(record.get("exterior") or [], width, height),
        **{name: metrics.get(name) for name in METRICS},
    }


def _touches_border(exterior: Sequence[Sequence[float]], width: int, height: int) -> bool:
    if not exterior:
        return False
    xs, ys = [p[0] for p in exterior], [p[1] for p in exterior]
    margin = BORDER_MARGIN_PX
    return min(xs) < margin or min(ys) < margin or max(xs) > width - margin or max(ys) > height - margin


def downgrade() -> None:
    op.drop_table("spheroid_rows")
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("heartbeat_at")
        jobs.drop_column("result_expires_at")
        jobs.drop_column("result_key")
        jobs.drop_column("kind")
