"""The export dialog against a real offline server: CSV and COCO of all images exported into a folder,
the files matching the images, the folder remembered, and "Show in folder" opening the new folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import httpx
import pytest
from PySide6.QtCore import QSettings, Qt, QUrl
from pytestqt.qtbot import QtBot

from tests.server.processes import disc_png
from tests.workbench.qt.conftest import Run, screenshot
from workbench.jobs import follow_job, start_segmentation
from workbench.qt import qt_export
from workbench.qt.qt_export import QtExport
from workbench.tasks import Tasks
from workbench.uploads import import_files
from workbench.workspace import Workspace

NAMES = ["well_A1.png", "well_A2.png", "well_A3.png"]


@pytest.fixture
def settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "settings.ini"
    monkeypatch.setattr(qt_export, "_settings", lambda: QSettings(str(path), QSettings.Format.IniFormat))
    return path


def _segmented_project(run: Run, workspace: Workspace, tmp_path: Path) -> int:
    answer = run(workspace.client.call("CreateProject", name="Plate 1"))
    project_id: int = answer["createProject"]["project"]["id"]
    paths = []
    for k, name in enumerate(NAMES):
        (tmp_path / name).write_bytes(disc_png(seed=k))
        paths.append(tmp_path / name)
    run(import_files(workspace.client, project_id, paths))
    job_id = run(start_segmentation(workspace.client, project_id, method="classical"))
    final = run(follow_job(workspace.client, workspace.live, job_id, lambda state: None), timeout=180)
    assert final.status == "DONE"
    return project_id


def test_csv_and_coco_of_all_images_land_in_a_new_folder_that_show_in_folder_opens(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path, settings_file: Path
) -> None:
    project_id = _segmented_project(run, workspace, tmp_path)
    destination = tmp_path / "exports"
    dialog = QtExport(workspace, tasks, project_id, None, None)
    qtbot.add_widget(dialog)
    dialog.open()
    run(dialog.loading.wait())
    assert dialog.everything.isChecked() and dialog.everything.text() == "&All images in the project (3)"
    assert not dialog.accepted_only.isEnabled() and "(0)" in dialog.accepted_only.text()  # none reviewed
    assert not dialog.selected.isEnabled()
    for name, box in dialog.formats.items():
        box.setChecked(name in ("CSV", "COCO"))
    dialog.folder.setText(str(destination))
    screenshot(dialog, "export-dialog")
    assert not dialog.show_button.isVisible()
    opened: list[QUrl] = []
    dialog.open_url = opened.append  # type: ignore[method-assign, assignment]

    qtbot.keyClick(dialog.folder, Qt.Key.Key_Return)  # Enter in the folder's field starts, as typed
    assert dialog.task is not None and dialog.task.name == "Exporting 3 images"
    run(dialog.task.wait(), timeout=120)
    screenshot(dialog, "export-done")

    result = dialog.exported
    assert result is not None and result.folder.parent == destination
    assert sorted(p.name for p in result.folder.iterdir()) == ["annotations.coco.json", "metrics.csv"]
    with (result.folder / "metrics.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    coco = json.loads((result.folder / "annotations.coco.json").read_text())
    stats = run(workspace.client.call("Projects"))["projects"][0]["stats"]
    assert len(rows) == len(coco["annotations"]) == stats["spheroidCount"] >= 3  # a row per spheroid
    assert sorted({row["image"] for row in rows}) == NAMES
    assert sorted(image["file_name"] for image in coco["images"]) == NAMES
    assert dialog.show_button.isVisible() and str(result.folder) in dialog.status.text()
    dialog.show_button.click()
    assert opened == [QUrl.fromLocalFile(str(result.folder))]

    again = QtExport(workspace, tasks, project_id, [1], None)
    qtbot.add_widget(again)
    run(again.loading.wait())
    assert again.folder.text() == str(destination)  # remembered
    assert set(again.chosen_formats()) == {"CSV", "COCO"}
    assert again.selected.isChecked() and again.selected.text() == "&Selected images (1)"


def test_accepted_only_exports_the_images_a_reviewer_accepted(
    qtbot: QtBot, run: Run, workspace: Workspace, tasks: Tasks, tmp_path: Path, settings_file: Path
) -> None:
    project_id = _segmented_project(run, workspace, tmp_path)
    page = run(
        workspace.client.call(
            "GalleryPage", projectId=project_id, first=10, after=None, filter=None, orderBy="NAME_ASC"
        )
    )
    second = page["project"]["images"]["edges"][1]["node"]
    run(_accept(workspace, second["id"]))
    dialog = QtExport(workspace, tasks, project_id, None, None)
    qtbot.add_widget(dialog)
    dialog.open()
    run(dialog.loading.wait())
    assert dialog.accepted_only.isEnabled() and dialog.accepted_only.text() == "Accepted images &only (1)"
    dialog.accepted_only.setChecked(True)
    for name, box in dialog.formats.items():
        box.setChecked(name == "CSV")
    dialog.folder.setText(str(tmp_path / "accepted"))
    dialog.start_button.click()
    assert dialog.task is not None and dialog.task.name == "Exporting 1 image"
    run(dialog.task.wait(), timeout=120)

    assert dialog.exported is not None
    with (dialog.exported.folder / "metrics.csv").open(newline="") as file:
        assert {row["image"] for row in csv.DictReader(file)} == {second["name"]}


async def _accept(workspace: Workspace, image_id: int) -> None:
    """As the review canvas will: the image's first version accepted (this dialog only reads reviews)."""
    async with httpx.AsyncClient(base_url=workspace.url) as http:
        answer = await http.post(
            "/graphql",
            json={
                "query": "mutation($i: Int!) { setReview(images: [{imageId: $i, version: 1}], "
                "status: ACCEPTED) { __typename } }",
                "variables": {"i": image_id},
            },
            headers={"Authorization": f"Bearer {workspace.user.token}"},
        )
    assert answer.json()["data"]["setReview"]["__typename"] == "ReviewSetSuccess", answer.text
