"""Importing files as the workbench does, against the real server in uvicorn: what the project has is
skipped before sending, a corrupt file is refused with its reason while the others go in, and the bytes
sent are reported as they go."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.app import create_app
from spheroseg_testing import free_port, serve
from tests.server.conftest import Api, png_bytes
from workbench.api import LabClient
from workbench.uploads import UploadProgress, import_files

pytestmark = pytest.mark.anyio


async def test_import_skips_what_the_project_has_and_reports_each_file(api: Api, tmp_path: Path) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    await api.upload(owner, project_id, [("first.png", png_bytes(seed=1))])  # already in the project
    files = {
        "again.png": png_bytes(seed=1),
        "new.png": png_bytes(200, 150, seed=2),
        "broken.png": b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10,
        "other.png": png_bytes(seed=3),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    paths = [tmp_path / name for name in files]
    progress: list[UploadProgress] = []

    async with (
        serve(create_app(services=api.services), free_port()) as url,
        LabClient(url, token=owner) as client,
    ):
        results = await import_files(client, project_id, paths, per_request=2, on_progress=progress.append)

    by_name = {r.path.name: r for r in results}
    assert by_name["again.png"].skipped and "first.png" in (by_name["again.png"].reason or "")
    assert by_name["new.png"].image_id is not None and by_name["new.png"].reason is None
    assert by_name["other.png"].image_id is not None
    assert by_name["broken.png"].image_id is None and "png" in (by_name["broken.png"].reason or "").lower()
    sent_total = sum(len(files[n]) for n in ("new.png", "broken.png", "other.png"))  # not again.png
    assert progress[-1].sent_bytes == progress[-1].total_bytes == sent_total
    assert progress[-1].files_done == 4 and [p.sent_bytes for p in progress] == sorted(
        p.sent_bytes for p in progress
    )
    images = await api.ok(
        "query($p: Int!) { project(id: $p) { images { totalCount } } }", owner, p=project_id
    )
    assert images["project"]["images"]["totalCount"] == 3  # first, new, other
