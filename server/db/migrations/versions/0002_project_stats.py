"""Project statistics kept as counters, so the project page costs the same for 10 or 100,000 images.

Each image row now carries its current segmentation's totals (spheroid count, area and diameter sums), and
``project_stats`` holds one row per project with image counts per segmentation and review state and the
totals over current segmentations. Database triggers keep the counters right whatever writes the images
(the API, the job dispatcher, a bulk import), on SQLite and PostgreSQL alike. One row per project, not one
per state: a transaction that moves many images between states locks that single row, so two writers can
never lock two counter rows in opposite orders and deadlock.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen here (a later migration that adds a state adds its column): the values of the domain's
# SegmentationStatus and ReviewStatus when this migration was written.
SEGMENTATION_STATES = ("none", "queued", "running", "done", "failed")
REVIEW_STATES = ("unreviewed", "accepted", "needs_fix", "rejected")
IMAGE_TOTALS = ("spheroid_count", "area_sum_px", "diameter_sum_px")
WATCHED = ("project_id", "segmentation_status", "review_status", "current_version", *IMAGE_TOTALS)


def _increments(row: str, sign: str) -> str:
    """``SET`` assignments adding (``+``) or removing (``-``) the image ``row`` (NEW or OLD)."""
    terms = {"image_count": "1", "segmented_images": f"CASE WHEN {row}.current_version > 0 THEN 1 ELSE 0 END"}
    terms.update({total: f"{row}.{total}" for total in IMAGE_TOTALS})
    for state in SEGMENTATION_STATES:
        terms[f"status_{state}"] = f"CASE WHEN {row}.segmentation_status = '{state}' THEN 1 ELSE 0 END"
    for state in REVIEW_STATES:
        terms[f"review_{state}"] = f"CASE WHEN {row}.review_status = '{state}' THEN 1 ELSE 0 END"
    assignments = ", ".join(f"{column} = {column} {sign} ({term})" for column, term in terms.items())
    return f"UPDATE project_stats SET {assignments} WHERE project_id = {row}.project_id"


def _counter_columns() -> list[sa.Column[object]]:
    counts = ["image_count", "segmented_images", "spheroid_count"]
    counts += [f"status_{state}" for state in SEGMENTATION_STATES]
    counts += [f"review_{state}" for state in REVIEW_STATES]
    columns: list[sa.Column[object]] = [
        sa.Column(name, sa.Integer(), nullable=False, server_default="0") for name in counts
    ]
    columns += [sa.Column(name, sa.Float(), nullable=False, server_default="0") for name in IMAGE_TOTALS[1:]]
    return columns


def upgrade() -> None:
    with op.batch_alter_table("images") as images:
        images.add_column(sa.Column("spheroid_count", sa.Integer(), nullable=False, server_default="0"))
        images.add_column(sa.Column("area_sum_px", sa.Float(), nullable=False, server_default="0"))
        images.add_column(sa.Column("diameter_sum_px", sa.Float(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE images SET "
        + ", ".join(
            f"{total} = (SELECT s.{total} FROM segmentations s "
            "WHERE s.image_id = images.id AND s.version = images.current_version)"
            for total in IMAGE_TOTALS
        )
        + " WHERE current_version > 0"
    )
    op.create_table(
        "project_stats",
        sa.Column("project_id", sa.Integer(), nullable=False),
        *_counter_columns(),
        sa.PrimaryKeyConstraint("project_id", name="pk_project_stats"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_project_stats_project_id_projects", ondelete="CASCADE"
        ),
    )
    op.execute("INSERT INTO project_stats (project_id) SELECT id FROM projects")
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()
    _backfill()


def _backfill() -> None:
    """Existing images counted once, the same way the triggers count new ones."""
    sums = ["count(*)", "sum(CASE WHEN current_version > 0 THEN 1 ELSE 0 END)"]
    sums += [f"sum({total})" for total in IMAGE_TOTALS]
    sums += [f"sum(CASE WHEN segmentation_status = '{s}' THEN 1 ELSE 0 END)" for s in SEGMENTATION_STATES]
    sums += [f"sum(CASE WHEN review_status = '{s}' THEN 1 ELSE 0 END)" for s in REVIEW_STATES]
    columns = ["image_count", "segmented_images", *IMAGE_TOTALS]
    columns += [f"status_{s}" for s in SEGMENTATION_STATES] + [f"review_{s}" for s in REVIEW_STATES]
    assignments = ", ".join(
        f"{column} = (SELECT coalesce({expression}, 0) FROM images WHERE images.project_id = "
        "project_stats.project_id)"
        for column, expression in zip(columns, sums, strict=True)
    )
    op.execute(f"UPDATE project_stats SET {assignments}")


def _sqlite_triggers() -> None:
    op.execute(
        "CREATE TRIGGER project_stats_new_project AFTER INSERT ON projects "
        "BEGIN INSERT INTO project_stats (project_id) VALUES (NEW.id); END"
    )
    op.execute(f"CREATE TRIGGER images_counted AFTER INSERT ON images BEGIN {_increments('NEW', '+')}; END")
    op.execute(f"CREATE TRIGGER images_uncounted AFTER DELETE ON images BEGIN {_increments('OLD', '-')}; END")
    op.execute(
        f"CREATE TRIGGER images_recounted AFTER UPDATE OF {', '.join(WATCHED)} ON images "
        f"BEGIN {_increments('OLD', '-')}; {_increments('NEW', '+')}; END"
    )


def _postgresql_triggers() -> None:
    op.execute(
        "CREATE FUNCTION project_stats_new_project() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN INSERT INTO project_stats (project_id) VALUES (NEW.id); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER project_stats_new_project AFTER INSERT ON projects "
        "FOR EACH ROW EXECUTE FUNCTION project_stats_new_project()"
    )
    op.execute(
        "CREATE FUNCTION images_counted() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF TG_OP IN ('UPDATE', 'DELETE') THEN {_increments('OLD', '-')}; END IF; "
        f"IF TG_OP IN ('UPDATE', 'INSERT') THEN {_increments('NEW', '+')}; END IF; "
        "RETURN NULL; END $$"
    )
    op.execute(
        f"CREATE TRIGGER images_counted AFTER INSERT OR DELETE OR UPDATE OF {', '.join(WATCHED)} "
        "ON images FOR EACH ROW EXECUTE FUNCTION images_counted()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER images_counted ON images")
        op.execute("DROP TRIGGER project_stats_new_project ON projects")
        op.execute("DROP FUNCTION images_counted()")
        op.execute("DROP FUNCTION project_stats_new_project()")
    else:
        for trigger in (
            "project_stats_new_project",
            "images_counted",
            "images_uncounted",
            "images_recounted",
        ):
            op.execute(f"DROP TRIGGER {trigger}")
    op.drop_table("project_stats")
    with op.batch_alter_table("images") as images:
        for total in IMAGE_TOTALS:
            images.drop_column(total)
