"""The sample project ``make run`` opens: the bundled images in ``resources/samples`` imported into a
project named "Samples" and segmented, once; later starts find it and open it as it is.

Each step can be cut short (the window closed mid-import) and the next start goes on from there: the
import skips files the project has already (by hash), and only a project with images still
unsegmented is segmented again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.api import ApiError
from workbench.jobs import JobState, follow_job, start_segmentation
from workbench.tasks import Task
from workbench.uploads import UploadProgress, import_files
from workbench.workspace import Workspace

__all__ = ["SAMPLES", "SAMPLE_PROJECT", "open_sample_project", "sample_files"]

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"
SAMPLE_PROJECT = "Samples"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def sample_files(folder: Path = SAMPLES) -> list[Path]:
    """The sample images (the ``truth`` masks beside them are not samples)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES))


async def open_sample_project(workspace: Workspace, task: Task, folder: Path = SAMPLES) -> int:
    """The id of the "Samples" project, made complete first (imported, segmented) where it is not."""
    client = workspace.client
    project = await _find(workspace)
    if project is None:
        task.report(None, "Creating the project")
        answer = (await client.call("CreateProject", name=SAMPLE_PROJECT, description=_DESCRIPTION))[
            "createProject"
        ]
        if answer["__typename"] != "ProjectSuccess":
            raise ApiError(f"{answer['field']}: {answer['message']}", "BAD_USER_INPUT", answer)
        project = {"id": answer["project"]["id"], "stats": {"imageCount": 0, "segmentedImageCount": 0}}
    project_id: int = project["id"]
    files = sample_files(folder)
    if project["stats"]["imageCount"] < len(files):

        def uploaded(progress: UploadProgress) -> None:
            share = progress.sent_bytes / progress.total_bytes if progress.total_bytes else None
            task.report(share, f"Importing sample {progress.files_done} of {progress.files_total}")

        await import_files(client, project_id, files, on_progress=uploaded)
        project = await _find(workspace) or project
    if project["stats"]["segmentedImageCount"] < project["stats"]["imageCount"]:
        task.report(None, "Segmenting the samples")
        job_id = await start_segmentation(client, project_id)

        def progressed(state: JobState) -> None:
            task.report(state.percentage / 100, f"Segmented {state.done} of {state.total}")

        await follow_job(client, workspace.live, job_id, progressed)
    return project_id


async def _find(workspace: Workspace) -> dict[str, Any] | None:
    projects = (await workspace.client.call("Projects"))["projects"]
    return next((p for p in projects if p["name"] == SAMPLE_PROJECT), None)


_DESCRIPTION = "The sample images bundled with SpheroSeg, segmented with the default method."
