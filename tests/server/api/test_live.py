"""Jobs and subscriptions at their edges: bad input, who may subscribe, connection limits, metrics, and
the job state machine itself. The WebSocket tests run the app in uvicorn on 127.0.0.1 in the test's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport
from graphql import ExecutionResult

from server.api.context import authenticate, build_context
from server.api.schema import build_schema
from server.app import create_app
from server.db import projects
from server.domain.errors import JobStateError
from server.domain.jobs import JobCounts, JobStatus, TaskStatus, job_status, task_change
from server.domain.review import SegmentationStatus
from server.events import Event, EventKind, LocalEventBus
from tests.server.conftest import Api, png_bytes
from tests.server.edge import serve
from tests.server.starters import free_port

pytestmark = pytest.mark.anyio

SEGMENT = """mutation($input: SegmentImagesInput!) { segmentImages(input: $input) { __typename
  ... on JobStarted { job { id status total } skippedImageIds } ... on InputError { field message } } }"""
FORBIDDEN = 4403
PROGRESS = "subscription($id: Int!) { jobProgress(jobId: $id) { status total done percentage } }"


def test_the_state_machine_keeps_task_image_and_job_in_step() -> None:
    done = task_change(TaskStatus.RUNNING, TaskStatus.DONE, image_has_segmentation=False)
    assert done.image_status is SegmentationStatus.DONE and done.done == 1
    failed = task_change(TaskStatus.RUNNING, TaskStatus.FAILED, image_has_segmentation=True)
    assert failed.image_status is SegmentationStatus.FAILED and failed.failed == 1
    # a cancelled image goes back to what it had: its earlier segmentation, or nothing
    assert task_change(TaskStatus.QUEUED, TaskStatus.CANCELLED, True).image_status is SegmentationStatus.DONE
    assert task_change(TaskStatus.QUEUED, TaskStatus.CANCELLED, False).image_status is SegmentationStatus.NONE
    for before, after in [(TaskStatus.DONE, TaskStatus.RUNNING), (TaskStatus.QUEUED, TaskStatus.DONE)]:
        with pytest.raises(JobStateError):
            task_change(before, after, False)
    assert job_status(JobCounts(3), started=False, cancelled=False) is JobStatus.QUEUED
    assert job_status(JobCounts(3, done=1), started=True, cancelled=False) is JobStatus.RUNNING
    assert job_status(JobCounts(3, done=2, failed=1), started=True, cancelled=False) is JobStatus.DONE
    assert job_status(JobCounts(3, done=1), started=True, cancelled=True) is JobStatus.CANCELLED
    assert JobCounts(0).percentage == 100.0 and JobCounts(4, done=1, failed=1).percentage == 50.0


async def _project_with_images(api: Api, token: str, count: int) -> tuple[int, list[int]]:
    project_id = await api.project(token)
    files = [(f"w{i}.png", png_bytes(seed=i)) for i in range(count)]
    uploaded = (await api.upload(token, project_id, files)).json()["files"]
    return project_id, [f["imageId"] for f in uploaded]


async def test_segment_images_input_errors_and_images_already_queued(api: Api) -> None:
    owner = await api.user("owner")
    project_id, ids = await _project_with_images(api, owner, 3)
    other_project, other_ids = await _project_with_images(api, owner, 1)

    async def segment(**given: Any) -> dict[str, Any]:
        return (await api.ok(SEGMENT, owner, input=given))["segmentImages"]  # type: ignore[no-any-return]

    assert (await segment(projectId=project_id, method="magic"))["field"] == "method"
    assert (await segment(imageIds=[ids[0], other_ids[0]]))["message"] == "give images of one project"
    assert (await segment(projectId=project_id, parameters=[1, 2]))["field"] == "parameters"
    api.services.settings.max_images_per_job = 2
    assert "at most 2 images" in (await segment(projectId=project_id))["message"]
    api.services.settings.max_images_per_job = 100
    first = await segment(projectId=project_id, method="classical")
    assert first["job"] == {"id": first["job"]["id"], "status": "QUEUED", "total": 3}
    again = await segment(imageIds=ids, method="classical")  # all three wait in the first job
    assert again["job"]["total"] == 0 and again["skippedImageIds"] == ids and again["job"]["status"] == "DONE"
    cancelled = await api.ok(
        "mutation($id: Int!) { cancelJob(id: $id) { __typename ... on Job { status cancelled } } }",
        owner,
        id=first["job"]["id"],
    )
    assert cancelled["cancelJob"] == {"__typename": "Job", "status": "CANCELLED", "cancelled": 3}
    statuses = await api.ok(
        "query($p: Int!) { project(id: $p) { jobs { id status } "
        "images { edges { node { segmentationStatus } } } } }",
        owner,
        p=project_id,
    )
    assert [j["status"] for j in statuses["project"]["jobs"]] == ["DONE", "CANCELLED"]  # newest first
    assert {e["node"]["segmentationStatus"] for e in statuses["project"]["images"]["edges"]} == {"NONE"}
    assert other_project != project_id
    metrics = (await api.client.get("/metrics")).text
    assert 'spheroseg_jobs{status="queued"} 0.0' in metrics and "spheroseg_events_published_total" in metrics


async def _close_code(url: str, token: str | None) -> int | None:
    """The code the server closed the connection with at ``connection_init``, or None if it accepted."""
    try:
        async with _websocket(url, token):
            return None
    except Exception as error:  # gql wraps the websockets error; the close frame is in the chain
        cause: BaseException | None = error
        while cause is not None:
            received = getattr(cause, "rcvd", None)
            if received is not None:
                return int(received.code)
            cause = cause.__cause__ or cause.__context__
        raise


@asynccontextmanager
async def _websocket(url: str, token: str | None) -> AsyncIterator[Any]:
    payload = {"authorization": f"Bearer {token}"} if token else {}
    transport = WebsocketsTransport(
        url=url.replace("http://", "ws://") + "/graphql",
        init_payload=payload,
        subprotocols=["graphql-transport-ws"],
    )
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        yield session


async def test_subscriptions_need_a_token_a_role_and_stay_within_limits(api: Api) -> None:
    owner = await api.user("owner")
    stranger = await api.user("stranger")
    project_id, _ = await _project_with_images(api, owner, 2)
    job = await api.ok(SEGMENT, owner, input={"projectId": project_id, "method": "classical"})
    job_id = job["segmentImages"]["job"]["id"]
    api.services.settings.max_connections_per_user = 2
    async with serve(create_app(services=api.services), free_port()) as url:
        async with _websocket(url, owner) as session:
            first = await anext(session.subscribe(GraphQLRequest(PROGRESS, variable_values={"id": job_id})))
            assert first["jobProgress"] == {"status": "QUEUED", "total": 2, "done": 0, "percentage": 0.0}
        async with _websocket(url, stranger) as session:
            with pytest.raises(TransportQueryError, match="not found, or you may not see it"):
                await anext(session.subscribe(GraphQLRequest(PROGRESS, variable_values={"id": job_id})))
        assert await _close_code(url, None) == await _close_code(url, "forged-token") == FORBIDDEN
        async with _websocket(url, owner), _websocket(url, owner):
            assert await _close_code(url, owner) == FORBIDDEN  # a third connection of the same user
        assert await _close_code(url, owner) is None  # closed connections no longer count


async def test_deleting_an_image_of_a_running_job_lets_the_job_finish(api: Api) -> None:
    owner = await api.user("owner")
    _, ids = await _project_with_images(api, owner, 2)
    started = await api.ok(SEGMENT, owner, input={"imageIds": ids[:1], "method": "classical"})
    job_id = started["segmentImages"]["job"]["id"]
    await api.ok("mutation($i: [Int!]!) { deleteImages(imageIds: $i) { __typename } }", owner, i=ids[:1])
    job = await api.ok("query($id: Int!) { job(id: $id) { status total cancelled } }", owner, id=job_id)
    assert job["job"] == {"status": "DONE", "total": 1, "cancelled": 1}  # not waiting forever on a lost image


async def test_a_client_too_slow_for_its_events_is_told_it_missed_some(api: Api) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    context = await build_context(api.services, None)
    await authenticate(context, owner)
    schema = build_schema(api.services.settings)
    # the in-process bus hands events over synchronously, so all of them queue up before the client reads
    lab_bus, api.services.bus = api.services.bus, LocalEventBus()
    try:
        events = await schema.subscribe(
            "subscription($p: Int!) { projectEvents(projectId: $p) { kind missed data } }",
            variable_values={"p": project_id},
            context_value=context,
        )
        assert not isinstance(events, ExecutionResult)
        first = asyncio.ensure_future(anext(events))
        while api.services.bus.subscriber_count == 0:  # the subscription is open before anything happens
            await asyncio.sleep(0.01)
        for n in range(300):  # more than a subscriber's queue holds (256) before it reads any
            await api.services.bus.publish(Event(EventKind.REVIEW_CHANGED, project_id, data={"n": n}))
        oldest_kept = (await first).data["projectEvents"]  # type: ignore[union-attr,index]
        assert oldest_kept["missed"] and oldest_kept["data"]["n"] == 300 - 256
        following = (await anext(events)).data["projectEvents"]  # type: ignore[union-attr,index]
        assert not following["missed"] and following["data"]["n"] == 300 - 255
        await events.aclose()
    finally:
        await api.services.bus.close()
        api.services.bus = lab_bus


async def test_a_job_whose_cluster_cannot_be_reached_says_so_and_keeps_its_images(api: Api) -> None:
    owner = await api.user("owner")
    project_id, _ = await _project_with_images(api, owner, 2)
    settings = api.services.settings
    settings.scheduler = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    settings.cluster_connect_timeout = 1.0
    settings.dispatch_poll_seconds = 0.2
    dispatcher = api.services.dispatcher
    assert dispatcher is not None
    dispatcher.start()
    try:
        started = await api.ok(SEGMENT, owner, input={"projectId": project_id, "method": "classical"})
        job_id = started["segmentImages"]["job"]["id"]
        query = "query($id: Int!) { job(id: $id) { status done problem } }"
        for _ in range(150):
            job = (await api.ok(query, owner, id=job_id))["job"]
            if job["problem"]:
                break
            await asyncio.sleep(0.1)
        assert "cannot reach the Dask cluster" in job["problem"] and "tried again" in job["problem"], job
        assert job["status"] == "RUNNING" and job["done"] == 0
        await asyncio.sleep(0.5)
        images = await api.ok(
            "query($p: Int!) { project(id: $p) { images { edges { node { segmentationStatus } } } } }",
            owner,
            p=project_id,
        )
        statuses = {e["node"]["segmentationStatus"] for e in images["project"]["images"]["edges"]}
        assert statuses <= {"QUEUED", "RUNNING"}  # waiting to be tried again, not failed or lost
    finally:
        await dispatcher.stop()


EVENTS = "subscription($p: Int!) { projectEvents(projectId: $p) { kind data } }"
REMOVE = 'mutation($p: Int!) { removeProjectMember(id: $p, username: "viewer") { __typename } }'


async def _next(stream: AsyncIterator[dict[str, Any]] | asyncio.Future[Any]) -> Any:
    if isinstance(stream, asyncio.Future):
        return await asyncio.wait_for(stream, 20)
    return await asyncio.wait_for(anext(stream), 20)


async def _subscribers_become(api: Api, count: int) -> None:
    for _ in range(500):
        if api.services.bus.subscriber_count == count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{api.services.bus.subscriber_count} bus subscriptions open, not {count}")


def _count_role_queries(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """The (user, project) pairs whose role is read from the database from now on."""
    asked: list[tuple[int, int]] = []
    roles_of = projects.roles_of

    async def counted(db: Any, pairs: Any) -> Any:
        asked.extend(pairs)
        return await roles_of(db, pairs)

    monkeypatch.setattr(projects, "roles_of", counted)
    return asked


async def test_losing_access_ends_open_subscriptions_and_only_those(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = {who: await api.user(who) for who in ("owner", "viewer", "editor")}
    owner, editor_id = tokens["owner"], (await api.ok("{ me { id } }", tokens["editor"]))["me"]["id"]
    project_id, _ = await _project_with_images(api, owner, 1)
    await api.share(owner, project_id, "viewer", "VIEWER")
    await api.share(owner, project_id, "editor", "EDITOR")
    job = await api.ok(SEGMENT, owner, input={"projectId": project_id, "method": "classical"})
    asked = _count_role_queries(monkeypatch)
    events = GraphQLRequest(EVENTS, variable_values={"p": project_id})
    progress = GraphQLRequest(PROGRESS, variable_values={"id": job["segmentImages"]["job"]["id"]})
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(serve(create_app(services=api.services), free_port()))
        sessions = {who: await stack.enter_async_context(_websocket(url, t)) for who, t in tokens.items()}
        streams = {who: session.subscribe(events) for who, session in sessions.items()}
        first = {who: asyncio.ensure_future(anext(stream)) for who, stream in streams.items()}
        viewer_progress = sessions["viewer"].subscribe(progress)
        assert (await _next(viewer_progress))["jobProgress"]["status"] == "QUEUED"
        await _subscribers_become(api, 4)
        asked.clear()
        for n in range(20):
            await api.services.bus.publish(Event(EventKind.REVIEW_CHANGED, project_id, data={"n": n}))
        for who, stream in streams.items():
            seen = [await _next(first[who])] + [await _next(stream) for _ in range(19)]
            assert [s["projectEvents"]["data"]["n"] for s in seen] == list(range(20)), who
        assert asked == []  # events cost no role query, whoever receives them

        removed = await api.ok(REMOVE, owner, p=project_id)
        assert removed["removeProjectMember"]["__typename"] == "ProjectSuccess"
        gone = f"you no longer have access to project {project_id}"
        for stream in (streams["viewer"], viewer_progress):
            with pytest.raises(TransportQueryError, match=gone) as ended:
                await _next(stream)
            assert ended.value.errors and ended.value.errors[0]["extensions"]["code"] == "FORBIDDEN"
        for who in ("owner", "editor"):  # the others are told, and stay
            assert (await _next(streams[who]))["projectEvents"]["kind"] == "access_changed"
        await _subscribers_become(api, 2)
        assert all(user != editor_id for user, _ in asked)  # only the removed member was asked about
        await api.services.bus.publish(Event(EventKind.REVIEW_CHANGED, project_id, data={"n": 20}))
        for who in ("owner", "editor"):
            assert (await _next(streams[who]))["projectEvents"]["data"] == {"n": 20}

        await api.ok("mutation($p: Int!) { deleteProject(id: $p) { message } }", owner, p=project_id)
        for who in ("owner", "editor"):
            with pytest.raises(TransportQueryError, match=f"project {project_id} was deleted"):
                await _next(streams[who])
        await _subscribers_become(api, 0)


LIST = "subscription { projectListEvents { kind projectId missed } }"


async def test_a_projects_list_hears_what_changes_it_and_nothing_of_projects_it_does_not_show(
    api: Api,
) -> None:
    owner, member = await api.user("owner"), await api.user("member")
    admin = await api.user("admin", admin=True)
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(serve(create_app(services=api.services), free_port()))
        lists = {
            who: (await stack.enter_async_context(_websocket(url, token))).subscribe(GraphQLRequest(LIST))
            for who, token in (("member", member), ("admin", admin))
        }
        pending = {who: asyncio.ensure_future(anext(stream)) for who, stream in lists.items()}
        await _subscribers_become(api, 2)

        async def heard(who: str) -> tuple[str, int]:
            event = (await _next(pending.pop(who) if who in pending else lists[who]))["projectListEvents"]
            assert not event["missed"]
            return event["kind"], event["projectId"]

        hidden = await api.project(owner, "Not shared")  # the administrator sees every project
        assert await heard("admin") == ("project_created", hidden)
        shared = await api.project(owner, "Shared later")
        assert await heard("admin") == ("project_created", shared)
        await api.share(owner, shared, "member", "VIEWER")  # the member's list gains it
        assert await heard("member") == await heard("admin") == ("access_granted", shared)
        await api.ok(
            'mutation($id: Int!) { updateProject(id: $id, input: {name: "Plate 7"}) { __typename } }',
            owner,
            id=shared,
        )
        assert await heard("member") == await heard("admin") == ("project_updated", shared)
        await api.upload(owner, hidden, [("a.png", png_bytes())])  # counts change in the hidden one only
        assert await heard("admin") == ("image_status", hidden)
        await api.upload(owner, shared, [("b.png", png_bytes(seed=2))])
        assert await heard("member") == await heard("admin") == ("image_status", shared)
        removed = 'mutation($p: Int!) { removeProjectMember(id: $p, username: "member") { __typename } }'
        await api.ok(removed, owner, p=shared)
        assert await heard("member") == await heard("admin") == ("access_changed", shared)
        await api.upload(owner, shared, [("c.png", png_bytes(seed=3))])  # no longer the member's
        assert await heard("admin") == ("image_status", shared)
        await api.ok("mutation($p: Int!) { deleteProject(id: $p) { message } }", owner, p=hidden)
        assert await heard("admin") == ("project_deleted", hidden)
        mine = await api.project(member, "Mine")
        assert await heard("member") == await heard("admin") == ("project_created", mine)
