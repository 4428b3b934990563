"""The event bus: what happened (task finished, job progress, image status, …), told to whoever listens.

Publishers (the dispatcher, mutations) call :meth:`EventBus.publish` after their change is committed;
GraphQL subscriptions read a :class:`Subscription`. Two buses sit behind the :class:`EventBus` protocol:
:class:`LocalEventBus` for one process (the embedded server on SQLite) and :class:`PostgresEventBus`, which
goes through PostgreSQL LISTEN/NOTIFY so every replica of a lab server sees every event. Both fan out to
their own subscribers through the same bounded queues (:mod:`server.events.fanout`): a slow subscriber loses
its oldest events (counted in ``dropped``) rather than holding up the others or growing memory.
"""

from __future__ import annotations

from server.events.bus import EventBus
from server.events.events import CLUSTER_KINDS, NO_PROJECT, Event, EventKind, session_ended
from server.events.fanout import Subscription
from server.events.local import LocalEventBus
from server.events.postgres import CHANNEL, PostgresEventBus, is_postgres_url

__all__ = [
    "CHANNEL",
    "CLUSTER_KINDS",
    "NO_PROJECT",
    "Event",
    "EventBus",
    "EventKind",
    "LocalEventBus",
    "PostgresEventBus",
    "Subscription",
    "open_event_bus",
    "session_ended",
]


def open_event_bus(database_url: str) -> EventBus:
    """The bus for a server on ``database_url``: PostgreSQL's LISTEN/NOTIFY there, in-process otherwise."""
    if is_postgres_url(database_url):
        return PostgresEventBus(database_url)
    return LocalEventBus()
