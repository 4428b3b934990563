"""The projects list and a project's members against the real app: counts and progress as the server keeps
them, create, rename, delete with what is lost counted first, sharing with roles, refusals in the server's
words."""

from __future__ import annotations

import httpx
import pytest

from server.app import create_app
from tests.server.api.test_projects import SAVE, SQUARE
from tests.server.conftest import Api, png_bytes
from workbench.api import ApiError, LabClient
from workbench.projects import Members, Projects, ProjectSummary

pytestmark = pytest.mark.anyio

REVIEW = """mutation($i: Int!) { setReview(images: [{imageId: $i, version: 1}], status: ACCEPTED) {
  __typename } }"""


def _client(api: Api, token: str) -> LabClient:
    transport = httpx.ASGITransport(app=create_app(services=api.services))
    return LabClient("http://testserver", token=token, transport=transport)


async def test_the_list_counts_images_segmented_and_accepted_and_follows_changes(api: Api) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner, "Plate 2")
    files = [(f"well{k}.png", png_bytes(seed=k)) for k in range(4)]
    ids = [f["imageId"] for f in (await api.upload(owner, project_id, files)).json()["files"]]
    await api.ok(SAVE, owner, id=ids[0], base=0, sph=[{"exterior": SQUARE}])
    await api.ok(REVIEW, owner, i=ids[0])
    seen: list[list[ProjectSummary]] = []
    async with _client(api, owner) as client:
        projects = Projects(client, can_share=True)
        projects.changed.connect(seen.append)
        await projects.load()
        created = await projects.create("Plate 1")
        plate2 = projects.find(project_id)
        assert plate2 is not None
        assert (plate2.image_count, plate2.segmented_count, plate2.accepted_count) == (4, 1, 1)
        assert plate2.progress_text == "1 of 4 segmented, 1 accepted"
        assert plate2.progress == 0.25 and plate2.my_role == "OWNER"
        assert [p.name for p in projects.items] == ["Plate 1", "Plate 2"]  # by name
        assert projects.find(created) is not None and projects.find(created).progress_text == "no images yet"  # type: ignore[union-attr]

        await projects.rename(created, "Plate 0 (controls)")
        assert [p.name for p in projects.items] == ["Plate 0 (controls)", "Plate 2"]
        with pytest.raises(ApiError, match="name"):
            await projects.rename(created, "")
        with pytest.raises(ApiError, match="name"):
            await projects.create("  ")
    assert len(seen) == 3  # load, create, rename: a view redraws each time


async def test_deleting_names_what_is_lost_then_removes_the_project(api: Api) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner, "Old plate")
    files = [(f"well{k}.png", png_bytes(seed=k)) for k in range(3)]
    ids = [f["imageId"] for f in (await api.upload(owner, project_id, files)).json()["files"]]
    for image_id in ids[:2]:
        await api.ok(SAVE, owner, id=image_id, base=0, sph=[{"exterior": SQUARE}])
    async with _client(api, owner) as client:
        projects = Projects(client, can_share=False)
        await projects.load()
        cost = await projects.deletion_cost(project_id)
        assert (cost.images, cost.segmentations, cost.spheroids, cost.exports) == (3, 2, 2, 0)
        assert "3 images" in cost.text and "2 segmentations (2 spheroids)" in cost.text
        assert "0 exports" in cost.text and "cannot be undone" in cost.text
        assert "Old plate" in cost.text
        await projects.delete(project_id)
        assert projects.items == []


async def test_owners_share_with_roles_and_the_last_owner_stays(api: Api) -> None:
    owner = await api.user("owner")
    await api.user("bea")
    project_id = await api.project(owner)
    async with _client(api, owner) as client:
        members = Members(client, project_id)
        await members.load()
        assert members.can_manage
        assert [(m.username, m.role) for m in members.items] == [("owner", "OWNER")]
        await members.add("bea", "EDITOR")
        assert [(m.username, m.role) for m in members.items] == [("owner", "OWNER"), ("bea", "EDITOR")]
        await members.add("bea", "VIEWER")  # a new role replaces the old one
        assert [(m.username, m.role) for m in members.items][1] == ("bea", "VIEWER")
        with pytest.raises(ApiError, match="nobody"):
            await members.add("nobody", "EDITOR")
        with pytest.raises(ApiError, match="owner"):
            await members.remove("owner")
        await members.remove("bea")
        assert [m.username for m in members.items] == ["owner"]
        with pytest.raises(ValueError, match="role"):
            await members.add("bea", "ADMIN")
