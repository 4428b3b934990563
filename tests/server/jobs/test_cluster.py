"""The cluster for everyone: a status that starts nothing, administrators' controls, and live worker events.

The server's own cluster runs real Dask worker processes; ``clusterEvents`` is followed over a real
WebSocket (the app in uvicorn on 127.0.0.1, in the test's loop).
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from gql import GraphQLRequest

from server.app import create_app
from spheroseg_testing.dask_cluster import running_scheduler
from tests.server.api.test_live import _websocket
from tests.server.conftest import Api
from tests.server.edge import serve
from tests.server.starters import free_port

pytestmark = pytest.mark.anyio

SUMMARY = "{ clusterStatus { state location workerCount gpuCount busyWorkers waiting imagesPerSecond } }"
DETAILS = "{ clusterStatus { state launchedHere address workers { name address threads status } } }"
EVENTS = "subscription { clusterEvents { kind worker name workers missed } }"
START = "mutation($n: Int) { startCluster(workers: $n) { __typename ... on ClusterStarted { started } } }"
SCALE = """mutation($n: Int!) { scaleCluster(workers: $n) { __typename
  ... on ClusterScaled { workers } ... on InputError { message } } }"""
STOP = "mutation { stopCluster { __typename ... on ClusterStopped { stopped } } }"


async def _next(stream: Any) -> Any:
    """The next event; worker processes start slowly on a busy machine, so a minute is allowed."""
    if isinstance(stream, asyncio.Future):
        return await asyncio.wait_for(stream, 60)
    return await asyncio.wait_for(anext(stream), 60)


async def _kinds_until(stream: Any, kind: str, workers: int) -> list[dict[str, Any]]:
    """Events up to the first of ``kind`` that leaves ``workers`` workers."""
    seen = []
    while True:
        event = (await _next(stream))["clusterEvents"]
        seen.append(event)
        if event["kind"] == kind and event["workers"] == workers:
            return seen


async def test_asking_for_the_status_starts_nothing_and_members_see_only_the_summary(api: Api) -> None:
    member = await api.user("member")
    admin = await api.user("root", admin=True)
    for _ in range(3):  # a status panel polling
        status = (await api.ok(SUMMARY, member))["clusterStatus"]
        assert status == {
            "state": "STOPPED",
            "location": "this server",
            "workerCount": 0,
            "gpuCount": 0,
            "busyWorkers": 0,
            "waiting": 0,
            "imagesPerSecond": 0.0,
        }
    assert not api.services.cluster.started
    refused = await api.gql(DETAILS, member)
    assert refused["errors"][0]["message"] == "only an administrator may do this"
    assert (await api.ok(DETAILS, admin))["clusterStatus"] == {
        "state": "STOPPED",
        "launchedHere": True,
        "address": None,
        "workers": [],
    }
    stopped_scale = (await api.ok(SCALE, admin, n=2))["scaleCluster"]
    assert stopped_scale["message"].startswith("the cluster is not running")
    assert not api.services.cluster.started
    for document in (START, STOP):
        assert "only an administrator" in (await api.gql(document, member))["errors"][0]["message"]


async def test_admins_start_scale_and_stop_it_and_everyone_sees_workers_come_die_and_go(api: Api) -> None:
    member = await api.user("member")
    admin = await api.user("root", admin=True)
    async with serve(create_app(services=api.services), free_port()) as url, _websocket(url, member) as ws:
        events = ws.subscribe(GraphQLRequest(EVENTS))
        first = asyncio.ensure_future(anext(events))
        while api.services.bus.subscriber_count == 0:  # open before the cluster starts
            await asyncio.sleep(0.01)
        assert (await api.ok(START, admin, n=1))["startCluster"] == {
            "__typename": "ClusterStarted",
            "started": True,
        }
        started = (await _next(first))["clusterEvents"]
        assert started == {
            "kind": "cluster_started",
            "worker": None,
            "name": None,
            "workers": 1,
            "missed": False,
        }
        status = (await api.ok(SUMMARY, member))["clusterStatus"]
        assert status["state"] == "RUNNING" and status["workerCount"] == 1
        details = (await api.ok(DETAILS, admin))["clusterStatus"]
        assert details["address"].startswith("tcp://127.0.0.1:") and len(details["workers"]) == 1

        assert (await api.ok(SCALE, admin, n=2))["scaleCluster"] == {
            "__typename": "ClusterScaled",
            "workers": 2,
        }
        joined = await _kinds_until(events, "worker_joined", 2)
        assert joined[-1]["worker"].startswith("tcp://") and joined[-1]["name"]

        # a worker process killed: it died (its nanny then starts a new one, which joins)
        client = await api.services.cluster.client()
        pids = await client.run(os.getpid)
        victim = details["workers"][0]["address"]  # the first worker: its nanny has long settled
        pid = pids[victim]
        os.kill(pid, signal.SIGKILL)
        died = await _kinds_until(events, "worker_died", 1)
        assert died[-1]["worker"] == victim
        await _kinds_until(events, "worker_joined", 2)

        assert (await api.ok(SCALE, admin, n=1))["scaleCluster"]["workers"] == 1
        left = await _kinds_until(events, "worker_left", 1)
        assert all(e["kind"] != "worker_died" for e in left)  # retired on purpose is no death

        assert (await api.ok(STOP, admin))["stopCluster"] == {"__typename": "ClusterStopped", "stopped": True}
        await _kinds_until(events, "cluster_stopped", 0)
        assert (await api.ok(SUMMARY, member))["clusterStatus"]["state"] == "STOPPED"
        assert (await api.ok(STOP, admin))["stopCluster"]["stopped"] is False


async def test_a_scheduler_that_does_not_answer_is_reported_and_not_ours_to_start(api: Api) -> None:
    member = await api.user("member")
    admin = await api.user("root", admin=True)
    settings = api.services.settings
    settings.scheduler, settings.cluster_connect_timeout = f"tcp://127.0.0.1:{free_port()}", 1.0
    status = (await api.ok("{ clusterStatus { state location workerCount problem } }", member))[
        "clusterStatus"
    ]
    assert status["state"] == "UNREACHABLE" and status["location"] == settings.scheduler
    assert status["workerCount"] == 0 and "cannot reach the Dask cluster" in status["problem"]
    for field in ("startCluster", "stopCluster"):
        refused = (await api.ok(f"mutation {{ {field} {{ ... on InputError {{ message }} }} }}", admin))[
            field
        ]
        assert refused["message"].startswith("this server uses a cluster it did not start"), refused


async def test_a_scheduler_that_goes_away_is_reported_and_found_again_when_back(
    api: Api, tmp_path: Path
) -> None:
    admin = await api.user("root", admin=True)
    settings = api.services.settings
    settings.cluster_connect_timeout = 5.0
    query = "{ clusterStatus { state workerCount problem } }"
    with running_scheduler(tmp_path / "first") as first:
        settings.scheduler = first.address
        assert (await api.ok(query, admin))["clusterStatus"]["state"] == "RUNNING"
    gone = (await api.ok(query, admin))["clusterStatus"]  # not an internal error
    assert gone["state"] == "UNREACHABLE" and first.address in gone["problem"]
    with running_scheduler(tmp_path / "second") as second:
        settings.scheduler = second.address  # a new one (deployed again): the next reading finds it
        back = (await api.ok(query, admin))["clusterStatus"]
        assert (back["state"], back["workerCount"]) == ("RUNNING", 1)
