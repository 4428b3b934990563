"""One WebSocket for every subscription, against the real server in uvicorn: events arrive; when the
server goes away and comes back, the subscription resumes by itself and says that events were lost; a
refused session waits for a new token instead of hammering the server."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from server.app import create_app
from spheroseg_testing import free_port, serve
from tests.server.api.test_projects import SAVE, SQUARE
from tests.server.conftest import Api, png_bytes
from workbench.api import Backoff, ChannelClosedError, ChannelState, LiveChannel, Resumed, StateChange

pytestmark = pytest.mark.anyio

REVIEW = """mutation($i: Int!, $s: ReviewStatus!) {
  setReview(images: [{imageId: $i, version: 1}], status: $s) { __typename ... on InputError { message } } }"""
FAST = Backoff(initial=0.05, maximum=0.2)


async def _image(api: Api) -> tuple[str, int, int]:
    """An image with a segmentation (one that can be reviewed)."""
    owner = await api.user("owner")
    project_id = await api.project(owner)
    response = await api.upload(owner, project_id, [("a.png", png_bytes())])
    image_id: int = response.json()["files"][0]["imageId"]
    await api.ok(SAVE, owner, id=image_id, base=0, sph=[{"exterior": SQUARE}])
    return owner, project_id, image_id


async def _next_while(events: AsyncIterator[Any], poke: Callable[[], Awaitable[object]]) -> Any:
    """The next item of ``events``, poking the server until it comes (a subscription is registered a
    moment after it is asked for, and an event before that is not delivered)."""
    waiting = asyncio.ensure_future(anext(events))
    async with asyncio.timeout(20):
        while not waiting.done():
            await poke()
            await asyncio.wait({waiting}, timeout=0.2)
    return waiting.result()


def _reviewer(api: Api, token: str, image_id: int) -> Callable[[], Awaitable[object]]:
    """Each call changes the image's review (a review set twice to the same status is no event)."""
    statuses = itertools.cycle(["ACCEPTED", "UNREVIEWED"])

    async def review() -> object:
        changed = await api.ok(REVIEW, token, i=image_id, s=next(statuses))
        assert changed["setReview"]["__typename"] == "ReviewSetSuccess", changed
        return changed

    return review


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(20):
        while not condition():
            await asyncio.sleep(0.02)


async def test_a_subscription_survives_a_server_restart_and_says_what_was_missed(api: Api) -> None:
    owner, project_id, image_id = await _image(api)
    app = create_app(services=api.services)
    port = free_port()
    states: list[StateChange] = []

    review = _reviewer(api, owner, image_id)

    url = f"http://127.0.0.1:{port}"
    async with LiveChannel(url, owner, backoff=FAST, on_state=states.append) as channel:
        events = channel.subscribe("ProjectEvents", projectId=project_id)
        async with serve(app, port):
            before = await _next_while(events, review)
            pending = asyncio.ensure_future(anext(events))
        await _until(lambda: any(s.state is ChannelState.RECONNECTING and s.retry_in for s in states))
        assert not pending.done()
        async with serve(app, port):
            resumed = await asyncio.wait_for(pending, 20)
            after = await _next_while(events, review)

    assert before["projectEvents"]["kind"] == after["projectEvents"]["kind"] == "review_changed"
    assert isinstance(resumed, Resumed) and resumed.down_seconds > 0
    seen = [s.state for s in states]  # the first connection may be tried before the server is up
    assert seen.count(ChannelState.CONNECTED) == 2 and seen[-1] is ChannelState.CLOSED
    assert ChannelState.RECONNECTING in seen[seen.index(ChannelState.CONNECTED) :]


async def test_a_refused_session_waits_for_a_new_token(api: Api) -> None:
    owner, project_id, image_id = await _image(api)
    states: list[StateChange] = []

    review = _reviewer(api, owner, image_id)

    async with (
        serve(create_app(services=api.services), free_port()) as url,
        LiveChannel(url, "forged", backoff=FAST, on_state=states.append) as channel,
    ):
        await _until(lambda: channel.state.state is ChannelState.SIGNED_OUT)
        await asyncio.sleep(0.3)  # no retries with the refused token meanwhile
        assert [s.state for s in states] == [ChannelState.SIGNED_OUT]

        channel.use_token(owner)
        event = await _next_while(channel.subscribe("ProjectEvents", projectId=project_id), review)

    assert event["projectEvents"]["imageIds"] == [image_id]
    assert "refused the session" in states[0].reason


async def test_closing_the_channel_ends_the_subscriptions_waiting_on_it() -> None:
    """A job's progress followed on a workspace that is then closed (the offline server restarted under
    a new one) must end, not wait for a connection forever (the task list would show it stuck)."""
    channel = LiveChannel(f"http://127.0.0.1:{free_port()}", "token", backoff=FAST)  # nothing listens
    await channel.__aenter__()
    waiting = asyncio.ensure_future(anext(channel.subscribe("JobProgress", jobId=1)))
    await asyncio.sleep(0.3)
    assert not waiting.done()  # waiting for a connection, as while the server is down
    await channel.__aexit__(None, None, None)
    with pytest.raises(ChannelClosedError, match="was closed"):
        await asyncio.wait_for(waiting, 5)
    assert channel.state.state is ChannelState.CLOSED
