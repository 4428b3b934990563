"""The editor's changes as the real server takes them: outlines loaded from geometryUrl, edited here, sent
to editSegmentation, and the next version's geometry holding exactly what the editor shows."""

from __future__ import annotations

from typing import Any

import pytest

from cluster import decode_outlines
from tests.server.conftest import Api, png_bytes
from tests.workbench.editing.shapes import rectangle
from workbench.editing import Editor, ImageOutlines

pytestmark = pytest.mark.anyio

EDIT = """mutation($i: Int!, $base: Int!, $changes: SegmentationChangesInput!) {
  editSegmentation(imageId: $i, baseVersion: $base, changes: $changes) {
    __typename
    ... on SegmentationEditSuccess { merged newIds segmentation { version } }
    ... on InvalidSpheroids { problems }
  }
}"""
GEOMETRY = "query($i: Int!) { image(id: $i) { segmentation { version geometryUrl } } }"


async def _image_with_two_squares(api: Api, owner: str) -> int:
    project_id = await api.project(owner)
    response = await api.upload(owner, project_id, [("a.png", png_bytes())])
    image_id: int = response.json()["files"][0]["imageId"]
    squares = [rectangle(2, 2, 12, 12).tolist(), rectangle(20, 2, 30, 12).tolist()]
    await api.ok(
        "mutation($i: Int!, $s: [SpheroidInput!]!) { saveSegmentation(imageId: $i, baseVersion: 0, "
        "spheroids: $s) { __typename } }",
        owner,
        i=image_id,
        s=[{"exterior": square} for square in squares],
    )
    return image_id


async def _outlines(api: Api, owner: str, image_id: int) -> ImageOutlines:
    url = (await api.ok(GEOMETRY, owner, i=image_id))["image"]["segmentation"]["geometryUrl"]
    return ImageOutlines.of(decode_outlines((await api.client.get(url)).content))


async def test_edits_saved_through_edit_segmentation_come_back_as_the_editor_shows_them(api: Api) -> None:
    owner = await api.user("owner")
    image_id = await _image_with_two_squares(api, owner)
    outlines = await _outlines(api, owner, image_id)
    first, second = list(outlines)
    editor = Editor(outlines)
    editor.brush(first, [[12, 7], [16, 7]], 2)
    editor.delete([second])
    drawn = next(iter(editor.draw(rectangle(40, 20, 50, 30)).after))
    changes = outlines.changes()

    result: dict[str, Any] = (
        await api.ok(EDIT, owner, i=image_id, base=outlines.version, changes=changes.as_input())
    )["editSegmentation"]
    assert result["__typename"] == "SegmentationEditSuccess" and not result["merged"]
    outlines.saved(changes, result["segmentation"]["version"], result["newIds"])
    assert not outlines.changes()

    stored = await _outlines(api, owner, image_id)
    assert stored.version == outlines.version
    assert set(stored) == {outlines.server_id(first), outlines.server_id(drawn)}
    for key in (first, drawn):
        mine, theirs = outlines[key].polygon(), stored[outlines.server_id(key) or 0].polygon()
        assert theirs.symmetric_difference(mine).area < 0.01  # the format keeps 1/256 px


async def test_the_server_refuses_an_id_it_does_not_know_which_is_why_new_spheroids_go_without_one(
    api: Api,
) -> None:
    owner = await api.user("owner")
    image_id = await _image_with_two_squares(api, owner)
    outlines = await _outlines(api, owner, image_id)
    provisional = {"id": 999, "exterior": rectangle(40, 20, 50, 30).tolist(), "holes": []}
    result = (
        await api.ok(EDIT, owner, i=image_id, base=outlines.version, changes={"upsert": [provisional]})
    )["editSegmentation"]
    assert result["__typename"] == "InvalidSpheroids"
    assert "has no spheroid 999" in result["problems"][0]
