"""Segmentation jobs end to end, with real processes: the server as `spheroseg server serve`, a Dask
cluster with worker processes, gql subscribed over graphql-transport-ws.

What a user would notice is checked: every image ends segmented exactly once (one stored version, one
"task finished" event), progress never goes backwards, and killing a worker or the server itself (SIGKILL)
loses nothing; two replicas on one PostgreSQL share events and hand dispatch over when one dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from distributed import Client, LocalCluster
from sqlalchemy import select

from server.db.engine import create_engine
from server.db.models import Job
from tests.server.processes import (
    SPHEROSEG,
    ServerProcess,
    alive,
    disc_png,
    graphql,
    login,
    start_server,
    subscribe,
    wait_until,
)
from tests.server.starters import Postgres

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]

PASSWORD = "a long enough password"
PROGRESS = """subscription($id: Int!) { jobProgress(jobId: $id) {
  status total done failed cancelled percentage lastImageName } }"""
EVENTS = "subscription($p: Int!) { projectEvents(projectId: $p) { kind imageIds jobId actor missed } }"
SEGMENT = """mutation($p: Int!) { segmentImages(input: {projectId: $p, method: "classical"}) {
  __typename ... on JobStarted { job { id total status } skippedImageIds } } }"""
IMAGES = """query($p: Int!) { project(id: $p) { images(first: 200) { edges { node {
  id name segmentationStatus segmentationHistory { version } } } } } }"""
JOB = "query($id: Int!) { job(id: $id) { status total done failed cancelled failures { imageName reason } } }"


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[LocalCluster]:
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    )
    try:
        yield cluster
    finally:
        cluster.close()


class Lab:
    """A lab server's settings, its users, and the server processes started for a test."""

    def __init__(self, database_url: str, root: Path, scheduler: str) -> None:
        self.root = root
        self.env = {
            "SPHEROSEG_DATABASE_URL": database_url,
            "SPHEROSEG_STORAGE_URL": str(root / "blobs"),
            "SPHEROSEG_SECRET_KEY": "job-test-secret",
            "SPHEROSEG_SCHEDULER": scheduler,
            "SPHEROSEG_PASSWORD_TIME_COST": "1",
            "SPHEROSEG_PASSWORD_MEMORY_KIB": "1024",
            "SPHEROSEG_DISPATCH_POLL_SECONDS": "0.3",
        }
        self.servers: list[ServerProcess] = []

    def start(self) -> ServerProcess:
        server = start_server(self.env, self.root / f"server{len(self.servers)}.log")
        self.servers.append(server)
        return server

    def create_user(self, name: str, admin: bool = False) -> None:
        subprocess.run(
            [SPHEROSEG, "server", "create-user", name, "--password-stdin", *(["--admin"] if admin else [])],
            input=PASSWORD + "\n",
            text=True,
            env={**os.environ, **self.env},
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@pytest.fixture
def lab(database_url: str, tmp_path: Path, dask_cluster: LocalCluster) -> Iterator[Lab]:
    lab = Lab(database_url, tmp_path, dask_cluster.scheduler_address)
    try:
        yield lab
    finally:
        lab.stop()


def _project_with_images(server: ServerProcess, token: str, images: list[tuple[str, bytes]]) -> int:
    created = graphql(
        server.url,
        token,
        'mutation { createProject(input: {name: "Screen"}) { ... on ProjectSuccess { project { id } } } }',
    )
    project_id: int = created["createProject"]["project"]["id"]
    response = httpx.post(
        f"{server.url}/api/projects/{project_id}/images",
        files=[("files", (name, data, "image/png")) for name, data in images],
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert all(f["accepted"] for f in response.json()["files"]), response.json()
    return project_id


def _versions(server: ServerProcess, token: str, project_id: int) -> dict[str, list[int]]:
    edges = graphql(server.url, token, IMAGES, p=project_id)["project"]["images"]["edges"]
    return {e["node"]["name"]: [h["version"] for h in e["node"]["segmentationHistory"]] for e in edges}


def _start_job(server: ServerProcess, token: str, project_id: int) -> int:
    started = graphql(server.url, token, SEGMENT, p=project_id)["segmentImages"]
    assert started["__typename"] == "JobStarted", started
    job_id: int = started["job"]["id"]
    return job_id


class Follower:
    """Collects a subscription's results in the background."""

    def __init__(self, results: AsyncIterator[dict[str, Any]]) -> None:
        self.seen: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self.task = asyncio.create_task(self._follow(results))

    async def _follow(self, results: AsyncIterator[dict[str, Any]]) -> None:
        try:
            async for result in results:
                self.seen.append(result)
        except Exception as error:  # kept: a test asserts on it when the server is expected to stay up
            self.error = error

    async def done(self, timeout: float) -> list[dict[str, Any]]:
        await asyncio.wait_for(self.task, timeout)
        return self.seen

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task


async def test_a_job_segments_every_image_once_with_live_progress(lab: Lab) -> None:
    lab.create_user("ana")
    server = lab.start()
    token = login(server.url, "ana", PASSWORD)
    images = [(f"well_{i:02d}.png", disc_png(i, size=256)) for i in range(30)]
    project_id = _project_with_images(server, token, images)
    events = Follower(subscribe(server, token, EVENTS, p=project_id))
    await asyncio.sleep(0.5)  # the event subscription is open before the job starts
    job_id = _start_job(server, token, project_id)
    progress = await Follower(subscribe(server, token, PROGRESS, id=job_id)).done(timeout=180)

    updates = [r["jobProgress"] for r in progress]
    done = [u["done"] for u in updates]
    assert done == sorted(done), "progress went backwards"
    assert updates[-1]["status"] == "DONE" and updates[-1]["done"] == 30 and updates[-1]["failed"] == 0
    assert updates[-1]["percentage"] == 100.0 and updates[-1]["lastImageName"].startswith("well_")
    assert len(updates) > 2, "progress came only at the start and the end"
    versions = _versions(server, token, project_id)
    assert versions == {name: [1] for name, _ in images}, "an image was segmented twice or not at all"

    await wait_until(
        lambda: sum(e["projectEvents"]["kind"] == "task_finished" for e in events.seen) >= 30, 30, "events"
    )
    await asyncio.sleep(0.5)
    finished = [e["projectEvents"] for e in events.seen if e["projectEvents"]["kind"] == "task_finished"]
    assert (
        sorted(i for e in finished for i in e["imageIds"])
        == sorted(set(i for e in finished for i in e["imageIds"]))
        and len(finished) == 30
    )
    kinds = {e["projectEvents"]["kind"] for e in events.seen}
    assert {"job_created", "image_status", "job_progress", "job_finished"} <= kinds
    await events.close()


async def test_killing_a_worker_and_the_server_mid_job_loses_and_duplicates_nothing(
    lab: Lab, dask_cluster: LocalCluster
) -> None:
    lab.create_user("ana")
    server = lab.start()
    token = login(server.url, "ana", PASSWORD)
    images = [(f"plate_{i:02d}.png", disc_png(100 + i, size=640)) for i in range(30)]
    project_id = _project_with_images(server, token, images)
    job_id = _start_job(server, token, project_id)

    def done() -> int:
        return int(graphql(server.url, token, JOB, id=job_id)["job"]["done"])

    await wait_until(lambda: done() >= 3, 120, "the first results")
    with Client(dask_cluster.scheduler_address, timeout=30) as client:
        pids = client.run(os.getpid)
    os.kill(next(iter(pids.values())), signal.SIGKILL)  # the nanny starts a new worker
    await wait_until(lambda: done() >= 8, 120, "results after the worker died")
    helpers = server.children()  # it made thumbnails after the upload, in a process of its own
    assert helpers
    server.kill()
    await wait_until(lambda: not any(alive(pid) for pid in helpers), 20, "the server's helpers to end")
    before_restart = await _done_in_database(lab.env["SPHEROSEG_DATABASE_URL"], job_id)
    assert 8 <= before_restart < 30, "the job ended before the server could be killed mid-job"

    server = lab.start()  # the new dispatcher puts the dead one's running tasks back in the queue
    progress = await Follower(subscribe(server, token, PROGRESS, id=job_id)).done(timeout=240)
    final = progress[-1]["jobProgress"]
    assert final["status"] == "DONE" and final["done"] == 30 and final["failed"] == 0
    assert progress[0]["jobProgress"]["done"] >= before_restart  # a client reconnecting sees the totals
    assert _versions(server, token, project_id) == {name: [1] for name, _ in images}


async def _done_in_database(database_url: str, job_id: int) -> int:
    """The job's done count as stored, read while no server runs."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            return int(await connection.scalar(select(Job.done).where(Job.id == job_id)) or 0)
    finally:
        await engine.dispose()


async def test_cancel_mid_job_and_a_corrupt_image_fails_alone(lab: Lab) -> None:
    lab.create_user("ana")
    server = lab.start()
    token = login(server.url, "ana", PASSWORD)
    images = [(f"a_{i:02d}.png", disc_png(200 + i, size=256)) for i in range(6)]
    project_id = _project_with_images(server, token, images)
    blobs = sorted((lab.root / "blobs" / "images").iterdir())
    blobs[0].write_bytes(blobs[0].read_bytes()[:300])  # storage damage: a truncated PNG
    job_id = _start_job(server, token, project_id)
    final = (await Follower(subscribe(server, token, PROGRESS, id=job_id)).done(timeout=120))[-1]
    assert final["jobProgress"]["done"] == 5 and final["jobProgress"]["failed"] == 1
    failures = graphql(server.url, token, JOB, id=job_id)["job"]["failures"]
    assert len(failures) == 1, failures
    assert any(word in failures[0]["reason"].lower() for word in ("truncated", "corrupt")), failures
    # the reason names the image, never where the server keeps it
    assert failures[0]["reason"].startswith("a_0") and str(lab.root) not in failures[0]["reason"], failures

    many = [(f"b_{i:02d}.png", disc_png(300 + i, size=640)) for i in range(30)]
    other = _project_with_images(server, token, many)
    second = _start_job(server, token, other)
    await wait_until(
        lambda: graphql(server.url, token, JOB, id=second)["job"]["done"] >= 2, 120, "the first results"
    )
    cancelled = graphql(
        server.url,
        token,
        "mutation($id: Int!) { cancelJob(id: $id) { __typename ... on Job { status } } }",
        id=second,
    )["cancelJob"]
    assert cancelled == {"__typename": "Job", "status": "CANCELLED"}
    await asyncio.sleep(3)  # results still on the cluster arrive and must be ignored
    job = graphql(server.url, token, JOB, id=second)["job"]
    assert job["status"] == "CANCELLED" and job["done"] + job["cancelled"] == 30 and job["done"] < 30
    edges = graphql(server.url, token, IMAGES, p=other)["project"]["images"]["edges"]
    statuses = {e["node"]["segmentationStatus"] for e in edges}
    assert statuses <= {"DONE", "NONE"}, statuses  # nothing stuck queued or running
    assert sum(bool(e["node"]["segmentationHistory"]) for e in edges) == job["done"]


def _segment_tasks(dask_scheduler: Any) -> list[str]:
    return sorted(str(key) for key in dask_scheduler.tasks if "spheroseg-segment" in str(key))


async def test_deleting_images_mid_job_takes_them_off_the_cluster(
    lab: Lab, dask_cluster: LocalCluster
) -> None:
    """Every worker is kept busy (by this test), so the job's images wait on the scheduler; deleting them
    (some images, then the project) must release them there instead of leaving them to be computed."""
    lab.create_user("ana")
    server = lab.start()
    token = login(server.url, "ana", PASSWORD)
    project_id = _project_with_images(
        server, token, [(f"d_{i}.png", disc_png(400 + i, 128)) for i in range(6)]
    )
    ids = [
        e["node"]["id"]
        for e in graphql(server.url, token, IMAGES, p=project_id)["project"]["images"]["edges"]
    ]
    hold_name = f"spheroseg-test-hold-{uuid.uuid4().hex}"

    def hold() -> bool:
        from distributed import Event

        return bool(Event(hold_name).wait(120))

    with Client(dask_cluster.scheduler_address) as client:
        workers = list(client.scheduler_info()["workers"])
        hogs = [client.submit(hold, workers=[w], allow_other_workers=False, pure=False) for w in workers]
        try:
            await wait_until(lambda: sum(map(len, client.processing().values())) >= len(workers), 30, "hogs")
            _start_job(server, token, project_id)
            await wait_until(lambda: client.run_on_scheduler(_segment_tasks), 60, "the job on the cluster")
            graphql(
                server.url,
                token,
                "mutation($i: [Int!]!) { deleteImages(imageIds: $i) { __typename } }",
                i=ids[:2],
            )
            graphql(
                server.url, token, "mutation($p: Int!) { deleteProject(id: $p) { message } }", p=project_id
            )
            await wait_until(
                lambda: not client.run_on_scheduler(_segment_tasks), 30, "the deleted images off the cluster"
            )
            await wait_until(
                lambda: "spheroseg_tasks_in_flight 0.0" in httpx.get(server.url + "/metrics").text,
                30,
                "the dispatcher to let the wave go",
            )
        finally:
            from distributed import Event

            Event(hold_name, client=client).set()
            client.gather(hogs)


async def test_two_replicas_share_events_and_hand_dispatch_over(
    postgres: Postgres, tmp_path: Path, dask_cluster: LocalCluster
) -> None:
    name = "replicas"
    postgres.psql(f"CREATE DATABASE {name} TEMPLATE template_spheroseg")
    lab = Lab(postgres.url(name), tmp_path, dask_cluster.scheduler_address)
    try:
        lab.create_user("ana")
        lab.create_user("root", admin=True)
        replicas = [lab.start(), lab.start()]
        admin = login(replicas[0].url, "root", PASSWORD)
        await wait_until(
            lambda: sum(_dispatching(r, admin) for r in replicas) == 1, 30, "one replica to lead"
        )
        leader, follower = replicas if _dispatching(replicas[0], admin) else replicas[::-1]
        token = login(follower.url, "ana", PASSWORD)
        images = [(f"p_{i:02d}.png", disc_png(400 + i, size=640)) for i in range(30)]
        project_id = _project_with_images(leader, token, images)
        job_id = _start_job(leader, token, project_id)  # created through the leader, watched on the other
        watcher = Follower(subscribe(follower, token, PROGRESS, id=job_id))
        await wait_until(lambda: any(r["jobProgress"]["done"] >= 3 for r in watcher.seen), 120, "progress")
        leader.kill()
        await wait_until(lambda: _dispatching(follower, admin), 30, "the survivor to take over")
        progress = [r["jobProgress"] for r in await watcher.done(timeout=240)]
        assert watcher.error is None
        assert progress[-1]["status"] == "DONE" and progress[-1]["done"] == 30
        assert [p["done"] for p in progress] == sorted(p["done"] for p in progress)
        assert _versions(follower, token, project_id) == {name: [1] for name, _ in images}
    finally:
        lab.stop()


def _dispatching(server: ServerProcess, admin: str) -> bool:
    """Whether this replica holds the dispatcher lock (as its administrator sees it)."""
    status = graphql(server.url, admin, "{ clusterStatus { dispatching } }")["clusterStatus"]
    return bool(status["dispatching"])
