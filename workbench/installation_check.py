"""``spheroseg workbench --check``: does this installation work, start to finish, on this computer?

For a lab admin who has just unpacked the bundle on the lab's laptops, and for the bundle's own test: the
window opens offline (on a fresh temporary data folder unless one is given), the bundled samples are
imported into a project of their own and segmented with the classical method, which every installation
has, and the report says what happened, how long each step took and which methods this installation
offers (the lean bundle has no ResUNet: it segments with it on a lab server or a cluster).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from workbench.jobs import follow_job, start_segmentation
from workbench.methods import load_methods
from workbench.samples import SAMPLES, sample_files
from workbench.tasks import Task
from workbench.uploads import import_files
from workbench.workspace import Workspace

__all__ = ["CHECK_METHOD", "CHECK_PROJECT", "InstallationReport", "check_installation"]

CHECK_PROJECT = "Installation check"
CHECK_METHOD = "classical"
"""Every installation has it (the ResUNet needs torch, which the lean bundle leaves out)."""


@dataclass
class InstallationReport:
    images: int = 0
    segmented: int = 0
    failed: int = 0
    spheroids: int = 0
    methods: dict[str, bool] = field(default_factory=dict)
    """Each method the server offers, and whether it can run here."""
    seconds: dict[str, float] = field(default_factory=dict)
    """How long each step took: ``import``, ``segment``."""
    problem: str | None = None

    @property
    def passed(self) -> bool:
        return (
            self.problem is None and self.images > 0 and self.segmented == self.images and self.spheroids > 0
        )

    def lines(self) -> list[str]:
        offered = ", ".join(
            f"{name} ({'yes' if available else 'not here'})" for name, available in self.methods.items()
        )
        lines = [
            f"Imported {self.images} sample images in {self.seconds.get('import', 0):.1f} s",
            f"Segmented {self.segmented} of them with the {CHECK_METHOD} method in "
            f"{self.seconds.get('segment', 0):.1f} s: {self.spheroids} spheroids"
            + (f", {self.failed} failed" if self.failed else ""),
            f"Methods this installation runs: {offered or 'none'}",
        ]
        if self.problem:
            lines.append(f"Problem: {self.problem}")
        lines.append("Installation check passed" if self.passed else "Installation check FAILED")
        return lines


async def check_installation(workspace: Workspace, task: Task, folder: Path = SAMPLES) -> InstallationReport:
    """Import the samples in ``folder`` into a new project, segment them and say what came of it."""
    client = workspace.client
    report = InstallationReport()
    report.methods = {method.name: method.available for method in await load_methods(client)}
    task.report(None, "Creating the project")
    created = await client.call("CreateProject", name=CHECK_PROJECT, description=_DESCRIPTION)
    answer = created["createProject"]
    if answer["__typename"] != "ProjectSuccess":
        report.problem = f"the project could not be made: {answer['message']}"
        return report
    project_id: int = answer["project"]["id"]
    files = sample_files(folder)
    started = time.monotonic()
    task.report(None, f"Importing {len(files)} sample images")
    results = await import_files(client, project_id, files)
    report.seconds["import"] = time.monotonic() - started
    report.images = sum(result.image_id is not None for result in results)
    refused = [f"{result.path.name}: {result.reason}" for result in results if result.image_id is None]
    if refused:
        report.problem = "refused " + "; ".join(refused)
        return report
    started = time.monotonic()
    task.report(None, f"Segmenting them with the {CHECK_METHOD} method")
    job_id = await start_segmentation(client, project_id, method=CHECK_METHOD)
    state = await follow_job(
        client, workspace.live, job_id, lambda now: task.report(now.percentage / 100, f"Segmented {now.done}")
    )
    report.seconds["segment"] = time.monotonic() - started
    report.segmented, report.failed, report.problem = state.done, state.failed, state.problem
    projects = (await client.call("Projects"))["projects"]
    stats = next(project["stats"] for project in projects if project["id"] == project_id)
    report.spheroids = stats["spheroidCount"]
    return report


_DESCRIPTION = (
    "Made by 'spheroseg workbench --check': the bundled samples, segmented to test the installation."
)
