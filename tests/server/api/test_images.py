"""What a review session asks of a project's images, through the real app: pages both ways with positions,
refetching what an event named, catching up by ``updatedSince``, versioned reviews with their history,
``updateImage`` and ``imagesByHash``."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from typing import Any

import pytest

from tests.server.api.test_segmentations import _csv_rows
from tests.server.conftest import Api, png_bytes

pytestmark = pytest.mark.anyio

SQUARE = [[10, 10], [30, 10], [30, 30], [10, 30]]
SAVE = """mutation($id: Int!, $base: Int!, $sph: [SpheroidInput!]!) {
  saveSegmentation(imageId: $id, baseVersion: $base, spheroids: $sph) { __typename } }"""
PAGE = """query($p: Int!, $first: Int, $after: String, $last: Int, $before: String, $ids: [Int!],
  $since: DateTime, $order: ImageOrder, $filter: ImageFilterInput) {
  project(id: $p) { images(first: $first, after: $after, last: $last, before: $before, ids: $ids,
    updatedSince: $since, orderBy: $order, filter: $filter) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { position cursor node { id name updatedAt } } } } }"""
REVIEW = """mutation($r: [ReviewedImageInput!]!, $s: ReviewStatus!, $c: String) {
  setReview(images: $r, status: $s, comment: $c) { __typename
    ... on ReviewSetSuccess { images { id reviewStatus reviewedBy } }
    ... on StaleReview { message imageId reviewedVersion currentVersion }
    ... on InputError { message } } }"""
HISTORY = """query($i: Int!) { image(id: $i) { reviewStatus reviewComment reviewedBy
  reviewHistory { status comment version reviewer createdAt } } }"""
UPDATE = """mutation($i: Int!, $px: Float, $n: String) { updateImage(id: $i, pixelSizeUm: $px, name: $n) {
  __typename ... on ImageUpdateSuccess { image { name pixelSizeUm updatedAt } }
  ... on InputError { field message } } }"""
BY_HASH = (
    "query($p: Int!, $h: [String!]!) { imagesByHash(projectId: $p, sha256s: $h) { id name contentHash } }"
)


async def _project(api: Api, count: int) -> tuple[str, int, dict[str, int]]:
    """An owner, a project with images ``img00.png`` ... and their ids by name."""
    owner = await api.user("owner")
    project_id = await api.project(owner)
    files = [(f"img{i:02d}.png", png_bytes(64, 48, seed=i)) for i in range(count)]
    answer = (await api.upload(owner, project_id, files)).json()["files"]
    return owner, project_id, {f["name"]: f["imageId"] for f in answer}


async def _page(api: Api, token: str, project_id: int, **arguments: Any) -> dict[str, Any]:
    page: dict[str, Any] = (await api.ok(PAGE, token, p=project_id, **arguments))["project"]["images"]
    return page


def _names(page: dict[str, Any]) -> list[str]:
    return [edge["node"]["name"] for edge in page["edges"]]


async def test_pages_backwards_and_forwards_know_their_neighbours_and_positions(api: Api) -> None:
    owner, project_id, _ = await _project(api, 7)
    names = [f"img{i:02d}.png" for i in range(7)]
    last = await _page(api, owner, project_id, last=3)
    assert _names(last) == names[4:]
    assert [edge["position"] for edge in last["edges"]] == [5, 6, 7]
    assert last["pageInfo"]["hasPreviousPage"] and not last["pageInfo"]["hasNextPage"]
    walked: list[str] = _names(last)
    before = last["pageInfo"]["startCursor"]
    while True:
        page = await _page(api, owner, project_id, last=3, before=before)
        walked = _names(page) + walked
        assert page["pageInfo"]["hasNextPage"]
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    assert walked == names
    first = await _page(api, owner, project_id, first=2)
    assert not first["pageInfo"]["hasPreviousPage"] and first["pageInfo"]["hasNextPage"]
    middle = await _page(api, owner, project_id, first=2, after=first["pageInfo"]["endCursor"])
    assert _names(middle) == names[2:4] and middle["pageInfo"]["hasPreviousPage"]
    assert [edge["position"] for edge in middle["edges"]] == [3, 4]
    # next and previous of one image: from its cursor, one each way
    cursor = middle["edges"][0]["cursor"]
    following = await _page(api, owner, project_id, first=1, after=cursor)
    preceding = await _page(api, owner, project_id, last=1, before=cursor)
    assert _names(preceding) == [names[1]] and _names(following) == [names[3]]
    descending = await _page(api, owner, project_id, last=2, order="NAME_DESC")
    assert _names(descending) == [names[1], names[0]]
    assert [edge["position"] for edge in descending["edges"]] == [6, 7]
    wrong = await api.gql(PAGE, owner, p=project_id, last=2, after=cursor)
    assert "after" in wrong["errors"][0]["message"]


async def test_ids_refetch_what_an_event_named_and_keep_positions_in_the_filter(api: Api) -> None:
    owner, project_id, ids = await _project(api, 6)
    other_project = await api.project(owner, "other")
    elsewhere = (await api.upload(owner, other_project, [("x.png", png_bytes(seed=99))])).json()
    named = [ids["img04.png"], ids["img01.png"], elsewhere["files"][0]["imageId"]]
    page = await _page(api, owner, project_id, ids=named)
    assert _names(page) == ["img01.png", "img04.png"] and page["totalCount"] == 2
    assert [edge["position"] for edge in page["edges"]] == [2, 5]
    odd = {"nameContains": "1"}  # img01 only... and the position is in that filter's list
    filtered = await _page(api, owner, project_id, ids=named, filter=odd)
    assert _names(filtered) == ["img01.png"] and filtered["edges"][0]["position"] == 1
    too_many = await api.gql(PAGE, owner, p=project_id, ids=list(range(501)))
    assert "ids" in too_many["errors"][0]["message"] and "500" in too_many["errors"][0]["message"]


async def test_updated_since_finds_every_kind_of_change_and_sorts_by_it(api: Api) -> None:
    owner, project_id, ids = await _project(api, 5)
    before = await _page(api, owner, project_id)
    seen = {edge["node"]["id"]: edge["node"]["updatedAt"] for edge in before["edges"]}
    newest = max(seen.values())
    await asyncio.sleep(0.01)
    saved, reviewed, renamed = ids["img01.png"], ids["img02.png"], ids["img03.png"]
    await api.ok(SAVE, owner, id=saved, base=0, sph=[{"exterior": SQUARE}])
    note = "blurred"
    await api.ok(REVIEW, owner, r=[{"imageId": reviewed, "version": 0}], s="REJECTED", c=note)
    await api.ok(UPDATE, owner, i=renamed, n="renamed.png")
    queued = ids["img04.png"]  # a job's task for it: its segmentation status moves to queued
    job = await api.ok(
        'mutation($i: Int!) { segmentImages(input: {imageIds: [$i], method: "classical"}) { __typename } }',
        owner,
        i=queued,
    )
    assert job["segmentImages"]["__typename"] == "JobStarted"
    changed = await _page(api, owner, project_id, since=newest)
    found = {edge["node"]["id"]: edge["node"]["updatedAt"] for edge in changed["edges"]}
    assert {saved, reviewed, renamed, queued} <= set(found)
    assert set(found) - {saved, reviewed, renamed, queued} <= {i for i, at in seen.items() if at == newest}
    for image_id in (saved, reviewed, renamed, queued):
        assert found[image_id] > seen[image_id]
    untouched = ids["img00.png"]
    assert untouched not in found
    east = dt.timezone(dt.timedelta(hours=2))  # the same instant, written in another zone
    shifted = dt.datetime.fromisoformat(newest).astimezone(east).isoformat()
    assert {e["node"]["id"] for e in (await _page(api, owner, project_id, since=shifted))["edges"]} == set(
        found
    )
    recent = await _page(api, owner, project_id, order="UPDATED_DESC", first=4)
    assert {edge["node"]["id"] for edge in recent["edges"]} == {saved, reviewed, renamed, queued}
    assert recent["edges"][0]["node"]["id"] == queued  # the last change
    rest = await _page(api, owner, project_id, order="UPDATED_DESC", after=recent["pageInfo"]["endCursor"])
    assert [edge["node"]["id"] for edge in rest["edges"]] == [untouched]
    assert rest["pageInfo"]["hasPreviousPage"] and not rest["pageInfo"]["hasNextPage"]


async def test_a_review_names_the_version_seen_and_is_refused_when_a_newer_one_exists(api: Api) -> None:
    owner, project_id, ids = await _project(api, 2)
    editor = await api.user("editor")
    await api.share(owner, project_id, "editor", "EDITOR")
    a, b = ids["img00.png"], ids["img01.png"]
    for image_id in (a, b):
        await api.ok(SAVE, owner, id=image_id, base=0, sph=[{"exterior": SQUARE}])
    first = await api.ok(REVIEW, editor, r=[{"imageId": a, "version": 1}], s="NEEDS_FIX", c="edge cut")
    assert first["setReview"]["images"] == [{"id": a, "reviewStatus": "NEEDS_FIX", "reviewedBy": "editor"}]
    await api.ok(SAVE, owner, id=a, base=1, sph=[{"exterior": SQUARE}])  # fixed: version 2
    # the editor accepts both from what they saw: version 1 of each; a's version 1 is stale
    stale = await api.ok(
        REVIEW, editor, r=[{"imageId": b, "version": 1}, {"imageId": a, "version": 1}], s="ACCEPTED"
    )
    assert stale["setReview"] | {"message": ""} == {
        "__typename": "StaleReview",
        "message": "",
        "imageId": a,
        "reviewedVersion": 1,
        "currentVersion": 2,
    }
    assert "version 2 is the current one" in stale["setReview"]["message"]
    untouched = (await api.ok(HISTORY, owner, i=b))["image"]
    assert untouched["reviewStatus"] == "UNREVIEWED" and untouched["reviewHistory"] == []  # all or nothing
    accepted = await api.ok(REVIEW, owner, r=[{"imageId": a, "version": 2}], s="ACCEPTED", c="good now")
    assert accepted["setReview"]["__typename"] == "ReviewSetSuccess"
    image = (await api.ok(HISTORY, editor, i=a))["image"]
    assert image["reviewedBy"] == "owner" and image["reviewComment"] == "good now"
    history = [{k: v for k, v in entry.items() if k != "createdAt"} for entry in image["reviewHistory"]]
    assert history == [
        {"status": "ACCEPTED", "comment": "good now", "version": 2, "reviewer": "owner"},
        {"status": "NEEDS_FIX", "comment": "edge cut", "version": 1, "reviewer": "editor"},
    ]
    times = [entry["createdAt"] for entry in image["reviewHistory"]]
    assert times == sorted(times, reverse=True)
    unknown = await api.ok(REVIEW, owner, r=[{"imageId": b, "version": 7}], s="ACCEPTED")
    assert unknown["setReview"]["__typename"] == "StaleReview" and unknown["setReview"]["currentVersion"] == 1


async def test_concurrent_save_and_review_never_accept_unseen_outlines(api: Api) -> None:
    """A save and a review of the version before it, at once: either the review came first (and the save
    sent the image back to unreviewed) or it is refused; never an accepted image at a version unseen."""
    owner, _, ids = await _project(api, 1)
    image_id = ids["img00.png"]
    await api.ok(SAVE, owner, id=image_id, base=0, sph=[{"exterior": SQUARE}])
    for base in range(1, 6):
        save, review = await asyncio.gather(
            api.ok(SAVE, owner, id=image_id, base=base, sph=[{"exterior": SQUARE}]),
            api.ok(REVIEW, owner, r=[{"imageId": image_id, "version": base}], s="ACCEPTED"),
        )
        assert save["saveSegmentation"]["__typename"] == "SegmentationSaveSuccess"
        state = await api.ok(
            "query($i: Int!) { image(id: $i) { reviewStatus segmentation { version } } }", owner, i=image_id
        )
        assert state["image"]["reviewStatus"] == "UNREVIEWED", (review, state)


SPHEROIDS = """query($i: Int!) { image(id: $i) { pixelSizeUm
  segmentation { spheroids { metrics { areaPx areaUm2 perimeterPx perimeterUm } } }
  segmentationHistory { version spheroids { metrics { areaUm2 } } } } }"""


async def test_update_image_sets_the_pixel_size_and_metrics_in_um_follow_every_version(api: Api) -> None:
    owner, project_id, ids = await _project(api, 1)
    image_id = ids["img00.png"]
    await api.ok(SAVE, owner, id=image_id, base=0, sph=[{"exterior": SQUARE}])
    await api.ok(
        SAVE,
        owner,
        id=image_id,
        base=1,
        sph=[{"exterior": SQUARE}, {"exterior": [[40, 5], [50, 5], [50, 15]]}],
    )
    before = (await api.ok(SPHEROIDS, owner, i=image_id))["image"]
    assert (
        before["pixelSizeUm"] is None and before["segmentation"]["spheroids"][0]["metrics"]["areaUm2"] is None
    )
    updated = (await api.ok(UPDATE, owner, i=image_id, px=0.5, n=" plate 3 well B2.png "))["updateImage"]
    assert updated["image"]["name"] == "plate 3 well B2.png" and updated["image"]["pixelSizeUm"] == 0.5
    after = (await api.ok(SPHEROIDS, owner, i=image_id))["image"]
    metrics = after["segmentation"]["spheroids"][0]["metrics"]
    assert metrics["areaPx"] == pytest.approx(400)
    assert metrics["areaUm2"] == pytest.approx(100) and metrics["perimeterUm"] == pytest.approx(40)
    assert [v["version"] for v in after["segmentationHistory"]] == [2, 1]  # no version added or rewritten
    assert all(
        s["metrics"]["areaUm2"] is not None for v in after["segmentationHistory"] for s in v["spheroids"]
    )
    again = (await api.ok(UPDATE, owner, i=image_id, px=2.0))["updateImage"]
    assert again["image"]["name"] == "plate 3 well B2.png"  # omitted: unchanged
    metrics = (await api.ok(SPHEROIDS, owner, i=image_id))["image"]["segmentation"]["spheroids"][0]["metrics"]
    assert metrics["areaUm2"] == pytest.approx(1600)
    rows = await _csv_rows(api, owner, project_id)  # the export follows the new pixel size too
    assert [float(row["area_um2"]) for row in rows] == pytest.approx([1600, 200])


@pytest.mark.parametrize(
    ("variables", "field", "words"),
    [
        ({"px": 0.0}, "pixelSizeUm", "positive"),
        ({"px": -1.0}, "pixelSizeUm", "positive"),
        ({"px": 5000.0}, "pixelSizeUm", "more than 1000"),
        ({"n": "   "}, "name", "empty"),
        ({"n": "plates/a.png"}, "name", "/"),
        ({"n": "C:\\plates\\a.png"}, "name", "/"),
        ({"n": "a\nb.png"}, "name", "control"),
        ({"n": "x" * 300}, "name", "at most 255"),
        ({"n": "good.png", "px": 0.0}, "pixelSizeUm", "positive"),
    ],
)
async def test_update_image_refuses_bad_values_and_changes_nothing(
    api: Api, variables: dict[str, Any], field: str, words: str
) -> None:
    owner, _, ids = await _project(api, 1)
    image_id = ids["img00.png"]
    refused = (await api.ok(UPDATE, owner, i=image_id, **variables))["updateImage"]
    assert refused["__typename"] == "InputError" and refused["field"] == field
    assert words in refused["message"]
    image = (await api.ok("query($i: Int!) { image(id: $i) { name pixelSizeUm } }", owner, i=image_id))[
        "image"
    ]
    assert image == {"name": "img00.png", "pixelSizeUm": None}


async def test_images_by_hash_names_the_files_a_project_has(api: Api) -> None:
    owner, project_id, ids = await _project(api, 3)
    viewer = await api.user("viewer")
    await api.share(owner, project_id, "viewer", "VIEWER")
    other = await api.project(owner, "other")
    elsewhere = png_bytes(64, 48, seed=50)
    await api.upload(owner, other, [("elsewhere.png", elsewhere)])
    have = [hashlib.sha256(png_bytes(64, 48, seed=i)).hexdigest() for i in (2, 0)]
    new = hashlib.sha256(b"not sent yet").hexdigest()
    asked = [have[0].upper(), new, have[1], hashlib.sha256(elsewhere).hexdigest()]
    found = (await api.ok(BY_HASH, viewer, p=project_id, h=asked))["imagesByHash"]
    assert [(f["id"], f["name"]) for f in found] == [
        (ids["img00.png"], "img00.png"),
        (ids["img02.png"], "img02.png"),
    ]
    assert {f["contentHash"] for f in found} == set(have)
    bad = await api.gql(BY_HASH, viewer, p=project_id, h=[new, "abc"])
    assert "sha256s" in bad["errors"][0]["message"] and "'abc'" in bad["errors"][0]["message"]
    many = await api.gql(BY_HASH, viewer, p=project_id, h=[new] * 501)
    assert "at most 500" in many["errors"][0]["message"]
    stranger = await api.user("stranger")
    hidden = await api.gql(BY_HASH, stranger, p=project_id, h=[have[0]])
    assert hidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
