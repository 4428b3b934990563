"""Deleted rows stay deleted: ids are never given again (SQLite and PostgreSQL), and a segmentation result
that arrives for a deleted task is dropped and counted instead of landing on a newer image.

A real cluster cannot be made to deliver a result late on purpose, so here the dispatcher is handed the
result at its seam (what a wave does with each result the cluster sends); the tasks are claimed as the
dispatcher claims them. Everything else goes through GraphQL, uploads and /metrics of the real app.
"""

from __future__ import annotations

import pytest

from cluster.pipeline import ImageOutcome
from cluster.segmentation import Segmentation, Spheroid, as_ring
from server.db import jobs
from server.db.jobs import ClaimedTask
from tests.server.conftest import Api, png_bytes

pytestmark = pytest.mark.anyio

SEGMENT = """mutation($p: Int!) { segmentImages(input: {projectId: $p, method: "classical"}) {
  ... on JobStarted { job { id } } } }"""
DELETE_PROJECT = "mutation($id: Int!) { deleteProject(id: $id) { message } }"
DELETE_IMAGES = "mutation($ids: [Int!]!) { deleteImages(imageIds: $ids) { __typename } }"
IMAGE = "query($id: Int!) { image(id: $id) { segmentationStatus segmentationHistory { version } } }"


async def _upload(api: Api, token: str, project_id: int, name: str, seed: int) -> int:
    response = await api.upload(token, project_id, [(name, png_bytes(seed=seed))])
    image_id: int = response.json()["files"][0]["imageId"]
    return image_id


async def _job(api: Api, token: str, project_id: int) -> int:
    job_id: int = (await api.ok(SEGMENT, token, p=project_id))["segmentImages"]["job"]["id"]
    return job_id


async def _claim(api: Api) -> list[ClaimedTask]:
    async with api.services.db.begin() as db:
        return await jobs.claim_tasks(db, 100)


async def test_deleted_ids_are_never_given_again(api: Api) -> None:
    owner = await api.user("owner")
    first = await api.project(owner, "First")
    kept = await _upload(api, owner, first, "a.png", 1)
    newest = await _upload(api, owner, first, "b.png", 2)
    first_job = await _job(api, owner, first)
    tasks = await _claim(api)
    await api.ok(DELETE_IMAGES, owner, ids=[newest])
    assert await _upload(api, owner, first, "c.png", 3) > newest
    await api.ok(DELETE_PROJECT, owner, id=first)
    second = await api.project(owner, "Second")
    assert second > first
    assert await _upload(api, owner, second, "d.png", 4) > max(kept, newest)
    assert await _job(api, owner, second) > first_job
    assert min(task.task_id for task in await _claim(api)) > max(task.task_id for task in tasks)


async def test_a_late_result_for_a_deleted_task_is_dropped_and_counted(api: Api) -> None:
    owner = await api.user("owner")
    deleted_project = await api.project(owner, "Deleted")
    await _upload(api, owner, deleted_project, "old.png", 1)
    await _job(api, owner, deleted_project)
    (late,) = await _claim(api)  # on the cluster when the project is deleted
    await api.ok(DELETE_PROJECT, owner, id=deleted_project)
    project = await api.project(owner, "New")
    image_id = await _upload(api, owner, project, "new.png", 2)
    await _job(api, owner, project)
    (running,) = await _claim(api)
    square = Spheroid(as_ring([(2, 2), (20, 2), (20, 20), (2, 20)]))
    outlines = Segmentation(image_name="old.png", width=64, height=48, spheroids=[square])
    dispatcher = api.services.dispatcher
    assert dispatcher is not None
    await dispatcher._record(late, ImageOutcome("old.png", outlines))  # the cluster's late answer
    image = (await api.ok(IMAGE, owner, id=image_id))["image"]
    assert image == {"segmentationStatus": "RUNNING", "segmentationHistory": []}
    assert running.image_id == image_id
    metrics = (await api.client.get("/metrics")).text
    assert 'spheroseg_results_dropped_total{reason="deleted"} 1.0' in metrics
    assert 'spheroseg_tasks_finished_total{outcome="done"}' not in metrics
