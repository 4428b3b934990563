"""A session that ends (logout, expiry, a disabled user) ends what its open WebSocket was doing.

The app runs in uvicorn on 127.0.0.1 in the test's loop; on PostgreSQL the socket is served by a second
replica (its own services and bus), so what ends it has to travel through LISTEN/NOTIFY.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gql import GraphQLRequest
from gql.transport.exceptions import TransportQueryError

from server.app import create_app
from server.composition import Services
from server.events import Event, EventKind
from server.events.postgres import is_postgres_url
from tests.server.api.test_live import EVENTS, PROGRESS, SEGMENT, _next, _project_with_images, _websocket
from tests.server.conftest import PASSWORD, Api
from tests.server.edge import serve
from tests.server.processes import SPHEROSEG
from tests.server.starters import free_port

pytestmark = pytest.mark.anyio

ENDED = "session has ended"
LOGIN = (
    "mutation($u: String!, $p: String!) { login(username: $u, password: $p) "
    "{ __typename ... on LoginSuccess { token } } }"
)


@contextlib.asynccontextmanager
async def _replica(api: Api) -> AsyncIterator[Services]:
    """Another replica on PostgreSQL; on SQLite (one replica only) the same services."""
    if not is_postgres_url(api.services.settings.database_url):
        yield api.services
        return
    other = Services.create(api.services.settings)
    await other.bus.start()
    try:
        yield other
    finally:
        await other.close()


async def _bus_subscribers(services: Services, count: int) -> None:
    for _ in range(500):
        if services.bus.subscriber_count >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{services.bus.subscriber_count} bus subscriptions open, not {count}")


async def _ends_unauthenticated(stream: Any, says: str = ENDED) -> None:
    with pytest.raises(TransportQueryError, match=says) as ended:
        await _next(stream)
    assert ended.value.errors and ended.value.errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_logout_ends_the_sessions_subscriptions_and_only_those(api: Api) -> None:
    token = await api.user("owner")
    other_token = (await api.ok(LOGIN, u="owner", p=PASSWORD))["login"]["token"]  # a second device
    project_id, _ = await _project_with_images(api, token, 1)
    job = await api.ok(SEGMENT, token, input={"projectId": project_id, "method": "classical"})
    events = GraphQLRequest(EVENTS, variable_values={"p": project_id})
    progress = GraphQLRequest(PROGRESS, variable_values={"id": job["segmentImages"]["job"]["id"]})
    async with contextlib.AsyncExitStack() as stack:
        replica = await stack.enter_async_context(_replica(api))
        url = await stack.enter_async_context(serve(create_app(services=replica), free_port()))
        mine = await stack.enter_async_context(_websocket(url, token))
        others = await stack.enter_async_context(_websocket(url, other_token))
        my_events, my_progress = mine.subscribe(events), mine.subscribe(progress)
        first = asyncio.ensure_future(anext(my_events))
        other_events = others.subscribe(events)
        other_first = asyncio.ensure_future(anext(other_events))
        assert (await _next(my_progress))["jobProgress"]["status"] == "QUEUED"
        await _bus_subscribers(replica, 3)

        assert (await api.ok("mutation { logout { message } }", token))["logout"]["message"] == "logged out"
        await _ends_unauthenticated(first)
        await _ends_unauthenticated(my_progress)
        # the socket stays open, but starts nothing more for the ended session
        await _ends_unauthenticated(mine.subscribe(events))
        with pytest.raises(TransportQueryError, match=ENDED):
            await mine.execute(GraphQLRequest("{ me { username } }"))
        # the same user's other session goes on
        await api.services.bus.publish(Event(EventKind.REVIEW_CHANGED, project_id, data={"n": 1}))
        assert (await _next(other_first))["projectEvents"]["data"] == {"n": 1}
        assert (await others.execute(GraphQLRequest("{ me { username } }")))["me"]["username"] == "owner"


async def test_an_expired_session_ends_its_subscriptions(api: Api) -> None:
    api.services.settings.session_hours = 2 / 3600  # tokens from now on live two seconds
    token = await api.user("owner")
    project_id = await api.project(token)
    async with (
        serve(create_app(services=api.services), free_port()) as url,
        _websocket(url, token) as session,
    ):
        stream = session.subscribe(GraphQLRequest(EVENTS, variable_values={"p": project_id}))
        await _ends_unauthenticated(stream, says="session has expired")
        await _ends_unauthenticated(
            session.subscribe(GraphQLRequest(EVENTS, variable_values={"p": project_id}))
        )


async def _cli(api: Api, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SPHEROSEG_DATABASE_URL": api.services.settings.database_url,
        "SPHEROSEG_STORAGE_URL": api.services.settings.storage_url,
    }
    command = [SPHEROSEG, "server", *args]
    return await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True)


async def test_a_disabled_user_is_logged_out_everywhere_until_enabled(api: Api) -> None:
    if not is_postgres_url(api.services.settings.database_url):
        # the CLI cannot reach a server on SQLite (its bus is in-process): it reads open sessions again
        # this often; on PostgreSQL the CLI's NOTIFY has to end them, long before the default 60 s
        api.services.settings.session_recheck_seconds = 1.0
    token = await api.user("owner")
    project_id = await api.project(token)
    async with contextlib.AsyncExitStack() as stack:
        replica = await stack.enter_async_context(_replica(api))
        url = await stack.enter_async_context(serve(create_app(services=replica), free_port()))
        session = await stack.enter_async_context(_websocket(url, token))
        stream = session.subscribe(GraphQLRequest(EVENTS, variable_values={"p": project_id}))
        first = asyncio.ensure_future(anext(stream))
        await _bus_subscribers(replica, 1)

        disabled = await _cli(api, "disable-user", "owner")
        assert disabled.returncode == 0 and disabled.stdout.startswith("disabled owner"), disabled.stderr
        await _ends_unauthenticated(first)
    me = await api.gql("{ me { username } }", token)
    assert me["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await api.ok(LOGIN, u="owner", p=PASSWORD))["login"]["__typename"] == "InvalidCredentials"

    assert (await _cli(api, "enable-user", "owner")).returncode == 0
    assert (await api.ok(LOGIN, u="owner", p=PASSWORD))["login"]["__typename"] == "LoginSuccess"
    unknown = await _cli(api, "disable-user", "nobody")
    assert unknown.returncode != 0 and "no user 'nobody'" in unknown.stderr
