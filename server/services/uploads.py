"""Adding image files to a project: checked, stored once by content, recorded, and made visible.

:func:`open_upload` checks that the actor may add images to the project and returns a
:class:`ProjectUpload`; each file already on disk is then offered to :meth:`ProjectUpload.add`, which
decodes it with ``cluster`` (format from the bytes; the limits on pixels and on decoded bytes checked from
the header first; every plane, or the first planes of a big stack, decoded), so a damaged or cut-off file
is refused. A file already in the project is reported as a duplicate naming the image that holds it; the
original goes to the blob store under its content hash. Each file is recorded in its own transaction,
under the lock of its content (see :func:`server.db.images.lock_content`), so concurrent uploads of one
file store it once and report the others as duplicates. How the files reach the disk is the entry point's
business (the REST route spools a multipart body, see :mod:`server.api.upload`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import IntegrityError, OperationalError

from cluster import ImageInfo, ImageReadError, check_image
from server.db import images
from server.db.models import Image
from server.domain.roles import Action
from server.events import Event, EventKind
from server.exceptions import StorageError
from server.services.events import announce
from server.services.permissions import Actor, RoleLookup, StoredRoles, require_project_action
from server.services.runtime import Runtime
from server.storage import image_key

__all__ = [
    "Accepted",
    "Duplicate",
    "ProjectUpload",
    "Refused",
    "UploadOutcome",
    "UploadedFile",
    "open_upload",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadedFile:
    """One file as it arrived: complete on disk at ``path``, or ``refused`` (why) while it arrived."""

    name: str
    path: Path | None
    content_hash: str
    size: int
    refused: str | None = None


@dataclass(frozen=True)
class Accepted:
    name: str
    image_id: int
    content_hash: str
    info: ImageInfo


@dataclass(frozen=True)
class Refused:
    name: str
    reason: str


@dataclass(frozen=True)
class Duplicate:
    """The project holds this content already, as image ``image_id`` named ``existing_name``."""

    name: str
    image_id: int
    existing_name: str


UploadOutcome = Accepted | Refused | Duplicate


async def open_upload(
    runtime: Runtime, actor: Actor, project_id: int, lookup: RoleLookup | None = None
) -> ProjectUpload:
    """An upload into the project; :class:`~server.exceptions.PermissionDeniedError` unless ``actor`` may
    edit it (a project that does not exist is refused the same way)."""
    roles = lookup or StoredRoles(runtime.db, actor.user_id)
    await require_project_action(actor, project_id, Action.EDIT, roles, "add images to it")
    return ProjectUpload(runtime, project_id, actor.username)


class ProjectUpload:
    """Files added to one project by an actor :func:`open_upload` let in."""

    def __init__(self, runtime: Runtime, project_id: int, actor: str | None = None) -> None:
        self._runtime = runtime
        self.project_id = project_id
        self._actor = actor

    async def add(self, file: UploadedFile) -> UploadOutcome:
        """Check, store and record one file; every failure is an outcome saying what to do, not an error."""
        name, path = file.name, file.path
        if file.refused or path is None:
            return Refused(name, file.refused or "the file did not arrive whole")
        settings = self._runtime.settings
        try:
            info = await asyncio.to_thread(
                check_image, path, name, settings.max_pixels, max_bytes=settings.max_decoded_bytes
            )
        except ImageReadError as error:
            return Refused(name, error.reason)
        async with self._runtime.db() as db:
            existing = await images.images_with_hashes(db, self.project_id, [file.content_hash])
        if file.content_hash in existing:  # known already: not even sent to the store
            return Duplicate(name, *existing[file.content_hash])
        try:
            # The long part (a big file to S3) comes before the content lock, so the lock is held briefly.
            await self._runtime.store.put_file(image_key(file.content_hash), path, "application/octet-stream")
            recorded = await self._record(_image_row(self.project_id, file, info), path)
        except StorageError as error:
            return Refused(name, f"storage failed: {error}")
        except OperationalError:
            logger.exception("the database refused to record the upload of %s", name)
            return Refused(name, "the database was busy and nothing was stored; upload this file again")
        if not isinstance(recorded, Image):
            return Duplicate(name, *recorded)
        return Accepted(name, recorded.id, file.content_hash, info)

    async def finish(self, outcomes: Sequence[UploadOutcome]) -> None:
        """Count the outcomes, have thumbnails (or a CDN's display masters) made in the background so
        the gallery finds them, and tell the project's followers which images came in (an
        ``image_status`` event with ``data.added``: another member's gallery shows them as they arrive)."""
        runtime = self._runtime
        accepted = [o for o in outcomes if isinstance(o, Accepted)]
        runtime.delivery.schedule_renditions(o.content_hash for o in accepted)
        for outcome in outcomes:
            runtime.metrics.uploads.labels("accepted" if isinstance(outcome, Accepted) else "refused").inc()
        if accepted:
            ids = tuple(o.image_id for o in accepted)
            data = {"added": True}
            await announce(
                runtime, Event(EventKind.IMAGE_STATUS, self.project_id, None, ids, self._actor, data)
            )

    async def _record(self, image: Image, path: Path) -> Image | tuple[int, str]:
        """Add the image under its content's lock, or return ``(id, name)`` of the one that holds its
        content.

        Under the lock the duplicate check is made again (a concurrent upload of the same file may have
        won), and the original is put again if a deletion elsewhere removed it after it was put.
        """
        db_factory, store = self._runtime.db, self._runtime.store
        content_hash = image.content_hash
        try:
            async with db_factory.begin() as db:
                await images.lock_content(db, content_hash)
                existing = await images.images_with_hashes(db, image.project_id, [content_hash])
                if content_hash in existing:
                    return existing[content_hash]
                key = image_key(content_hash)
                if not await store.exists(key):
                    await store.put_file(key, path, "application/octet-stream")
                return await images.add_image(db, image)
        except IntegrityError:  # a database where the lock is not enough: the other upload won all the same
            async with db_factory() as db:
                existing = await images.images_with_hashes(db, image.project_id, [content_hash])
            if content_hash in existing:
                return existing[content_hash]
            raise


def _image_row(project_id: int, file: UploadedFile, info: ImageInfo) -> Image:
    return Image(
        project_id=project_id,
        name=file.name,
        content_hash=file.content_hash,
        format=info.format,
        width=info.width,
        height=info.height,
        bit_depth=info.bit_depth,
        pixel_size_um=info.pixel_size_um,
        byte_size=file.size,
        segmentation_status="none",
        review_status="unreviewed",
        current_version=0,
    )
