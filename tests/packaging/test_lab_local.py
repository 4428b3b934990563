"""The lab deployment brought up for real on this machine (packaging/lab/local.py), used through its edge.

What an admin and a biologist would notice: the lab answers at nginx's address and keeps its schema to
itself (production rules); one signs in, uploads and segments there with live progress, and images come
from the edge's cache the second time; when the replica that dispatches dies in the middle of the job, the
job still finishes, through the other replica, each image segmented exactly once, and the live progress
carries on after the edge hands the subscription to the surviving replica; a migrate with replicas
serving leaves the lab ready; Prometheus scrapes every replica, the scheduler and every worker, holds
every series the dashboard and alerts use, and raises the alert for the dead replica; and taking the lab
down leaves no process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from spheroseg_testing import graphql, login
from tests.packaging.lab import local_module
from tests.server.processes import disc_png

pytestmark = [pytest.mark.slow, pytest.mark.anyio, pytest.mark.timeout(300)]

LAB = Path(__file__).resolve().parents[2] / "packaging" / "lab"
METRIC = r"\b(?:spheroseg|dask)_[a-z_]+|\bup\b"
PASSWORD = "a long enough password"
IMAGES = 12
PROGRESS = "subscription($id: Int!) { jobProgress(jobId: $id) { status total done failed } }"
PROJECT = 'mutation { createProject(input: {name: "Plate 7"}) { ... on ProjectSuccess { project { id } } } }'
SEGMENT = """mutation($p: Int!) { segmentImages(input: {projectId: $p, method: "classical"}) {
  __typename ... on JobStarted { job { id total } } } }"""
ORIGINAL = "query($p: Int!) { project(id: $p) { images(first: 1) { edges { node { originalUrl } } } } }"
JOB = "query($id: Int!) { job(id: $id) { status total done failed } }"
VERSIONS = """query($p: Int!) { project(id: $p) { images(first: 100) { edges { node {
  name segmentationHistory { version } } } } } }"""


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Any]:
    lab = local_module().LocalLab(tmp_path / "lab", workers=2).start()
    try:
        yield lab
    finally:
        lab.stop()


class Follower:
    """Follows a job's progress through the edge, subscribing again whenever the connection drops."""

    def __init__(self, ws_url: str, token: str, job_id: int) -> None:
        self.ws_url, self.token, self.job_id = ws_url, token, job_id
        self.seen: list[dict[str, Any]] = []
        self.reconnects = 0
        self.task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        while not (self.seen and self.seen[-1]["status"] in ("DONE", "CANCELLED")):
            transport = WebsocketsTransport(
                url=self.ws_url,
                init_payload={"authorization": f"Bearer {self.token}"},
                subprotocols=["graphql-transport-ws"],
            )
            try:
                async with Client(transport=transport, fetch_schema_from_transport=False) as session:
                    request = GraphQLRequest(PROGRESS, variable_values={"id": self.job_id})
                    async for result in session.subscribe(request):
                        self.seen.append(result["jobProgress"])
            except Exception:  # the replica behind this connection died: subscribe again
                self.reconnects += 1
                await asyncio.sleep(0.2)

    async def finished(self, timeout: float) -> dict[str, Any]:
        await asyncio.wait_for(self.task, timeout)
        return self.seen[-1]


def _upload(edge: str, token: str, project_id: int) -> list[str]:
    names = [f"well_{i:02d}.png" for i in range(IMAGES)]
    response = httpx.post(
        f"{edge}/api/projects/{project_id}/images",
        files=[("files", (name, disc_png(700 + i, size=256), "image/png")) for i, name in enumerate(names)],
        headers={"Authorization": f"Bearer {token}"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    assert all(f["accepted"] for f in response.json()["files"]), response.json()
    return names


def _series(prometheus: str) -> set[str]:
    return set(httpx.get(prometheus + "/api/v1/label/__name__/values", timeout=10).json()["data"])


def _alerting(prometheus: str, instance: str) -> bool:
    """The admin's alert for a dead target (packaging/lab/alerts.yml) is pending or firing for it."""
    alerts = httpx.get(prometheus + "/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    return any(
        a["labels"]["alertname"] == "SpherosegTargetDown" and a["labels"]["instance"] == instance
        for a in alerts
    )


def _targets(prometheus: str) -> list[dict[str, Any]]:
    body = httpx.get(prometheus + "/api/v1/targets", timeout=10).json()
    return list(body["data"]["activeTargets"])


async def _wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.2)


def _every_target_up(prometheus: str, scraped: dict[str, int]) -> bool:
    targets = _targets(prometheus)
    jobs = {job: sum(t["labels"]["job"] == job for t in targets) for job in scraped}
    return jobs == scraped and all(t["health"] == "up" for t in targets)


def _freeze(processes: list[Any], number: signal.Signals) -> None:
    """SIGSTOP or SIGCONT a Dask worker and its nanny (one session each)."""
    for process in processes:
        os.killpg(process.popen.pid, number)


async def test_the_lab_segments_through_its_edge_and_survives_a_replica_dying_mid_job(lab: Any) -> None:
    edge = lab.edge_url
    lab.create_user("ana", PASSWORD)
    token = login(edge, "ana", PASSWORD)
    # The production rules of .env.example hold: nobody can read the schema off the lab.
    introspection = httpx.post(
        edge + "/graphql", json={"query": "{ __schema { types { name } } }"}, timeout=10
    )
    assert "introspection has been disabled" in introspection.text
    scraped = {"spheroseg-server": 2, "dask-scheduler": 1, "dask-worker": 2}
    await _wait_until(lambda: _every_target_up(lab.prometheus_url, scraped), 30, "every target up")

    project_id = graphql(edge, token, PROJECT)["createProject"]["project"]["id"]
    names = _upload(edge, token, project_id)

    # The edge caches signed image URLs: the second fetch of an original never reaches a replica.
    first = graphql(edge, token, ORIGINAL, p=project_id)["project"]["images"]["edges"][0]["node"][
        "originalUrl"
    ]
    assert first.startswith(edge + "/img/"), "the API hands out URLs on the edge (SPHEROSEG_PUBLIC_URL)"
    fetched = [httpx.get(first, timeout=10) for _ in range(2)]
    assert [r.status_code for r in fetched] == [200, 200] and fetched[0].content == fetched[1].content
    assert [r.headers["x-cache-status"] for r in fetched] == ["MISS", "HIT"]

    # The workers are held still while the job starts, so the replica that dispatches is killed while
    # every task is out on the cluster: the harshest middle of a job, whatever this machine's speed.
    _freeze(lab.dask_workers, signal.SIGSTOP)
    try:
        started = graphql(edge, token, SEGMENT, p=project_id)["segmentImages"]
        assert started["__typename"] == "JobStarted", started
        job_id = started["job"]["id"]
        ws_url = edge.replace("http://", "ws://") + "/graphql"
        # Two connections in a row: nginx's round robin puts one on each replica, so one is cut below.
        followers = [Follower(ws_url, token, job_id), Follower(ws_url, token, job_id)]
        await _wait_until(lambda: all(f.seen for f in followers), 30, "both subscriptions to answer")
        await _wait_until(
            lambda: graphql(edge, token, JOB, id=job_id)["job"]["status"] == "RUNNING", 30, "the job to run"
        )
        dispatcher = lab.dispatching_replica()
        assert dispatcher is not None, "no replica's spheroseg_dispatching metric reads 1"
        dispatcher.kill()
    finally:
        _freeze(lab.dask_workers, signal.SIGCONT)
    survivor = next(r for r in lab.replicas if r is not dispatcher)

    finals = [await follower.finished(timeout=180) for follower in followers]
    assert all(final == {"status": "DONE", "total": IMAGES, "done": IMAGES, "failed": 0} for final in finals)
    assert sum(f.reconnects for f in followers) >= 1, "no subscription went through the dead replica"
    for follower in followers:
        done = [snapshot["done"] for snapshot in follower.seen]
        assert done == sorted(done), "progress went backwards across the reconnect"
    assert lab.dispatching_replica() is survivor, "the surviving replica did not take dispatch over"
    edges = graphql(edge, token, VERSIONS, p=project_id)["project"]["images"]["edges"]
    versions = {e["node"]["name"]: [h["version"] for h in e["node"]["segmentationHistory"]] for e in edges}
    assert versions == {name: [1] for name in names}, "an image was segmented twice or not at all"

    # An upgrade's first step, with a replica serving: it changes nothing at the newest schema and
    # leaves the lab ready (docs/deploy.md, "Upgrades").
    lab.spheroseg("server", "migrate")
    assert httpx.get(edge + "/health/ready", timeout=10).json()["status"] == "ready"

    # Every series the Grafana dashboard draws and the alerts watch is one the lab's targets export.
    panels = json.loads((LAB / "grafana" / "dashboards" / "spheroseg.json").read_text())["panels"]
    drawn = {m for p in panels for t in p["targets"] for m in re.findall(METRIC, t["expr"])}
    drawn |= set(re.findall(METRIC, " ".join(re.findall(r"expr: (.*)", (LAB / "alerts.yml").read_text()))))
    await _wait_until(lambda: drawn <= _series(lab.prometheus_url), 30, f"Prometheus to hold {sorted(drawn)}")

    # Prometheus notices what an admin must be told: the killed replica is down.
    dead = dispatcher.url.removeprefix("http://")
    await _wait_until(
        lambda: any(
            t["labels"]["instance"] == dead and t["health"] == "down" for t in _targets(lab.prometheus_url)
        ),
        30,
        "Prometheus to see the killed replica down",
    )
    await _wait_until(lambda: _alerting(lab.prometheus_url, dead), 30, "the replica-down alert")

    processes = list(lab.processes)
    edge_port = int(edge.rsplit(":", 1)[1])
    lab.stop()
    assert not [p.name for p in processes if p.alive()]
    with pytest.raises(OSError), contextlib.closing(socket.create_connection(("127.0.0.1", edge_port), 1)):
        pass
