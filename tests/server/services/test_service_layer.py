"""The service layer called directly, as the command line and (later) the desktop's offline mode call it:
each service checks who asks itself, without GraphQL's permission classes or the upload route in front
(SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from server.db import users as user_rows
from server.db.images import images_by_ids
from server.domain.errors import UsernameTakenError
from server.domain.roles import UserRole
from server.domain.spheroids import SpheroidDraft
from server.domain.versions import Provenance, SaveOrigin
from server.events import EventKind
from server.exceptions import PermissionDeniedError
from server.services import segmentations, uploads, users
from server.services.permissions import Actor
from tests.server.conftest import Api, png_bytes

pytestmark = pytest.mark.anyio

SQUARE = [[10.0, 10.0], [30.0, 10.0], [30.0, 30.0], [10.0, 30.0]]


async def _actor(api: Api, username: str) -> Actor:
    async with api.services.db() as db:
        user = await user_rows.user_by_name(db, username)
    assert user is not None
    return Actor.of(user)


def _file(folder: Path, name: str, data: bytes) -> uploads.UploadedFile:
    path = folder / name
    path.write_bytes(data)
    return uploads.UploadedFile(name, path, hashlib.sha256(data).hexdigest(), len(data))


async def test_upload_service_lets_only_editors_in_and_stores_each_content_once(
    api: Api, tmp_path: Path
) -> None:
    owner = await api.user("owner")
    await api.user("viewer")
    project_id = await api.project(owner)
    await api.share(owner, project_id, "viewer", "VIEWER")
    viewer, editor = await _actor(api, "viewer"), await _actor(api, "owner")

    for who, project in ((viewer, project_id), (editor, project_id + 1000)):  # a stranger learns nothing
        with pytest.raises(PermissionDeniedError, match="not found, or you may not add images to it"):
            await uploads.open_upload(api.services, who, project)

    upload = await uploads.open_upload(api.services, editor, project_id)
    data = png_bytes(seed=4)
    first = await upload.add(_file(tmp_path, "a.png", data))
    again = await upload.add(_file(tmp_path, "copy.png", data))
    assert isinstance(first, uploads.Accepted) and first.info.width == 64
    assert again == uploads.Duplicate("copy.png", first.image_id, "a.png")

    # the project's followers (another member's gallery) learn which images came in, and from whom
    subscription = api.services.bus.subscribe(project_id=project_id, kinds={EventKind.IMAGE_STATUS})
    try:
        await upload.finish([first, again])
        event = await subscription.get(timeout=10)
    finally:
        subscription.close()
    assert event is not None and event.image_ids == (first.image_id,) and event.actor == "owner"
    assert dict(event.data) == {"added": True}


async def test_save_service_refuses_a_viewer_and_saves_nothing(api: Api) -> None:
    owner = await api.user("owner")
    await api.user("viewer")
    project_id = await api.project(owner)
    await api.share(owner, project_id, "viewer", "VIEWER")
    image_id = (await api.upload(owner, project_id, [("a.png", png_bytes())])).json()["files"][0]["imageId"]
    drafts = [SpheroidDraft(SQUARE, [])]
    provenance = Provenance("", "", {})

    with pytest.raises(PermissionDeniedError):
        await segmentations.save_spheroids(
            api.services, await _actor(api, "viewer"), image_id, 0, drafts, SaveOrigin.EDIT, provenance
        )
    async with api.services.db() as db:
        assert (await images_by_ids(db, [image_id]))[image_id].current_version == 0

    row = await segmentations.save_spheroids(
        api.services, await _actor(api, "owner"), image_id, 0, drafts, SaveOrigin.EDIT, provenance
    )
    assert (row.version, row.spheroid_count) == (1, 1)


async def test_creating_users_needs_an_administrator_or_the_operator(api: Api) -> None:
    await api.user("member")
    member = await _actor(api, "member")
    services = api.services
    password = "long enough password"

    with pytest.raises(PermissionDeniedError, match="only an administrator"):
        await users.create_user(services.db, services.passwords, member, "eve", password, UserRole.ADMIN)
    created = await users.create_user(services.db, services.passwords, None, "ana", password, UserRole.MEMBER)
    assert (created.username, created.role) == ("ana", "member")
    with pytest.raises(UsernameTakenError):
        await users.create_user(services.db, services.passwords, None, "ana", password, UserRole.MEMBER)
