"""Tables: users, sessions, bootstrap tokens, projects, project members, images, segmentations, reviews
and project counters.

Enumerations are stored as short strings (checked by the domain, portable across SQLite and PostgreSQL).
A segmentation row is one saved version; ``images.current_version`` names the current one (0: none), so
the current segmentations of a page of images come in one query, and old versions stay. A version's
spheroids are rows of ``spheroid_records``, shared by every version that holds them unchanged.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cluster import SpheroidMetrics

__all__ = [
    "Base",
    "BootstrapToken",
    "Image",
    "Job",
    "Project",
    "ProjectMember",
    "ProjectStatsRow",
    "Review",
    "SegmentationVersion",
    "Session",
    "SigningKey",
    "Task",
    "User",
    "spheroid_records",
    "spheroid_rows",
    "utcnow",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


NEVER_REUSE_IDS: dict[str, Any] = {"sqlite_autoincrement": True}
"""Table option: SQLite never gives a deleted row's id to a new one (PostgreSQL's sequences never do)."""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: DateTime(timezone=True)}


class User(Base):
    __tablename__ = "users"
    __table_args__ = NEVER_REUSE_IDS
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="member")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Session(Base):
    __tablename__ = "sessions"
    __table_args__ = NEVER_REUSE_IDS
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]
    """When a request last came with it (written at most every few minutes; ``None``: not since login)."""


class BootstrapToken(Base):
    """A one-time token the offline start prints, exchanged for a session (only its hash is kept)."""

    __tablename__ = "bootstrap_tokens"
    __table_args__ = NEVER_REUSE_IDS
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = NEVER_REUSE_IDS
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ProjectMember(Base):
    __tablename__ = "project_members"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16))


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("project_id", "content_hash", name="uq_images_project_hash"),
        Index("ix_images_project_name", "project_id", "name", "id"),
        Index("ix_images_project_created", "project_id", "created_at", "id"),
        NEVER_REUSE_IDS,
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    content_hash: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(16))
    width: Mapped[int]
    height: Mapped[int]
    bit_depth: Mapped[int]
    pixel_size_um: Mapped[float | None] = mapped_column(Float)
    byte_size: Mapped[int] = mapped_column(Integer)
    segmentation_status: Mapped[str] = mapped_column(String(16), default="none")
    review_status: Mapped[str] = mapped_column(String(16), default="unreviewed")
    review_comment: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[dt.datetime | None]
    current_version: Mapped[int] = mapped_column(default=0)
    # The current segmentation's totals, copied here so that the project's counters (``ProjectStatsRow``,
    # kept by triggers on this table) never need to read segmentations.
    spheroid_count: Mapped[int] = mapped_column(default=0, server_default="0")
    area_sum_px: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    diameter_sum_px: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # The largest spheroid id ever given out in this image (ids are never given out twice, even after a
    # revert brings back an older version).
    last_spheroid_id: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SegmentationVersion(Base):
    """One saved version of an image's segmentation: who, when, from what, and the totals of its spheroids
    (the spheroids themselves are :data:`spheroid_records`)."""

    __tablename__ = "segmentations"
    __table_args__ = (
        UniqueConstraint("image_id", "version", name="uq_segmentations_image_version"),
        NEVER_REUSE_IDS,
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    version: Mapped[int]
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    origin: Mapped[str] = mapped_column(String(16), default="edit", server_default="edit")  # SaveOrigin
    model_name: Mapped[str] = mapped_column(String(100), default="")
    model_version: Mapped[str] = mapped_column(String(100), default="")
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    spheroid_count: Mapped[int] = mapped_column(default=0)
    area_sum_px: Mapped[float] = mapped_column(Float, default=0.0)
    diameter_sum_px: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Review(Base):
    """One verdict on an image, as given: the image row holds the latest; these rows are its history."""

    __tablename__ = "reviews"
    __table_args__ = (Index("ix_reviews_image_id", "image_id", "id"), NEVER_REUSE_IDS)
    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int]
    """The segmentation version the verdict is about (0: the image had none)."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ProjectStatsRow(Base):
    """A project's image counters, written only by the database triggers of migration 0002."""

    __tablename__ = "project_stats"
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    image_count: Mapped[int] = mapped_column(server_default="0")
    segmented_images: Mapped[int] = mapped_column(server_default="0")
    spheroid_count: Mapped[int] = mapped_column(server_default="0")
    area_sum_px: Mapped[float] = mapped_column(Float, server_default="0")
    diameter_sum_px: Mapped[float] = mapped_column(Float, server_default="0")
    status_none: Mapped[int] = mapped_column(server_default="0")
    status_queued: Mapped[int] = mapped_column(server_default="0")
    status_running: Mapped[int] = mapped_column(server_default="0")
    status_done: Mapped[int] = mapped_column(server_default="0")
    status_failed: Mapped[int] = mapped_column(server_default="0")
    review_unreviewed: Mapped[int] = mapped_column(server_default="0")
    review_accepted: Mapped[int] = mapped_column(server_default="0")
    review_needs_fix: Mapped[int] = mapped_column(server_default="0")
    review_rejected: Mapped[int] = mapped_column(server_default="0")


class Job(Base):
    """A request to segment images (``kind`` ``segment``; its counters and status move with its tasks,
    server.domain.jobs) or to export them (``kind`` ``export``; no tasks, see server.services.exports)."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_project_id", "project_id", "id"), NEVER_REUSE_IDS)
    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16), default="segment", server_default="segment")
    method: Mapped[str] = mapped_column(String(50))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16))
    total: Mapped[int]
    done: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    cancelled: Mapped[int] = mapped_column(default=0)
    last_image_id: Mapped[int | None]
    problem: Mapped[str | None] = mapped_column(Text)
    """Why the job is not moving (the cluster cannot be reached); cleared by the next stored result."""
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    result_key: Mapped[str | None] = mapped_column(String(255))
    """An export's zip in the blob store, once written."""
    result_expires_at: Mapped[dt.datetime | None]
    """When that zip is swept (its download URL never outlives it)."""
    heartbeat_at: Mapped[dt.datetime | None]
    """An export job's server was alive then (a job whose heartbeat stops is failed by another)."""


class Task(Base):
    """One image of a job."""

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("job_id", "image_id", name="uq_tasks_job_id"),
        Index("ix_tasks_status", "status", "job_id", "id"),
        NEVER_REUSE_IDS,
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    result_version: Mapped[int | None]
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]


class SigningKey(Base):
    """A rotation of the image URL key: the key is derived from the secret key and ``salt``, never stored."""

    __tablename__ = "signing_keys"
    __table_args__ = NEVER_REUSE_IDS
    id: Mapped[int] = mapped_column(primary_key=True)
    salt: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


spheroid_records = Table(
    "spheroid_records",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("image_id", ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
    Column("spheroid_id", Integer, nullable=False),
    Column("position", Integer, nullable=False),
    Column("first_version", Integer, nullable=False),
    Column("end_version", Integer, nullable=True),
    Column("record", Text, nullable=False),
    Index("ix_spheroid_records_image_end", "image_id", "end_version"),
    Index("ix_spheroid_records_image_spheroid", "image_id", "spheroid_id"),
    **NEVER_REUSE_IDS,
)
"""The spheroids of every version, each stored once for the run of versions that hold it unchanged: a row
belongs to versions ``first_version`` up to (not including) ``end_version`` of its image (``NULL``: still
current). ``record`` is the spheroid's stored JSON (:mod:`server.db.records`), ``position`` its place in
those versions. A row is never changed but for closing its run: an edit of one spheroid closes one row and
adds one. Written only by :mod:`server.db.spheroid_records`."""


def _metric_column(name: str) -> Column[Any]:
    return Column(name, Integer if name == "hole_count" else Float, nullable=True)


spheroid_rows = Table(
    "spheroid_rows",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("image_id", ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
    Column("spheroid_id", Integer, nullable=False),
    Column("touches_border", Boolean, nullable=False),
    *[_metric_column(name) for name in SpheroidMetrics.names()],
    Index("ix_spheroid_rows_project_image", "project_id", "image_id", "spheroid_id"),
    Index("ix_spheroid_rows_image_id", "image_id"),
)
"""One row per spheroid of each image's *current* segmentation: the project-wide table that pages, sorts
and filters spheroids by a metric in SQL. Derived from the stored versions (the JSON of
:mod:`server.db.records` stays the truth): written only by :func:`server.db.spheroid_table.index_version`,
which the one save function calls, and emptied with its image or project (``ON DELETE CASCADE``). Its
metric columns are :meth:`cluster.SpheroidMetrics.names` (``hole_count`` an integer, the rest floats;
``NULL`` for a µm value without a pixel size, and for every metric of a spheroid stored unmeasured)."""
