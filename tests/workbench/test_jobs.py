"""The desktop's whole offline workflow without a window: the user's own server started, files imported,
a segmentation job started and followed live to its end, every image segmented once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.server.processes import disc_png
from workbench.api import ApiError, LabClient, LiveChannel
from workbench.jobs import JobState, follow_job, start_segmentation
from workbench.offline import OfflineServer
from workbench.uploads import import_files

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]


def _environment() -> dict[str, str]:
    kept = {name: value for name, value in os.environ.items() if not name.startswith("SPHEROSEG_")}
    return {**kept, "SPHEROSEG_PASSWORD_MEMORY_KIB": "1024", "SPHEROSEG_CLUSTER_WORKERS": "1"}


async def test_import_segment_and_follow_a_job_on_the_offline_server(tmp_path: Path) -> None:
    for k in range(3):
        (tmp_path / f"well{k}.png").write_bytes(disc_png(seed=k))
    server = OfflineServer(tmp_path / "data", environment=_environment())
    started = await server.start()
    states: list[JobState] = []
    try:
        async with LabClient(started.url) as client:
            signed_in = await client.exchange_bootstrap_token(started.bootstrap_token)
            project_id = (await client.call("CreateProject", name="Plate 1"))["createProject"]["project"][
                "id"
            ]
            imported = await import_files(client, project_id, sorted(tmp_path.glob("*.png")))
            with pytest.raises(ApiError, match="method"):
                await start_segmentation(client, project_id, method="magic")
            job_id = await start_segmentation(client, project_id, method="classical")
            async with LiveChannel(started.url, signed_in.token) as channel:
                final = await follow_job(client, channel, job_id, states.append)
            images = await client.call(
                "GalleryPage", projectId=project_id, first=10, after=None, filter=None, orderBy="NAME_ASC"
            )
    finally:
        assert await server.stop() == 0

    assert all(result.image_id is not None for result in imported)
    assert (final.status, final.done, final.failed, final.total) == ("DONE", 3, 0, 3)
    assert final.seconds_left == 0.0
    assert states[-1] == final
    done_counts = [state.done for state in states]
    assert done_counts == sorted(done_counts)  # progress never goes backwards
    statuses = [edge["node"]["segmentationStatus"] for edge in images["project"]["images"]["edges"]]
    assert statuses == ["DONE", "DONE", "DONE"]
