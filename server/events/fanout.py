"""Fan-out to subscribers in this process, shared by every bus: bounded queues that never block a publisher.

Each :class:`Subscription` owns a deque of at most ``max_queue`` events. :meth:`Fanout.deliver` appends to
every matching one without awaiting, so a subscriber that stops reading (a stalled WebSocket) can neither
delay the others nor grow memory. When a queue is full, a job-progress event replaces the older progress of
the same job still queued (progress is a level, not a sequence: the latest one is all a progress bar needs);
any other event pushes out the oldest queued one, which the subscription counts in ``dropped``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection
from types import TracebackType

from server.events.events import Event, EventKind
from server.exceptions import EventBusError

__all__ = ["Fanout", "Subscription"]


class Subscription:
    """The events matching a filter, as an async iterator; also an async context manager that closes it.

    ``dropped`` counts events lost because this subscriber read too slowly; ``missed`` turns true when the bus
    may have lost events while this subscription was open (e.g. its database listener reconnected). A consumer
    seeing either should refetch the state it shows.
    """

    def __init__(
        self,
        *,
        project_id: int | None = None,
        job_id: int | None = None,
        kinds: Collection[EventKind] | None = None,
        also: Collection[EventKind] = (),
        always: Collection[EventKind] = (),
        max_queue: int = 256,
        on_close: Callable[[Subscription], None] | None = None,
    ) -> None:
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, not {max_queue}")
        self.project_id = project_id
        self.job_id = job_id
        self.kinds = None if kinds is None else frozenset(EventKind(kind) for kind in kinds)
        self.also = frozenset(EventKind(kind) for kind in also)
        self.always = frozenset(EventKind(kind) for kind in always)
        self.max_queue = max_queue
        self.dropped = 0
        self.missed = False
        self._queue: deque[Event] = deque()
        self._ready = asyncio.Event()
        self._closed = False
        self._on_close = on_close

    def matches(self, event: Event) -> bool:
        if event.kind in self.always:
            return True
        if self.project_id is not None and event.project_id != self.project_id:
            return False
        return event.kind in self.also or (
            (self.job_id is None or event.job_id == self.job_id)
            and (self.kinds is None or event.kind in self.kinds)
        )

    @property
    def pending(self) -> int:
        """Events queued and not read yet (never more than ``max_queue``)."""
        return len(self._queue)

    @property
    def closed(self) -> bool:
        return self._closed

    def deliver(self, event: Event) -> None:
        """Queue ``event`` without waiting; on a full queue coalesce progress or drop the oldest event."""
        if self._closed:
            return
        if len(self._queue) >= self.max_queue and not self._coalesce(event):
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(event)
        self._ready.set()

    def _coalesce(self, event: Event) -> bool:
        """Remove the queued progress event that ``event`` supersedes; whether there was one."""
        if event.kind is not EventKind.JOB_PROGRESS:
            return False
        for index, queued in enumerate(self._queue):
            if (
                queued.kind is EventKind.JOB_PROGRESS
                and queued.job_id == event.job_id
                and queued.project_id == event.project_id
            ):
                # The newer one goes to the end, so it still comes after everything published before it.
                del self._queue[index]
                return True
        return False

    async def get(self, timeout: float | None = None) -> Event | None:
        """The next event; ``None`` when none came within ``timeout`` seconds or once closed."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._queue:
            if self._closed:
                return None
            self._ready.clear()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return None
            try:
                async with asyncio.timeout(remaining):
                    await self._ready.wait()
            except TimeoutError:
                return None
        return self._queue.popleft()

    def close(self) -> None:
        """Stop this subscription and forget its queue; iteration then ends. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        self._ready.set()
        if self._on_close is not None:
            self._on_close(self)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        event = await self.get()
        if event is None:
            raise StopAsyncIteration
        return event

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Subscription(project_id={self.project_id}, job_id={self.job_id}, pending={self.pending}, "
            f"dropped={self.dropped}, missed={self.missed}, closed={self._closed})"
        )


class Fanout:
    """The open subscriptions of one bus; a closed subscription removes itself. Once :meth:`close_all` has
    run, the bus is shutting down and :meth:`subscribe` refuses (every bus delegates that check here)."""

    def __init__(self) -> None:
        self._subscriptions: set[Subscription] = set()
        self.closed = False

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
        if self.closed:
            raise EventBusError("the event bus is closed (the server is shutting down)")
        subscription = Subscription(
            project_id=project_id,
            job_id=job_id,
            kinds=kinds,
            also=also,
            always=always,
            max_queue=max_queue,
            on_close=self._remove,
        )
        self._subscriptions.add(subscription)
        return subscription

    def deliver(self, event: Event) -> None:
        for subscription in list(self._subscriptions):
            if subscription.matches(event):
                subscription.deliver(event)

    def mark_missed(self) -> None:
        """Tell every open subscription that events may have been lost (the bus lost its source)."""
        for subscription in self._subscriptions:
            subscription.missed = True

    def close_all(self) -> None:
        self.closed = True
        for subscription in list(self._subscriptions):
            subscription.close()

    @property
    def count(self) -> int:
        return len(self._subscriptions)

    def _remove(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)
