"""Exports in tests: start one with ``exportProject`` and wait for its job to end (by asking ``job``)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.server.conftest import Api

EXPORT = """mutation($p: Int!, $formats: [ExportFormat!], $ids: [Int!], $filter: ImageFilterInput) {
  exportProject(projectId: $p, formats: $formats, imageIds: $ids, filter: $filter) { __typename
    ... on ExportStarted { job { id kind status total } }
    ... on InputError { field message }
    ... on RateLimited { message retryAfterSeconds } } }"""
FIELDS = "id kind status total done problem downloadUrl downloadExpiresAt parameters"


async def wait_for_job(
    api: Api, token: str, job_id: int, timeout: float = 30.0, fields: str = FIELDS
) -> dict[str, Any]:
    """The job (these ``fields`` of it) once it has ended (DONE, FAILED or CANCELLED)."""
    query = f"query($id: Int!) {{ job(id: $id) {{ {fields} }} }}"
    async with asyncio.timeout(timeout):
        while True:
            job: dict[str, Any] = (await api.ok(query, token, id=job_id))["job"]
            if job["status"] in ("DONE", "FAILED", "CANCELLED"):
                return job
            await asyncio.sleep(0.05)


async def start_export(api: Api, token: str, project_id: int, **given: Any) -> dict[str, Any]:
    """``exportProject``'s answer (``ExportStarted``, ``InputError`` or ``RateLimited``)."""
    answer: dict[str, Any] = (await api.ok(EXPORT, token, p=project_id, **given))["exportProject"]
    return answer


async def exported(api: Api, token: str, project_id: int, **given: Any) -> dict[str, Any]:
    """An export of the project, finished: its job with ``url`` (the download link) and ``expiresAt``."""
    started = await start_export(api, token, project_id, **given)
    assert started["__typename"] == "ExportStarted", started
    job = await wait_for_job(api, token, started["job"]["id"])
    assert job["status"] == "DONE", job
    return {**job, "url": job["downloadUrl"], "expiresAt": job["downloadExpiresAt"]}
