"""Projects, sharing, uploads, saving with version conflicts, review and export through the real app."""

from __future__ import annotations

import asyncio
import csv
import io
import zipfile

import pytest

from tests.server.conftest import Api, png_bytes
from tests.server.exports import exported

pytestmark = pytest.mark.anyio

SQUARE = [[10, 10], [30, 10], [30, 30], [10, 30]]
SAVE = """mutation($id: Int!, $base: Int!, $sph: [SpheroidInput!]!) {
  saveSegmentation(imageId: $id, baseVersion: $base, spheroids: $sph) {
    __typename
    ... on SegmentationSaveSuccess { segmentation { version spheroidCount spheroids { metrics { areaPx } } } }
    ... on VersionConflict { currentVersion baseVersion message }
    ... on InvalidSpheroids { problems }
  }
}"""


async def _project_with_image(api: Api) -> tuple[str, int, int]:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    response = await api.upload(owner, project_id, [("a.png", png_bytes())])
    return owner, project_id, response.json()["files"][0]["imageId"]


async def test_sharing_gives_roles_and_strangers_see_nothing(api: Api) -> None:
    owner = await api.user("owner")
    viewer = await api.user("viewer")
    stranger = await api.user("stranger")
    project_id = await api.project(owner)
    await api.share(owner, project_id, "viewer", "VIEWER")
    query = "query($id: Int!) { project(id: $id) { name myRole members { username role } } }"
    seen = (await api.ok(query, viewer, id=project_id))["project"]
    assert seen["myRole"] == "VIEWER" and {m["username"] for m in seen["members"]} == {"owner", "viewer"}
    hidden = await api.gql(query, stranger, id=project_id)
    missing = await api.gql(query, stranger, id=999_999)
    assert hidden["errors"][0]["message"] == missing["errors"][0]["message"]
    assert (await api.ok("{ projects { id } }", stranger))["projects"] == []
    last_owner = await api.ok(
        'mutation($id: Int!) { removeProjectMember(id: $id, username: "owner") { __typename '
        "... on InputError { message } } }",
        owner,
        id=project_id,
    )
    assert last_owner["removeProjectMember"]["message"].startswith("a project keeps at least one owner")


ROLE = (
    "mutation($id: Int!, $u: String!, $r: ProjectRole!) { addProjectMember(id: $id, username: $u, role: $r) "
    "{ __typename ... on InputError { field message } } }"
)
MY_ROLE = "query($id: Int!) { project(id: $id) { myRole members { role } } }"


@pytest.mark.parametrize("role", ["VIEWER", "EDITOR"])
async def test_the_last_owner_cannot_demote_themselves(api: Api, role: str) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    refused = (await api.ok(ROLE, owner, id=project_id, u="owner", r=role))["addProjectMember"]
    assert refused == {
        "__typename": "InputError",
        "field": "username",
        "message": "a project keeps at least one owner; make another member owner first",
    }
    assert (await api.ok(MY_ROLE, owner, id=project_id))["project"]["myRole"] == "OWNER"
    admin = await api.user("root", admin=True)  # an administrator acts as owner, under the same rule
    by_admin = (await api.ok(ROLE, admin, id=project_id, u="owner", r=role))["addProjectMember"]
    assert by_admin["__typename"] == "InputError"
    await api.share(owner, project_id, "root", "OWNER")
    demoted = (await api.ok(ROLE, owner, id=project_id, u="owner", r=role))["addProjectMember"]
    assert demoted["__typename"] == "ProjectSuccess"


async def test_two_owners_demoting_themselves_at_once_leave_one_owner(api: Api) -> None:
    tokens = {name: await api.user(name) for name in ("ann", "ben")}
    project_id = await api.project(tokens["ann"])
    await api.share(tokens["ann"], project_id, "ben", "OWNER")
    for _ in range(5):  # several rounds: the two requests interleave differently each time
        names = list(tokens)
        results = await asyncio.gather(
            *(api.ok(ROLE, tokens[name], id=project_id, u=name, r="VIEWER") for name in names)
        )
        outcomes = {name: r["addProjectMember"]["__typename"] for name, r in zip(names, results, strict=True)}
        assert sorted(outcomes.values()) == ["InputError", "ProjectSuccess"]
        members = (await api.ok(MY_ROLE, tokens["ann"], id=project_id))["project"]["members"]
        assert [member["role"] for member in members].count("OWNER") == 1
        demoted = next(name for name, outcome in outcomes.items() if outcome == "ProjectSuccess")
        owner = next(name for name in names if name != demoted)
        await api.share(tokens[owner], project_id, demoted, "OWNER")


async def test_upload_reads_headers_refuses_duplicates_bad_and_oversized_files(api: Api) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    api.services.settings.max_upload_bytes = 50_000
    image = png_bytes(64, 48)
    response = await api.upload(
        owner,
        project_id,
        [
            ("plate/A01.png", image),
            ("copy.png", image),
            ("notes.txt", b"hello, not an image"),
            ("empty.tif", b""),
            ("huge.png", png_bytes(400, 400, seed=3)),
        ],
    )
    assert response.status_code == 200
    files = response.json()["files"]
    assert files[0] | {"imageId": 0} == {
        "name": "A01.png",
        "accepted": True,
        "imageId": 0,
        "width": 64,
        "height": 48,
        "bitDepth": 8,
        "format": "png",
        "pixelSizeUm": None,
    }
    assert "already here as 'A01.png'" in files[1]["reason"]
    assert not files[2]["accepted"] and "text" in files[2]["reason"].lower()
    assert not files[3]["accepted"] and "empty" in files[3]["reason"]
    assert not files[4]["accepted"] and "limit" in files[4]["reason"]
    data = await api.ok(
        "query($id: Int!) { project(id: $id) { stats { imageCount } } }", owner, id=project_id
    )
    assert data["project"]["stats"]["imageCount"] == 1


async def test_upload_refusals(api: Api) -> None:
    owner = await api.user("owner")
    viewer = await api.user("viewer")
    project_id = await api.project(owner)
    await api.share(owner, project_id, "viewer", "VIEWER")
    assert (await api.upload(viewer, project_id, [("a.png", png_bytes())])).status_code == 403
    anonymous = await api.client.post(f"/api/projects/{project_id}/images", files={"files": ("a.png", b"x")})
    assert anonymous.status_code == 401
    broken = await api.client.post(
        f"/api/projects/{project_id}/images",
        content=b"--xyz\r\ngarbage",
        headers={"Authorization": f"Bearer {owner}", "Content-Type": "multipart/form-data; boundary=xyz"},
    )
    assert broken.status_code == 400


async def test_save_conflict_revert_and_history(api: Api) -> None:
    owner, _, image_id = await _project_with_image(api)
    first = (await api.ok(SAVE, owner, id=image_id, base=0, sph=[{"exterior": SQUARE}]))["saveSegmentation"]
    assert first["segmentation"]["version"] == 1
    assert first["segmentation"]["spheroids"][0]["metrics"]["areaPx"] == pytest.approx(400)
    stale = (await api.ok(SAVE, owner, id=image_id, base=0, sph=[]))["saveSegmentation"]
    assert stale["__typename"] == "VersionConflict" and stale["currentVersion"] == 1
    second = (await api.ok(SAVE, owner, id=image_id, base=1, sph=[]))["saveSegmentation"]
    assert second["segmentation"]["version"] == 2
    revert = (
        "mutation($id: Int!) { revertSegmentation(imageId: $id, version: 1, baseVersion: 2) { __typename "
        "... on SegmentationSaveSuccess { segmentation { version spheroidCount } } } }"
    )
    reverted = (await api.ok(revert, owner, id=image_id))["revertSegmentation"]["segmentation"]
    assert reverted == {"version": 3, "spheroidCount": 1}
    history = await api.ok(
        "query($id: Int!) { image(id: $id) { segmentationStatus segmentation { version } "
        "segmentationHistory { version spheroidCount } } }",
        owner,
        id=image_id,
    )
    assert [h["version"] for h in history["image"]["segmentationHistory"]] == [3, 2, 1]
    assert history["image"]["segmentationStatus"] == "DONE"


@pytest.mark.parametrize(
    ("rings", "problem"),
    [
        ({"exterior": [[1, 1], [2, 2]]}, "at least 3"),
        ({"exterior": [[1, 1], [2, 2], [3, 3]]}, "no area"),
        ({"exterior": [[1, 1], [500, 1], [1, 30]]}, "outside"),
        ({"exterior": [[10, 10], [40, 30], [40, 10], [10, 20]]}, "spheroid 1:"),
        ({"exterior": [[1, 1, 1], [2, 2, 2], [3, 1, 1]]}, "two coordinates"),
    ],
)
async def test_invalid_rings_are_refused_and_nothing_changes(
    api: Api, rings: dict[str, object], problem: str
) -> None:
    owner, _, image_id = await _project_with_image(api)
    result = (await api.ok(SAVE, owner, id=image_id, base=0, sph=[{"exterior": SQUARE}, rings]))[
        "saveSegmentation"
    ]
    assert result["__typename"] == "InvalidSpheroids" and problem in " ".join(result["problems"])
    image = await api.ok(
        "query($id: Int!) { image(id: $id) { segmentation { version } } }", owner, id=image_id
    )
    assert image["image"]["segmentation"] is None


async def test_review_rules(api: Api) -> None:
    owner, _, image_id = await _project_with_image(api)
    review = (
        "mutation($i: Int!, $v: Int!, $s: ReviewStatus!, $c: String) { setReview(images: [{imageId: $i, "
        "version: $v}], status: $s, comment: $c) { __typename ... on InputError { message } "
        "... on ReviewSetSuccess { images { reviewStatus "
        "reviewComment } } } }"
    )
    no_seg = (await api.ok(review, owner, i=image_id, v=0, s="ACCEPTED"))["setReview"]
    assert "no segmentation" in no_seg["message"]
    assert (
        "needs a comment"
        in (await api.ok(review, owner, i=image_id, v=0, s="REJECTED"))["setReview"]["message"]
    )
    await api.ok(SAVE, owner, id=image_id, base=0, sph=[{"exterior": SQUARE}])
    accepted = (await api.ok(review, owner, i=image_id, v=1, s="ACCEPTED"))["setReview"]
    assert accepted["images"] == [{"reviewStatus": "ACCEPTED", "reviewComment": None}]
    await api.ok(SAVE, owner, id=image_id, base=1, sph=[{"exterior": SQUARE}])
    data = await api.ok("query($id: Int!) { image(id: $id) { reviewStatus } }", owner, id=image_id)
    assert data["image"]["reviewStatus"] == "UNREVIEWED"


async def test_export_zip_downloads_with_cluster_files(api: Api) -> None:
    owner, project_id, image_id = await _project_with_image(api)
    await api.ok(
        SAVE,
        owner,
        id=image_id,
        base=0,
        sph=[{"exterior": SQUARE, "holes": [[[15, 15], [20, 15], [20, 20]]]}],
    )
    result = await exported(api, owner, project_id, formats=["ALL"])
    assert result["total"] == 1 and result["parameters"]["spheroidCount"] == 1
    download = await api.client.get(result["url"])
    assert download.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(download.content)).namelist()
    assert {"annotations.coco.json", "metrics.csv", "metrics.xlsx"} <= set(names)
    tampered = await api.client.get(result["url"].replace("signature=", "signature=0"))
    assert tampered.status_code == 403


async def test_project_page_pagination_filters_and_stats(api: Api) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    files = [(f"img{i:02d}.png", png_bytes(32, 32, seed=i)) for i in range(7)]
    await api.upload(owner, project_id, files)
    query = """query($id: Int!, $after: String) { project(id: $id) {
      images(first: 3, after: $after, orderBy: NAME_DESC) { totalCount pageInfo { hasNextPage endCursor }
        edges { node { name } } } } }"""
    names: list[str] = []
    after = None
    while True:
        page = (await api.ok(query, owner, id=project_id, after=after))["project"]["images"]
        names += [edge["node"]["name"] for edge in page["edges"]]
        after = page["pageInfo"]["endCursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
    assert names == sorted((name for name, _ in files), reverse=True)
    filtered = await api.ok(
        'query($id: Int!) { project(id: $id) { images(filter: {nameContains: "G0"}) { totalCount } } }',
        owner,
        id=project_id,
    )
    assert filtered["project"]["images"]["totalCount"] == 7
    forged = await api.gql(
        'query($id: Int!) { project(id: $id) { images(after: "bm9wZQ") { totalCount } } }',
        owner,
        id=project_id,
    )
    assert "cursor" in forged["errors"][0]["message"]


async def test_csv_export_escapes_formulas_in_every_text_column(api: Api) -> None:
    """An editor's free text that a spreadsheet would run (=, +, -, @) reaches another member's metrics.csv
    as text; numeric columns stay numbers."""
    owner = await api.user("owner")
    editor = await api.user("editor")
    project_id = await api.project(owner)
    await api.share(owner, project_id, "editor", "EDITOR")
    uploaded = await api.upload(editor, project_id, [("@SUM(1+1).png", png_bytes())])
    image_id = uploaded.json()["files"][0]["imageId"]
    save = (
        "mutation($id: Int!, $sph: [SpheroidInput!]!, $m: String!, $v: String!) { saveSegmentation("
        "imageId: $id, baseVersion: 0, spheroids: $sph, modelName: $m, modelVersion: $v) { __typename } }"
    )
    formula = '=HYPERLINK("https://evil.example","click")'
    saved = await api.ok(save, editor, id=image_id, sph=[{"exterior": SQUARE}], m=formula, v="-1+2")
    assert saved["saveSegmentation"]["__typename"] == "SegmentationSaveSuccess"
    url = (await exported(api, owner, project_id, formats=["CSV"]))["url"]
    archive = zipfile.ZipFile(io.BytesIO((await api.client.get(url)).content))
    name = next(n for n in archive.namelist() if n.endswith("metrics.csv"))
    rows = list(csv.DictReader(io.StringIO(archive.read(name).decode("utf-8"))))
    assert len(rows) == 1
    row = rows[0]
    assert row["image"] == "'@SUM(1+1).png" and row["file_stem"].startswith("'@SUM")
    assert row["model_name"] == "'" + formula and row["model_version"] == "'-1+2"
    text_columns = {"image", "model_name", "model_version", "file_stem"}
    assert row.pop("touches_border") in {"True", "False"}  # the one yes/no column
    for column, value in row.items():
        assert not value.startswith(("=", "+", "-", "@")) or column not in text_columns, column
        if column not in text_columns and value:
            float(value)  # a number, not escaped text


async def test_each_spheroid_says_whether_the_image_edge_cuts_it(api: Api) -> None:
    owner, _, image_id = await _project_with_image(api)  # a 64 x 48 image
    at_corner = [[0, 0], [8, 0], [8, 8], [0, 8]]
    at_right_edge = [[50, 20], [64, 20], [64, 30], [50, 30]]
    spheroids = [{"exterior": SQUARE}, {"exterior": at_corner}, {"exterior": at_right_edge}]
    saved = await api.ok(SAVE, owner, id=image_id, base=0, sph=spheroids)
    assert saved["saveSegmentation"]["__typename"] == "SegmentationSaveSuccess"
    query = "query($i: Int!) { image(id: $i) { segmentation { spheroids { touchesBorder } } } }"
    found = (await api.ok(query, owner, i=image_id))["image"]["segmentation"]["spheroids"]
    assert [s["touchesBorder"] for s in found] == [False, True, True]
