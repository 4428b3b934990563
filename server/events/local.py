"""The in-process bus: the embedded server's, and every single-replica server on SQLite."""

from __future__ import annotations

from collections.abc import Collection

from server.events.events import Event, EventKind
from server.events.fanout import Fanout, Subscription
from server.exceptions import EventBusError

__all__ = ["LocalEventBus"]


class LocalEventBus:
    """Delivers each published event straight to this process's subscribers."""

    def __init__(self) -> None:
        self._fanout = Fanout()
        self._published = 0

    async def start(self) -> None:
        """Nothing to connect; here so both buses start the same way."""

    async def close(self) -> None:
        self._fanout.close_all()

    async def publish(self, event: Event) -> None:
        if self._fanout.closed:
            raise EventBusError("the event bus is closed (the server is shutting down)")
        # Serialised only to fail here as the PostgreSQL bus would: data that is no JSON is a bug to find
        # on a laptop, not on the lab server.
        event.to_json()
        self._fanout.deliver(event)
        self._published += 1

    def publish_here(self, event: Event) -> None:
        if not self._fanout.closed:
            self._fanout.deliver(event)

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
        return self._fanout.subscribe(
            project_id=project_id, job_id=job_id, kinds=kinds, also=also, always=always, max_queue=max_queue
        )

    @property
    def subscriber_count(self) -> int:
        return self._fanout.count

    @property
    def published_count(self) -> int:
        return self._published
