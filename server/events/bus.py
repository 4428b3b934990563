"""The seam every publisher and subscriber codes against: :class:`EventBus`."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from server.events.events import Event, EventKind
from server.events.fanout import Subscription

__all__ = ["EventBus"]


class EventBus(Protocol):
    """Publishes events and hands them to every matching subscriber, on this server and, where the bus
    reaches them, on its other replicas."""

    async def start(self) -> None:
        """Connect what the bus needs (the PostgreSQL bus connects and LISTENs here)."""
        ...

    async def close(self) -> None:
        """Disconnect and close every subscription (their iteration ends)."""
        ...

    async def publish(self, event: Event) -> None:
        """Send ``event`` to every matching subscriber; never waits for a subscriber to read.

        :class:`~server.exceptions.EventBusError` when the bus cannot send it (closed, database unreachable).
        """
        ...

    def publish_here(self, event: Event) -> None:
        """Hand ``event`` to this process's subscribers only: what only this replica sees (the workers
        of the cluster it uses; each replica watches its own). Never raises; a closed bus drops it."""
        ...

    def subscribe(
        self,
        *,
        project_id: int | None = None,
        job_id: int | None = None,
        kinds: Collection[EventKind] | None = None,
        also: Collection[EventKind] = (),
        always: Collection[EventKind] = (),
        max_queue: int = 256,
    ) -> Subscription:
        """The events matching every given filter (none given: all events), at most ``max_queue`` queued;
        events of a kind in ``also`` need only match ``project_id``, those of a kind in ``always`` match
        whatever the filters (events about no project, such as ``session_ended``)."""
        ...

    @property
    def subscriber_count(self) -> int: ...

    @property
    def published_count(self) -> int:
        """Events this bus (this process) published."""
        ...
