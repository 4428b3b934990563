"""What lives as long as the app: settings, engine, session factory, blob store, password hasher, limiters."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from server.db.engine import create_engine, session_factory
from server.domain.auth import PasswordPolicy, Passwords
from server.domain.ratelimit import RateLimiter
from server.settings import Settings
from server.storage import BlobStore, open_store

__all__ = ["Metrics", "Services"]


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


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    db: async_sessionmaker[AsyncSession]
    store: BlobStore
    passwords: Passwords
    login_by_user: RateLimiter
    login_by_address: RateLimiter
    expensive: RateLimiter
    metrics: Metrics = field(default_factory=Metrics)

    @classmethod
    def create(cls, settings: Settings) -> Services:
        engine = create_engine(settings.database_url)
        per_minute = settings.login_attempts_per_minute
        return cls(
            settings=settings,
            engine=engine,
            db=session_factory(engine),
            store=open_store(settings),
            passwords=Passwords(
                PasswordPolicy(time_cost=settings.password_time_cost, memory_kib=settings.password_memory_kib)
            ),
            login_by_user=RateLimiter(per_minute, 60.0),
            login_by_address=RateLimiter(per_minute * 5, 60.0),
            expensive=RateLimiter(settings.expensive_mutations_per_minute, 60.0),
        )

    @property
    def session_lifetime(self) -> dt.timedelta:
        return dt.timedelta(hours=self.settings.session_hours)

    async def close(self) -> None:
        await self.engine.dispose()
