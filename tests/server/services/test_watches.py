"""AccessWatch asks for a subscriber's role only when an event may have taken it away."""

from __future__ import annotations

from typing import Any

import pytest

from server.api.context import authenticate, build_context
from server.db import projects
from server.events import Event, EventKind
from server.exceptions import PermissionDeniedError
from server.services.watches import LOSS_RECHECK_SECONDS, AccessWatch, Subscriber
from tests.server.conftest import Api

pytestmark = pytest.mark.anyio


async def _watch(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> tuple[AccessWatch, list[float], list[Any], int]:
    """A viewer's watch on a project, its clock, the role queries it makes, and the viewer's id."""
    owner, viewer = await api.user("owner"), await api.user("viewer")
    project_id = await api.project(owner)
    await api.share(owner, project_id, "viewer", "VIEWER")
    context = await build_context(api.services, None)
    assert await authenticate(context, viewer, long_lived=True)
    now = [0.0]
    asked: list[Any] = []
    roles_of = projects.roles_of

    async def counted(db: Any, pairs: Any) -> Any:
        asked.extend(pairs)
        return await roles_of(db, pairs)

    monkeypatch.setattr(projects, "roles_of", counted)
    assert context.user is not None
    subscriber = Subscriber(context.require_actor(), context.session_id, None, _never_asked)
    watch = AccessWatch(api.services, subscriber, project_id, clock=lambda: now[0])
    return watch, now, asked, context.user.id


async def _never_asked() -> Any:
    raise AssertionError("an access watch does not read the session")


async def test_only_events_about_the_subscriber_cost_a_query(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch, _, asked, viewer_id = await _watch(api, monkeypatch)
    project = watch.project_id
    for kind in EventKind:
        if kind is not EventKind.PROJECT_DELETED:
            await watch.check(Event(kind, project, data={"user_ids": [viewer_id + 100]}))
    await watch.check(None)  # a quiet subscription
    assert asked == []
    await watch.check(Event(EventKind.ACCESS_CHANGED, project, data={"user_ids": [viewer_id]}))
    await watch.check(Event(EventKind.ACCESS_CHANGED, project, data={"truncated": True}))  # names no one
    assert len(asked) == 2  # still a viewer: the watch goes on
    with pytest.raises(PermissionDeniedError, match=f"project {project} was deleted"):
        await watch.check(Event(EventKind.PROJECT_DELETED, project))
    assert len(asked) == 2  # a deleted project needs no asking


async def test_lost_events_are_followed_by_one_query_per_interval(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch, now, asked, viewer_id = await _watch(api, monkeypatch)
    event = Event(EventKind.REVIEW_CHANGED, watch.project_id)
    for _ in range(50):  # a slow client losing events right after its role was checked
        await watch.check(event, lost=True)
    assert asked == []
    now[0] = LOSS_RECHECK_SECONDS
    for _ in range(50):  # the loss seen earlier is checked once it is due, and only once
        await watch.check(event)
    assert len(asked) == 1
    await watch.check(event, lost=True)
    async with api.services.db.begin() as db:
        assert await projects.remove_member(db, watch.project_id, viewer_id)
    now[0] = 2 * LOSS_RECHECK_SECONDS
    with pytest.raises(PermissionDeniedError, match=f"no longer have access to project {watch.project_id}"):
        await watch.check(event)


async def test_a_removal_before_the_bus_subscription_opened_is_caught_by_confirm(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch, _, asked, viewer_id = await _watch(api, monkeypatch)
    await watch.confirm()  # still a viewer
    async with api.services.db.begin() as db:  # removed with no event this watch could see
        assert await projects.remove_member(db, watch.project_id, viewer_id)
    with pytest.raises(PermissionDeniedError, match=f"no longer have access to project {watch.project_id}"):
        await watch.confirm()
    assert len(asked) == 2
