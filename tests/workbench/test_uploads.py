"""Importing files as the workbench does, against the real server in uvicorn: what the project has is
skipped before sending, a corrupt file is refused with its reason while the others go in, and the bytes
sent are reported as they go."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from server.app import create_app
from spheroseg_testing import free_port, serve
from tests.server.conftest import Api, png_bytes
from workbench.api import LabClient
from workbench.uploads import FileResult, UploadProgress, import_files

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
    told: list[tuple[int, FileResult]] = []

    async with (
        serve(create_app(services=api.services), free_port()) as url,
        LabClient(url, token=owner) as client,
    ):
        results = await import_files(
            client,
            project_id,
            paths,
            per_request=2,
            on_progress=progress.append,
            on_result=lambda index, result: told.append((index, result)),
        )

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
    assert told[0] == (0, by_name["again.png"])  # the skipped file is told before any byte goes out
    assert sorted(told, key=lambda item: item[0]) == list(enumerate(results))
    for index in (1, 2, 3):  # each file sent is seen going out with its own bytes, up to its size
        own = [p.sending_bytes for p in progress if p.sending == index]
        assert own and max(own) == len(files[paths[index].name]) and own == sorted(own)


async def test_a_cancelled_import_keeps_what_was_stored_and_the_next_one_sends_only_the_rest(
    api: Api, tmp_path: Path
) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    paths = []
    for k in range(3):
        path = tmp_path / f"large{k}.png"
        path.write_bytes(png_bytes(900, 900, seed=10 + k))  # ~2.4 MB of noise each
        paths.append(path)
    async with (
        serve(create_app(services=api.services), free_port()) as url,
        LabClient(url, token=owner) as client,
    ):
        task: asyncio.Task[object] | None = None

        def cancel_midway(progress: UploadProgress) -> None:
            if task is not None and progress.sent_bytes > progress.total_bytes // 2:
                task.cancel()

        task = asyncio.ensure_future(
            import_files(client, project_id, paths, per_request=1, on_progress=cancel_midway)
        )
        with pytest.raises(asyncio.CancelledError):
            await task
        stored = await _image_count(api, owner, project_id)

        again = await import_files(client, project_id, paths)

    assert 1 <= stored < 3  # the first file went in before the cancel, the last never did
    assert [r.skipped for r in again][:stored] == [True] * stored and not any(
        r.skipped for r in again[stored:]
    )
    assert all(r.image_id is not None for r in again) and await _image_count(api, owner, project_id) == 3


async def _image_count(api: Api, token: str, project_id: int) -> int:
    data = await api.ok("query($p: Int!) { project(id: $p) { images { totalCount } } }", token, p=project_id)
    count: int = data["project"]["images"]["totalCount"]
    return count
