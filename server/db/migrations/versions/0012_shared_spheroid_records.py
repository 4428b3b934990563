"""Versions share their unchanged spheroids: ``spheroid_records`` replaces the full copy of every record that
each version kept in ``segmentations.spheroids``.

A row of ``spheroid_records`` holds one spheroid's record for a run of versions of its image (from
``first_version`` up to, not including, ``end_version``; ``NULL`` while current), with its ``position`` in
them, so an edit of one spheroid writes one row instead of the whole version (``server.db.spheroid_records``).

The versions stored so far are converted in place, image by image, oldest version first: a record equal to
the one of the same spheroid id in the version before (same text) stays in that row; one that changed gets a
row at the same place; a new id goes after the others. When a version reorders the spheroids it kept (a
whole-image save could), every record of that version gets a new row, so each version reads back exactly
as stored, in its order. Records are written as JSON with the id first, as the server writes them.
``segmentations.spheroids`` is dropped (PostgreSQL and SQLite both drop a column in place, so SQLite keeps
the table's triggers and ids).

The record column is compressed with LZ4 on a PostgreSQL built with it (as 0007 did for the old column).
The downgrade writes every version's records back as one JSON array.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BATCH = 1000
"""Finished rows written per statement."""

_segmentations = sa.table(
    "segmentations",
    sa.column("image_id", sa.Integer),
    sa.column("version", sa.Integer),
    sa.column("spheroids", sa.Text),
)
_records = sa.table(
    "spheroid_records",
    sa.column("image_id", sa.Integer),
    sa.column("spheroid_id", sa.Integer),
    sa.column("position", sa.Integer),
    sa.column("first_version", sa.Integer),
    sa.column("end_version", sa.Integer),
    sa.column("record", sa.Text),
)


def upgrade() -> None:
    op.create_table(
        "spheroid_records",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("spheroid_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("first_version", sa.Integer(), nullable=False),
        sa.Column("end_version", sa.Integer(), nullable=True),
        sa.Column("record", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_spheroid_records"),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name="fk_spheroid_records_image_id_images", ondelete="CASCADE"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_spheroid_records_image_end", "spheroid_records", ["image_id", "end_version"])
    op.create_index("ix_spheroid_records_image_spheroid", "spheroid_records", ["image_id", "spheroid_id"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and _has_lz4(bind):
        op.execute("ALTER TABLE spheroid_records ALTER COLUMN record SET COMPRESSION lz4")
    pending: list[dict[str, Any]] = []
    for row in _shared_rows(bind):
        pending.append(row)
        if len(pending) >= BATCH:
            bind.execute(_records.insert(), pending)
            pending = []
    if pending:
        bind.execute(_records.insert(), pending)
    op.execute("ALTER TABLE segmentations DROP COLUMN spheroids")


def _shared_rows(bind: Connection) -> Iterator[dict[str, Any]]:
    """Every row of ``spheroid_records`` for the versions stored, an image at a time, one version read at
    a time."""
    image_ids = bind.execute(
        sa.select(_segmentations.c.image_id).distinct().order_by(_segmentations.c.image_id)
    ).scalars()
    for image_id in list(image_ids):
        versions = bind.execute(
            sa.select(_segmentations.c.version)
            .where(_segmentations.c.image_id == image_id)
            .order_by(_segmentations.c.version)
        ).scalars()
        live: dict[int, dict[str, Any]] = {}
        for version in list(versions):
            stored = bind.execute(
                sa.select(sa.cast(_segmentations.c.spheroids, sa.Text)).where(
                    _segmentations.c.image_id == image_id, _segmentations.c.version == version
                )
            ).scalar()
            records = [(record["id"], json.dumps(_id_first(record))) for record in _json(stored)]
            yield from _next_version(image_id, version, live, records)
        yield from live.values()


def _next_version(
    image_id: int, version: int, live: dict[int, dict[str, Any]], records: list[tuple[int, str]]
) -> Iterator[dict[str, Any]]:
    """Make ``live`` (spheroid id: its open row) the rows of ``version``, holding ``records`` (id, text) in
    order; yield the rows this closes."""
    kept = [live[spheroid_id]["position"] for spheroid_id, _ in records if spheroid_id in live]
    first_new = next((k for k, (spheroid_id, _) in enumerate(records) if spheroid_id not in live), None)
    shares = kept == sorted(set(kept)) and (
        first_new is None or all(spheroid_id not in live for spheroid_id, _ in records[first_new:])
    )
    if not shares:  # reordered: every record gets a row of its own
        for row in live.values():
            yield {**row, "end_version": version}
        live.clear()
    position = max((row["position"] for row in live.values()), default=-1) + 1
    now: dict[int, dict[str, Any]] = {}
    for spheroid_id, text in records:
        old = live.pop(spheroid_id, None)
        if old is not None and old["record"] == text:
            now[spheroid_id] = old
            continue
        if old is not None:
            yield {**old, "end_version": version}
            place = old["position"]
        else:
            place, position = position, position + 1
        now[spheroid_id] = {
            "image_id": image_id,
            "spheroid_id": spheroid_id,
            "position": place,
            "first_version": version,
            "end_version": None,
            "record": text,
        }
    for row in live.values():  # deleted in this version
        yield {**row, "end_version": version}
    live.clear()
    live.update(now)


def _json(value: Any) -> list[Mapping[str, Any]]:
    records = json.loads(value) if isinstance(value, str | bytes) else value
    return list(records or [])


def _id_first(record: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": record["id"], **{key: value for key, value in record.items() if key != "id"}}


def _has_lz4(bind: Connection) -> bool:
    found = bind.execute(
        sa.text(
            "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
        )
    ).scalar()
    return found is not None


def downgrade() -> None:
    op.add_column("segmentations", sa.Column("spheroids", sa.JSON(), nullable=True))
    bind = op.get_bind()
    keys = bind.execute(sa.select(_segmentations.c.image_id, _segmentations.c.version)).all()
    for image_id, version in keys:
        texts = bind.execute(
            sa.select(_records.c.record)
            .where(
                _records.c.image_id == image_id,
                _records.c.first_version <= version,
                sa.or_(_records.c.end_version.is_(None), _records.c.end_version > version),
            )
            .order_by(_records.c.position)
        ).scalars()
        stored = "[" + ",".join(texts) + "]"
        bind.execute(
            sa.text("UPDATE segmentations SET spheroids = :s WHERE image_id = :i AND version = :v"),
            {"s": stored, "i": image_id, "v": version},
        )
    op.drop_table("spheroid_records")
