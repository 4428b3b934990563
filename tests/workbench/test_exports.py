"""Exporting as the workbench does, against the real server in uvicorn: the export job followed to its
end, its zip downloaded and unpacked into a new folder whose files match the images."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import httpx
import pytest

from server.app import create_app
from spheroseg_testing import free_port, serve
from tests.server.conftest import Api, png_bytes
from workbench.api import ApiError, LabClient, LiveChannel
from workbench.exports import ExportProgress, download_export, export_project, folder_name

pytestmark = pytest.mark.anyio

SQUARE = [[10.0, 10.0], [40.0, 10.0], [40.0, 40.0], [10.0, 40.0]]
TRIANGLE = [[50.0, 5.0], [60.0, 40.0], [45.0, 40.0]]


async def _segmented_project(api: Api, owner: str) -> int:
    """Two images: ``a.png`` with two spheroids, ``b.png`` with one."""
    project_id = await api.project(owner)
    await api.upload(owner, project_id, [("a.png", png_bytes(seed=1)), ("b.png", png_bytes(seed=2))])
    found = await api.ok(
        "query($p: Int!) { project(id: $p) { images { edges { node { id } } } } }", owner, p=project_id
    )
    ids = [edge["node"]["id"] for edge in found["project"]["images"]["edges"]]  # by name: a, b
    for image_id, shapes in zip(ids, [[SQUARE, TRIANGLE], [SQUARE]], strict=True):
        await api.ok(
            "mutation($i: Int!, $s: [SpheroidInput!]!) { saveSegmentation(imageId: $i, baseVersion: 0, "
            "spheroids: $s) { __typename } }",
            owner,
            i=image_id,
            s=[{"exterior": shape} for shape in shapes],
        )
    return project_id


async def test_an_export_lands_as_files_in_a_new_folder(api: Api, tmp_path: Path) -> None:
    owner = await api.user("owner")
    project_id = await _segmented_project(api, owner)
    progress: list[ExportProgress] = []
    async with (
        serve(create_app(services=api.services), free_port()) as url,
        LabClient(url, token=owner) as client,
        LiveChannel(url, owner) as live,
    ):
        first = await export_project(
            client, live, project_id, tmp_path, ["CSV", "COCO"], on_progress=progress.append
        )
        second = await export_project(client, live, project_id, tmp_path, ["CSV"], image_ids=[])
        pictures = await export_project(client, live, project_id, tmp_path, ["MASKS", "GEOJSON", "XLSX"])

    assert first.folder == tmp_path / folder_name("Plate 1", first.job_id)
    assert {path.name for path in first.files} == {"metrics.csv", "annotations.coco.json"}
    with (first.folder / "metrics.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert sorted(row["image"] for row in rows) == ["a.png", "a.png", "b.png"]
    coco = json.loads((first.folder / "annotations.coco.json").read_text())
    assert sorted(image["file_name"] for image in coco["images"]) == ["a.png", "b.png"]
    assert len(coco["annotations"]) == 3
    stages = [p.stage for p in progress]
    assert stages.index("exporting") < stages.index("downloading") < stages.index("unpacking")
    assert second.folder != first.folder and second.folder.exists()  # never over an earlier export
    assert sorted(str(path.relative_to(pictures.folder)) for path in pictures.files) == [
        "geojson/a.geojson",
        "geojson/b.geojson",
        "masks/a.png",
        "masks/b.png",
        "metrics.xlsx",
    ]  # a folder per image format, as the server wrote them
    assert not list(tmp_path.glob(".spheroseg-*"))  # no temporary file or folder left behind


async def test_a_zip_reaching_outside_its_folder_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    bundle = tmp_path / "evil.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("../outside.txt", "no")
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=bundle.read_bytes()))
    target = tmp_path / "out"

    with pytest.raises(ApiError, match="outside"):
        await download_export("http://lab/x.zip", target, "export 1", transport=transport)

    assert list(target.iterdir()) == [] and not (tmp_path / "outside.txt").exists()


def test_a_folder_name_is_safe_on_every_system() -> None:
    assert folder_name('Plate 1: "day 3"/B', 7) == "Plate 1_ _day 3_B export 7"
