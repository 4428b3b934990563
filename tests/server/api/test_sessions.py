"""A session that ends (logout, revocation, expiry, a disabled user) ends what its open WebSocket was doing;
a user lists, renews and revokes their sessions (an admin anyone's); a bootstrap token gives one session.

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
from sqlalchemy import update

from server.app import create_app
from server.composition import Services
from server.db import users
from server.db.models import BootstrapToken, utcnow
from server.domain.ratelimit import LoginLimits
from server.events import Event, EventKind
from server.events.postgres import is_postgres_url
from server.services.sessions import issue_bootstrap_token
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


SESSIONS = "query($u: Int) { sessions(userId: $u) { id createdAt lastUsedAt expiresAt current } }"
REVOKE = (
    "mutation($id: Int!) { revokeSession(id: $id) { __typename ... on OperationInfo { message } "
    "... on InputError { field message } } }"
)
RENEW = "mutation { renewSession { id expiresAt current } }"
EXCHANGE = (
    "mutation($t: String!) { exchangeBootstrapToken(token: $t) { __typename "
    "... on LoginSuccess { token expiresAt user { username } } ... on InvalidCredentials { message } } }"
)


def _code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    return errors[0].get("extensions", {}).get("code") if errors else None


async def test_a_user_lists_and_ends_their_own_sessions_only(api: Api) -> None:
    laptop = await api.user("ana")
    desktop = (await api.ok(LOGIN, u="ana", p=PASSWORD))["login"]["token"]
    stranger = await api.user("bob")

    listed = (await api.ok(SESSIONS, laptop))["sessions"]
    assert len(listed) == 2 and [s["current"] for s in listed] == [False, True]  # newest first
    mine, other_device = listed[1], listed[0]
    assert mine["lastUsedAt"] is not None and mine["createdAt"] < mine["expiresAt"]
    # nobody else's sessions are listed or can be ended by a member
    assert [s["current"] for s in (await api.ok(SESSIONS, stranger))["sessions"]] == [True]
    assert _code(await api.gql(SESSIONS, stranger, u=await _user_id(api, "ana"))) == "FORBIDDEN"
    refused = await api.gql(REVOKE, stranger, id=other_device["id"])
    assert _code(refused) == "FORBIDDEN" and "no such session" in refused["errors"][0]["message"]
    assert (await api.ok("{ me { username } }", desktop))["me"]["username"] == "ana"

    ended = await api.ok(REVOKE, laptop, id=other_device["id"])
    assert ended["revokeSession"] == {"__typename": "OperationInfo", "message": "session ended"}
    assert _code(await api.gql("{ me { username } }", desktop)) == "UNAUTHENTICATED"
    assert [s["id"] for s in (await api.ok(SESSIONS, laptop))["sessions"]] == [mine["id"]]
    # an ended session cannot be ended again
    assert _code(await api.gql(REVOKE, laptop, id=other_device["id"])) == "FORBIDDEN"


async def _user_id(api: Api, username: str) -> int:
    async with api.services.db() as db:
        user = await users.user_by_name(db, username)
    assert user is not None
    return user.id


async def test_an_admin_lists_and_ends_anyones_sessions(api: Api) -> None:
    admin = await api.user("root", admin=True)
    member = await api.user("ana")
    ana = await _user_id(api, "ana")
    (session,) = (await api.ok(SESSIONS, admin, u=ana))["sessions"]
    assert session["current"] is False
    assert (await api.ok(REVOKE, admin, id=session["id"]))["revokeSession"]["__typename"] == "OperationInfo"
    assert _code(await api.gql("{ me { username } }", member)) == "UNAUTHENTICATED"
    assert (await api.ok(SESSIONS, admin, u=ana))["sessions"] == []
    missing = (await api.ok(REVOKE, admin, id=session["id"]))["revokeSession"]
    assert missing == {"__typename": "InputError", "field": "id", "message": "no live session has this id"}


async def test_revoking_a_session_ends_its_subscriptions_and_only_those(api: Api) -> None:
    token = await api.user("owner")
    other_token = (await api.ok(LOGIN, u="owner", p=PASSWORD))["login"]["token"]
    project_id = await api.project(token)
    events = GraphQLRequest(EVENTS, variable_values={"p": project_id})
    async with contextlib.AsyncExitStack() as stack:
        replica = await stack.enter_async_context(_replica(api))
        url = await stack.enter_async_context(serve(create_app(services=replica), free_port()))
        mine = await stack.enter_async_context(_websocket(url, token))
        others = await stack.enter_async_context(_websocket(url, other_token))
        first = asyncio.ensure_future(anext(mine.subscribe(events)))
        other_first = asyncio.ensure_future(anext(others.subscribe(events)))
        await _bus_subscribers(replica, 2)
        sessions = (await api.ok(SESSIONS, other_token))["sessions"]
        (target,) = [s for s in sessions if not s["current"]]  # the first device's session

        await api.ok(REVOKE, other_token, id=target["id"])
        await _ends_unauthenticated(first)
        await api.services.bus.publish(Event(EventKind.REVIEW_CHANGED, project_id, data={"n": 1}))
        assert (await _next(other_first))["projectEvents"]["data"] == {"n": 1}


async def test_a_renewed_session_outlives_its_first_expiry_with_its_subscriptions(api: Api) -> None:
    api.services.settings.session_hours = 3 / 3600  # this token lives three seconds
    token = await api.user("owner")
    project_id = await api.project(token)
    first_expiry = (await api.ok(SESSIONS, token))["sessions"][0]["expiresAt"]
    api.services.settings.session_hours = 1
    async with (
        serve(create_app(services=api.services), free_port()) as url,
        _websocket(url, token) as session,
    ):
        stream = session.subscribe(GraphQLRequest(EVENTS, variable_values={"p": project_id}))
        following = asyncio.ensure_future(anext(stream))
        await _bus_subscribers(api.services, 1)
        renewed = (await api.ok(RENEW, token))["renewSession"]
        assert renewed["current"] and renewed["expiresAt"] > first_expiry
        await asyncio.sleep(4)  # past the first expiry
        assert (await api.ok("{ me { username } }", token))["me"]["username"] == "owner"
        await api.services.bus.publish(Event(EventKind.REVIEW_CHANGED, project_id, data={"n": 2}))
        assert (await _next(following))["projectEvents"]["data"] == {"n": 2}


async def test_a_bootstrap_token_gives_one_session_before_it_expires(api: Api) -> None:
    await api.user("ana")
    token = await issue_bootstrap_token(api.services.db, "ana")
    answer = (await api.ok(EXCHANGE, t=token))["exchangeBootstrapToken"]
    assert answer["__typename"] == "LoginSuccess" and answer["user"] == {"username": "ana"}
    assert (await api.ok("{ me { username } }", answer["token"]))["me"]["username"] == "ana"
    used = (await api.ok(EXCHANGE, t=token))["exchangeBootstrapToken"]
    assert used == {
        "__typename": "InvalidCredentials",
        "message": "the bootstrap token is unknown, used or expired",
    }

    late = await issue_bootstrap_token(api.services.db, "ana")
    async with api.services.db.begin() as db:
        await db.execute(update(BootstrapToken).values(expires_at=utcnow()))
    assert (await api.ok(EXCHANGE, t=late))["exchangeBootstrapToken"]["__typename"] == "InvalidCredentials"
    assert (await api.ok(EXCHANGE, t="made up"))["exchangeBootstrapToken"][
        "__typename"
    ] == "InvalidCredentials"


async def test_guessing_bootstrap_tokens_is_rate_limited_as_logins_are(api: Api) -> None:
    api.services.logins = LoginLimits(2, 10, 100)
    answers = [(await api.ok(EXCHANGE, t=f"guess {n}"))["exchangeBootstrapToken"] for n in range(3)]
    assert [a["__typename"] for a in answers] == ["InvalidCredentials", "InvalidCredentials", "RateLimited"]
