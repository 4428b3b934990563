"""Whether an open subscription's subscriber may still see its project, without a query per event.

A subscription is allowed once, when it starts (``CanViewProject``); it may then stay open for hours. The
mutations that take access away publish ``access_changed`` (members removed, named in ``data["user_ids"]``)
or ``project_deleted``. :class:`AccessWatch` looks at each event a subscription receives: a deleted
project ends it at once; an ``access_changed`` naming its subscriber (or naming nobody, its details cut to
fit NOTIFY) costs one role query; every other event costs nothing. Events that may have been lost (the
bus's listener reconnected, or the client read too slowly and its oldest events were dropped) might have
held such a change, so a loss is followed by a role query too, at most once per ``LOSS_RECHECK_SECONDS``:
a slow client in a busy project loses events all the time, and must not turn that into a query per event.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from server.api.context import Context
from server.api.permissions import project_role
from server.domain.roles import Action, allows
from server.events import Event, EventKind
from server.exceptions import PermissionDeniedError

__all__ = ["ACCESS_KINDS", "LOSS_RECHECK_SECONDS", "AccessWatch"]

ACCESS_KINDS = frozenset({EventKind.ACCESS_CHANGED, EventKind.PROJECT_DELETED})
"""The events that may end a subscription; a subscription filtering by kind must include them."""

LOSS_RECHECK_SECONDS = 10.0
"""After lost events, the role is asked again once this long has passed since it was last known good."""


class AccessWatch:
    """Ends a subscription on ``project_id`` (raises :class:`PermissionDeniedError`) once its subscriber
    may no longer view it; the role was checked when the subscription started, so it starts as known good.
    """

    def __init__(
        self, context: Context, project_id: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._context = context
        self._user_id = context.require_user().id
        self.project_id = project_id
        self._clock = clock
        self._verified_at = clock()
        self._unverified_loss = False

    async def confirm(self) -> None:
        """Ask for the role once more: called right after the bus subscription opens, it catches a removal
        that landed between the permission check and that moment, which no event would tell."""
        await self._verify()

    async def check(self, event: Event | None, *, lost: bool = False) -> None:
        """Follow ``event`` (``None``: none came); ``lost`` says events may have been lost before it."""
        if event is not None and event.kind is EventKind.PROJECT_DELETED:
            raise PermissionDeniedError(f"project {self.project_id} was deleted")
        self._unverified_loss = self._unverified_loss or lost
        loss_due = self._unverified_loss and self._clock() - self._verified_at >= LOSS_RECHECK_SECONDS
        if loss_due or (event is not None and self._names_subscriber(event)):
            await self._verify()

    def _names_subscriber(self, event: Event) -> bool:
        if event.kind is not EventKind.ACCESS_CHANGED:
            return False
        named = event.data.get("user_ids")
        return not isinstance(named, list | tuple) or self._user_id in named

    async def _verify(self) -> None:
        loaders = self._context.loaders
        # Loaders that cache (an HTTP request's) would answer from their cache; clearing a key that was
        # never loaded raises KeyError.
        for loader in (loaders.role, loaders.project):
            with contextlib.suppress(KeyError):
                loader.clear(self.project_id)
        role = await project_role(self._context, self.project_id)
        if not allows(role, Action.VIEW):
            raise PermissionDeniedError(f"you no longer have access to project {self.project_id}")
        self._verified_at = self._clock()
        self._unverified_loss = False
