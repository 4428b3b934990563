"""What every service works with: the live objects one server process holds (built by
:mod:`server.composition`), and the Prometheus series they count into.

Services take a :class:`Runtime` and never build one: tests, the app and the command line each get theirs
from :class:`server.composition.Services`, which also starts and stops what runs in the background.
"""

from __future__ import annotations

import collections
import datetime as dt
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from server.delivery import Delivery, Keyring
from server.domain.auth import Passwords
from server.domain.ratelimit import LoginLimits, RateLimiter
from server.events import EventBus
from server.jobs import ClusterHandle, Dispatcher
from server.jobs.background import BackgroundTasks
from server.settings import Settings
from server.storage import BlobStore
from server.storage.sweep import ExportSweeper

__all__ = ["Metrics", "Runtime"]


class Metrics:
    """Prometheus series of one app (own registry, so several apps in one process do not collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "spheroseg_graphql_requests", "GraphQL operations served", ["operation"], registry=self.registry
        )
        self.errors = Counter(
            "spheroseg_graphql_errors",
            "GraphQL operations answered with errors",
            ["operation"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "spheroseg_graphql_latency_seconds",
            "Time to answer a GraphQL operation",
            ["operation"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.uploads = Counter(
            "spheroseg_uploaded_files",
            "Files offered for upload, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.jobs = Gauge(
            "spheroseg_jobs", "Jobs waiting or running (all replicas)", ["status"], registry=self.registry
        )


@dataclass
class Runtime:
    """The session factory, blob store, event bus, delivery, limiters and settings of one server."""

    settings: Settings
    engine: AsyncEngine
    db: async_sessionmaker[AsyncSession]
    store: BlobStore
    passwords: Passwords
    logins: LoginLimits
    expensive: RateLimiter
    delivery: Delivery
    exports: ExportSweeper
    keyring: Keyring
    bus: EventBus
    cluster: ClusterHandle
    dispatcher: Dispatcher | None
    metrics: Metrics = field(default_factory=Metrics)
    background: BackgroundTasks = field(default_factory=BackgroundTasks)
    """Work running after its request was answered (export jobs); cancelled when the server stops."""
    websockets: collections.Counter[int] = field(default_factory=collections.Counter)
    """Open GraphQL WebSocket connections per user id (limited by ``max_connections_per_user``)."""

    @property
    def session_lifetime(self) -> dt.timedelta:
        return dt.timedelta(hours=self.settings.session_hours)
