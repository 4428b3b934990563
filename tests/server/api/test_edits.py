"""``editSegmentation``: an edit sends only the spheroids it changes; edits of different spheroids from the
same version both land (the later one merged), edits of the same spheroid or of one deleted meanwhile are
conflicts that name it with both shapes and store nothing. History is paged and any version can be fetched
by number (SQLite and PostgreSQL).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

import server.domain.spheroids as drafts_module
import server.services.segmentations as edit_service
from cluster.segmentation import Spheroid, as_ring
from server.db.models import spheroid_rows
from server.db.segmentations import save_segmentation
from server.domain.versions import SaveOrigin, SegmentationSave
from server.events import EventKind
from tests.server.api.test_projects import SAVE
from tests.server.conftest import Api, png_bytes
from tests.server.records import stored_records

pytestmark = pytest.mark.anyio

EDIT = """mutation($id: Int!, $base: Int!, $up: [SpheroidUpsertInput!]! = [], $del: [Int!]! = []) {
  editSegmentation(imageId: $id, baseVersion: $base, changes: {upsert: $up, delete: $del}) {
    __typename
    ... on SegmentationEditSuccess { merged newIds segmentation { version author origin spheroidCount } }
    ... on EditConflict { message baseVersion currentVersion ids
      conflicts { id reason
        mine { id exterior metrics { areaPx } } theirs { id exterior metrics { areaPx } } } }
    ... on InvalidSpheroids { problems }
    ... on InputError { field message }
  }
}"""
SHAPES = """query($id: Int!) { image(id: $id) { updatedAt
  segmentation { version spheroids { id exterior metrics { areaPx } } } } }"""
HISTORY = """query($id: Int!, $first: Int!, $before: Int) { image(id: $id) {
  segmentationHistory(first: $first, before: $before) { version author origin createdAt spheroidCount } } }"""
AT_VERSION = """query($id: Int!, $v: Int!) { image(id: $id) {
  segmentation(version: $v) { version origin author spheroids { id exterior } } } }"""


def _square(x: int, size: int = 10) -> list[list[float]]:
    return [[x, 2], [x + size, 2], [x + size, 2 + size], [x, 2 + size]]


A, B, C = _square(2), _square(20), _square(40)  # 100 px each, in a 64 x 48 image


async def _three_squares(api: Api) -> tuple[str, str, int, int]:
    """An owner and an editor of a project whose image has version 1: squares A, B, C with ids 1, 2, 3."""
    owner = await api.user("owner")
    editor = await api.user("anna")
    project_id = await api.project(owner)
    await api.share(owner, project_id, "anna", "EDITOR")
    response = await api.upload(owner, project_id, [("a.png", png_bytes())])
    image_id = response.json()["files"][0]["imageId"]
    saved = await api.ok(SAVE, owner, id=image_id, base=0, sph=[{"exterior": s} for s in (A, B, C)])
    assert saved["saveSegmentation"]["segmentation"]["version"] == 1
    return owner, editor, project_id, image_id


async def _edit(api: Api, token: str, image_id: int, base: int, **changes: Any) -> dict[str, Any]:
    result: dict[str, Any] = (await api.ok(EDIT, token, id=image_id, base=base, **changes))[
        "editSegmentation"
    ]
    return result


async def _shapes(api: Api, token: str, image_id: int) -> tuple[int, dict[int, Any]]:
    segmentation = (await api.ok(SHAPES, token, id=image_id))["image"]["segmentation"]
    return segmentation["version"], {s["id"]: s["exterior"] for s in segmentation["spheroids"]}


async def _stored(api: Api, image_id: int) -> dict[int, list[Any]]:
    async with api.services.db() as db:
        return await stored_records(db, image_id)


async def test_two_people_editing_different_spheroids_of_one_version_both_land(api: Api) -> None:
    owner, editor, _, image_id = await _three_squares(api)

    first = await _edit(api, owner, image_id, 1, up=[{"id": 1, "exterior": _square(2, 20)}])
    second = await _edit(api, editor, image_id, 1, up=[{"id": 3, "exterior": _square(40, 5)}])

    assert first == {
        "__typename": "SegmentationEditSuccess",
        "merged": False,
        "newIds": [],
        "segmentation": {"version": 2, "author": "owner", "origin": "EDIT", "spheroidCount": 3},
    }
    assert second["__typename"] == "SegmentationEditSuccess" and second["merged"] is True
    assert second["segmentation"] == {"version": 3, "author": "anna", "origin": "EDIT", "spheroidCount": 3}
    assert await _shapes(api, owner, image_id) == (3, {1: _square(2, 20), 2: B, 3: _square(40, 5)})
    areas = {
        s["id"]: s["metrics"]["areaPx"]
        for s in (await api.ok(SHAPES, owner, id=image_id))["image"]["segmentation"]["spheroids"]
    }
    assert areas == {1: pytest.approx(400), 2: pytest.approx(100), 3: pytest.approx(25)}


async def test_an_edit_measures_only_what_it_changed_and_keeps_the_rest_as_stored(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, _, _, image_id = await _three_squares(api)
    measured: list[int] = []
    real_measure = drafts_module.measure

    def counted(spheroid: Spheroid, pixel_size_um: float | None) -> Any:
        measured.append(len(spheroid.exterior))
        return real_measure(spheroid, pixel_size_um)

    monkeypatch.setattr(drafts_module, "measure", counted)

    result = await _edit(
        api, owner, image_id, 1, up=[{"id": 2, "exterior": _square(20, 5)}, {"exterior": _square(2, 4)}]
    )

    assert result["newIds"] == [4] and result["segmentation"]["spheroidCount"] == 4
    assert len(measured) == 2  # the reshaped and the new spheroid; not the two untouched ones
    stored = await _stored(api, image_id)
    before, after = ({r["id"]: r for r in stored[v]} for v in (1, 2))
    assert after[1] == before[1] and after[3] == before[3]  # rings and metrics as they were stored
    assert after[2]["metrics"]["area_px"] == pytest.approx(25)
    assert [r["id"] for r in stored[2]] == [1, 2, 3, 4]  # replaced in place, the new one last


async def test_new_spheroids_get_ids_in_the_order_sent_and_deletions_go(api: Api) -> None:
    owner, _, _, image_id = await _three_squares(api)

    result = await _edit(
        api,
        owner,
        image_id,
        1,
        up=[{"exterior": _square(2, 30)}, {"exterior": _square(50, 4)}],
        **{"del": [1]},
    )

    assert result["newIds"] == [4, 5]
    assert await _shapes(api, owner, image_id) == (2, {2: B, 3: C, 4: _square(2, 30), 5: _square(50, 4)})


async def test_editing_the_same_spheroid_is_a_conflict_with_both_shapes_and_nothing_is_stored(
    api: Api,
) -> None:
    owner, editor, _, image_id = await _three_squares(api)
    await _edit(api, owner, image_id, 1, up=[{"id": 2, "exterior": _square(20, 20)}])

    conflict = await _edit(
        api,
        editor,
        image_id,
        1,
        up=[{"id": 2, "exterior": _square(20, 5)}, {"id": 3, "exterior": _square(40, 5)}],
    )

    assert conflict["__typename"] == "EditConflict"
    assert (conflict["baseVersion"], conflict["currentVersion"], conflict["ids"]) == (1, 2, [2])
    assert "2" in conflict["message"]
    (spheroid,) = conflict["conflicts"]
    assert spheroid["id"] == 2 and spheroid["reason"] == "CHANGED"
    assert spheroid["mine"]["exterior"] == _square(20, 5)
    assert spheroid["mine"]["metrics"]["areaPx"] == pytest.approx(25)
    assert spheroid["theirs"] == {
        "id": 2,
        "exterior": _square(20, 20),
        "metrics": {"areaPx": pytest.approx(400)},
    }
    assert await _shapes(api, owner, image_id) == (2, {1: A, 2: _square(20, 20), 3: C})  # spheroid 3 too


async def test_an_edit_of_a_spheroid_the_other_deleted_is_a_conflict_and_so_is_the_reverse(api: Api) -> None:
    owner, editor, _, image_id = await _three_squares(api)
    await _edit(api, owner, image_id, 1, **{"del": [1]})
    await _edit(api, owner, image_id, 2, up=[{"id": 3, "exterior": _square(40, 20)}])

    edited = await _edit(api, editor, image_id, 1, up=[{"id": 1, "exterior": _square(2, 5)}])
    deleted = await _edit(api, editor, image_id, 1, **{"del": [3]})

    assert edited["__typename"] == "EditConflict" and edited["currentVersion"] == 3
    assert edited["conflicts"] == [
        {
            "id": 1,
            "reason": "DELETED",
            "mine": {"id": 1, "exterior": _square(2, 5), "metrics": {"areaPx": 25.0}},
            "theirs": None,
        }
    ]
    assert deleted["__typename"] == "EditConflict"
    ((spheroid),) = deleted["conflicts"]
    assert (spheroid["id"], spheroid["reason"], spheroid["mine"]) == (3, "CHANGED", None)
    assert spheroid["theirs"]["exterior"] == _square(40, 20)
    assert await _shapes(api, owner, image_id) == (3, {2: B, 3: _square(40, 20)})


async def test_after_a_job_replaced_every_spheroid_each_edited_one_was_deleted_by_the_other(api: Api) -> None:
    owner, _, _, image_id = await _three_squares(api)
    job_result = [Spheroid(as_ring(_square(2, 30)))]
    async with api.services.db.begin() as db:
        await save_segmentation(db, SegmentationSave(image_id, 1, job_result, SaveOrigin.JOB))

    conflict = await _edit(api, owner, image_id, 1, up=[{"id": 1, "exterior": A}], **{"del": [2]})

    assert conflict["__typename"] == "EditConflict" and conflict["ids"] == [1, 2]
    assert {c["reason"] for c in conflict["conflicts"]} == {"DELETED"}
    assert await _shapes(api, owner, image_id) == (2, {4: _square(2, 30)})


async def test_an_edit_that_lands_while_another_is_stored_is_merged_on_top_of_it(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other edit commits after this one read the current version and before it stored its own."""
    owner, editor, _, image_id = await _three_squares(api)
    real_stored_version = edit_service.segmentations.stored_version
    other: list[dict[str, Any]] = []
    calls: list[int] = []

    async def other_saves_first(*args: Any) -> Any:
        found = await real_stored_version(*args)
        calls.append(1)
        if len(calls) == 1:  # the editor's first read; the owner's edit reads through here too
            other.append(await _edit(api, owner, image_id, 1, up=[{"id": 1, "exterior": _square(2, 5)}]))
        return found

    monkeypatch.setattr(edit_service.segmentations, "stored_version", other_saves_first)
    mine = await _edit(api, editor, image_id, 1, up=[{"id": 2, "exterior": _square(20, 5)}])

    assert other[0]["segmentation"]["version"] == 2
    assert mine["__typename"] == "SegmentationEditSuccess" and mine["merged"] is True
    assert mine["segmentation"]["version"] == 3
    assert await _shapes(api, owner, image_id) == (3, {1: _square(2, 5), 2: _square(20, 5), 3: C})


async def test_a_viewer_may_not_edit(api: Api) -> None:
    owner, _, project_id, image_id = await _three_squares(api)
    viewer = await api.user("victor")
    await api.share(owner, project_id, "victor", "VIEWER")

    body = await api.gql(EDIT, viewer, id=image_id, base=1, up=[{"id": 1, "exterior": _square(2, 5)}])

    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await _shapes(api, owner, image_id) == (1, {1: A, 2: B, 3: C})


async def test_invalid_rings_and_unknown_ids_are_named_and_nothing_is_stored(api: Api) -> None:
    owner, _, _, image_id = await _three_squares(api)

    outside = await _edit(
        api,
        owner,
        image_id,
        1,
        up=[{"id": 1, "exterior": A}, {"id": 2, "exterior": [[20, 2], [90, 2], [90, 9]]}],
    )
    unknown = await _edit(api, owner, image_id, 1, up=[{"id": 9, "exterior": A}], **{"del": [1, 1]})
    too_new = await _edit(api, owner, image_id, 5, **{"del": [1]})

    assert outside["__typename"] == "InvalidSpheroids"
    (problem,) = outside["problems"]
    assert problem.startswith("spheroid 1 (id 2), exterior ring: vertex (90, 2) lies outside")
    assert unknown["__typename"] == "InvalidSpheroids"
    assert unknown["problems"] == [
        "spheroid 0 (id 9): version 1 has no spheroid 9",
        "delete 1 (id 1): id 1 is named by delete 0 (id 1) too",
    ]
    assert too_new == {
        "__typename": "InputError",
        "field": "baseVersion",
        "message": f"image {image_id} has versions 0 to 1, not 5",
    }
    assert await _shapes(api, owner, image_id) == (1, {1: A, 2: B, 3: C})


async def test_an_edit_is_announced_and_updates_the_image(api: Api) -> None:
    owner, _, project_id, image_id = await _three_squares(api)
    before = (await api.ok(SHAPES, owner, id=image_id))["image"]["updatedAt"]
    subscription = api.services.bus.subscribe(project_id=project_id, kinds={EventKind.SEGMENTATION_SAVED})
    try:
        await _edit(api, owner, image_id, 1, **{"del": [3]})
        event = await subscription.get(timeout=10)
    finally:
        subscription.close()

    assert event is not None and event.image_ids == (image_id,) and event.actor == "owner"
    assert dict(event.data) == {"version": 2, "spheroidCount": 2, "origin": "edit"}
    assert (await api.ok(SHAPES, owner, id=image_id))["image"]["updatedAt"] > before


async def test_history_is_paged_and_any_version_can_be_fetched_by_number(api: Api) -> None:
    owner, editor, _, image_id = await _three_squares(api)
    for version, token in ((1, editor), (2, owner), (3, editor), (4, owner)):
        await _edit(api, token, image_id, version, up=[{"id": 1, "exterior": _square(2, 2 + version)}])

    pages = []
    before = None
    while True:
        page = (await api.ok(HISTORY, owner, id=image_id, first=2, before=before))["image"][
            "segmentationHistory"
        ]
        if not page:
            break
        pages.append([(h["version"], h["author"], h["origin"]) for h in page])
        before = page[-1]["version"]

    assert pages == [
        [(5, "owner", "EDIT"), (4, "anna", "EDIT")],
        [(3, "owner", "EDIT"), (2, "anna", "EDIT")],
        [(1, "owner", "EDIT")],
    ]
    two = (await api.ok(AT_VERSION, owner, id=image_id, v=2))["image"]["segmentation"]
    assert (two["version"], two["origin"], two["author"]) == (2, "EDIT", "anna")
    assert {s["id"]: s["exterior"] for s in two["spheroids"]} == {1: _square(2, 3), 2: B, 3: C}
    assert (await api.ok(AT_VERSION, owner, id=image_id, v=9))["image"]["segmentation"] is None
    too_many = await api.gql(HISTORY, owner, id=image_id, first=101)
    assert "first: must be between 0 and 100" in too_many["errors"][0]["message"]


TABLE = """query($p: Int!) { project(id: $p) { spheroids(first: 50) {
  edges { node { spheroidId version metrics { areaPx } } } } } }"""


async def test_the_projects_spheroid_table_follows_an_edit(api: Api) -> None:
    """Changed, deleted and added spheroids show in the table at once; the untouched one moves to the new
    version without being written again (its row is the same row)."""
    owner, _, project_id, image_id = await _three_squares(api)
    async with api.services.db() as db:
        untouched_row = await db.scalar(select(spheroid_rows.c.id).where(spheroid_rows.c.spheroid_id == 3))

    changes = {"up": [{"id": 1, "exterior": _square(2, 20)}, {"exterior": _square(50, 4)}], "del": [2]}
    await _edit(api, owner, image_id, 1, **changes)

    rows = (await api.ok(TABLE, owner, p=project_id))["project"]["spheroids"]["edges"]
    table = {n["node"]["spheroidId"]: (n["node"]["version"], n["node"]["metrics"]["areaPx"]) for n in rows}
    assert table == {1: (2, pytest.approx(400)), 3: (2, pytest.approx(100)), 4: (2, pytest.approx(16))}
    async with api.services.db() as db:
        row = await db.scalar(select(spheroid_rows.c.id).where(spheroid_rows.c.spheroid_id == 3))
    assert row == untouched_row
