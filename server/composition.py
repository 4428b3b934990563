"""The composition root: builds, starts and stops everything one server process holds.

:class:`Services` is the :class:`~server.services.runtime.Runtime` that the app, the command line and the
tests build from settings (engine, session factory, blob store, event bus, dispatcher, delivery, signing
keys, export sweeper, metrics), plus what runs in the background while the app lives. It sits above
``server.api`` so that the API and the services only ever receive a runtime, and never build one.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from server.db.engine import create_engine, session_factory
from server.db.models import Job
from server.delivery import Keyring, base_signing_keys, build_delivery, build_signer
from server.domain.auth import PasswordPolicy, Passwords
from server.domain.jobs import JobStatus
from server.domain.ratelimit import LoginLimits, RateLimiter
from server.events import open_event_bus
from server.jobs import ClusterHandle, Dispatcher
from server.keys import with_secret_key
from server.services.exports import watch_abandoned_exports
from server.services.runtime import Metrics, Runtime
from server.services.spool import remove_stale_spools, spool_root
from server.settings import Settings
from server.storage import open_store
from server.storage.sweep import ExportSweeper

__all__ = ["Metrics", "Services"]

logger = logging.getLogger(__name__)

ACTIVE_JOBS = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


class LiveCounts(Collector):
    """Series read from the live objects at scrape time: events, subscriptions, dispatched tasks."""

    def __init__(self, services: Runtime) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        bus, dispatcher = self.services.bus, self.services.dispatcher
        yield CounterMetricFamily(
            "spheroseg_events_published", "Events this replica published", value=bus.published_count
        )
        yield GaugeMetricFamily(
            "spheroseg_active_subscriptions", "Open event subscriptions", value=bus.subscriber_count
        )
        tasks = CounterMetricFamily(
            "spheroseg_tasks_finished",
            "Tasks this replica's dispatcher ended, by outcome",
            labels=["outcome"],
        )
        for outcome, count in sorted((dispatcher.finished if dispatcher else {}).items()):
            tasks.add_metric([outcome], count)
        yield tasks
        exports = self.services.exports
        yield GaugeMetricFamily("spheroseg_stored_exports", "Export zips in the store", value=exports.stored)
        yield GaugeMetricFamily(
            "spheroseg_stored_export_bytes", "Bytes of export zips in the store", value=exports.stored_bytes
        )
        dropped = CounterMetricFamily(
            "spheroseg_results_dropped",
            "Results from the cluster this replica's dispatcher dropped, by reason: deleted (the image or "
            "project went meanwhile), stale (the task was cancelled or its result stored already)",
            labels=["reason"],
        )
        for reason in ("deleted", "stale"):
            dropped.add_metric([reason], dispatcher.dropped[reason] if dispatcher else 0)
        yield dropped
        # Exactly one replica of a deployment should read 1: an admin's alert (and the lab's test) use it.
        yield GaugeMetricFamily(
            "spheroseg_dispatching",
            "1 while this replica's dispatcher leads (holds the dispatch lock), else 0",
            value=int(dispatcher is not None and dispatcher.leading),
        )
        yield GaugeMetricFamily(
            "spheroseg_tasks_in_flight",
            "Images on the cluster now",
            value=dispatcher.in_flight if dispatcher else 0,
        )


@dataclass
class Services(Runtime):
    """A runtime built from settings, with the background work the app's lifespan starts and stops."""

    _key_refresher: asyncio.Task[None] | None = None

    @classmethod
    def create(cls, settings: Settings) -> Services:
        """Everything ``settings`` describe; :class:`ConfigError` (one line, naming the variable) for a
        production server without ``SPHEROSEG_SECRET_KEY`` or another setting it cannot start with."""
        settings = with_secret_key(settings)
        engine = create_engine(settings.database_url)
        per_minute = settings.login_attempts_per_minute
        signer = build_signer(settings)  # image URLs and a local store's download links: one key ring
        store = open_store(settings, signer)
        bus = open_event_bus(settings.database_url)
        cluster = ClusterHandle(settings, announce=bus.publish_here)
        dispatcher = Dispatcher(settings, engine, store, bus, cluster) if settings.dispatcher else None
        sessions = session_factory(engine)
        delivery = build_delivery(settings, store, signer)
        return cls(
            settings=settings,
            engine=engine,
            db=sessions,
            store=store,
            passwords=Passwords(
                PasswordPolicy(time_cost=settings.password_time_cost, memory_kib=settings.password_memory_kib)
            ),
            logins=LoginLimits(per_minute, per_minute * 5, settings.login_attempts_per_user_per_minute),
            expensive=RateLimiter(settings.expensive_mutations_per_minute, 60.0),
            exports=ExportSweeper(
                store, dt.timedelta(seconds=settings.export_expiry_seconds), settings.export_sweep_seconds
            ),
            delivery=delivery,
            keyring=Keyring(delivery.signer, *base_signing_keys(settings), sessions),
            bus=bus,
            cluster=cluster,
            dispatcher=dispatcher,
        )

    def __post_init__(self) -> None:
        self.metrics.registry.register(LiveCounts(self))

    async def refresh_metrics(self) -> None:
        """Series that come from the database (read when /metrics is scraped)."""
        async with self.db() as db:
            counts = dict(
                (
                    await db.execute(
                        select(Job.status, func.count())
                        .where(Job.status.in_(ACTIVE_JOBS))
                        .group_by(Job.status)
                    )
                ).all()
            )
        for status in ACTIVE_JOBS:
            self.metrics.jobs.labels(status).set(counts.get(status, 0))

    async def start(self) -> None:
        """Remove uploads left by a killed server, connect the event bus, take up the newest signing key,
        start dispatching and sweeping exports (the app's lifespan calls this)."""
        await asyncio.to_thread(remove_stale_spools, spool_root(self.settings.upload_temp_dir))
        await self.bus.start()
        await self.keyring.refresh()
        self._key_refresher = asyncio.create_task(self._refresh_keys(), name="spheroseg-signing-keys")
        if self.dispatcher is not None:
            self.dispatcher.start()
        self.exports.start()
        self.background.spawn(watch_abandoned_exports(self), name="spheroseg-abandoned-exports")

    async def _refresh_keys(self) -> None:
        """Take up signing key rotations made elsewhere (another replica, the command line)."""
        while True:
            await asyncio.sleep(self.settings.delivery_signing_key_refresh_seconds)
            try:
                await self.keyring.refresh()
            except Exception:  # the database may be away for a moment; the next round tries again
                logger.exception("could not read the newest signing key; trying again later")

    async def close(self) -> None:
        await self.background.close()  # unfinished exports end failed while the database is still here
        await self.exports.stop()
        if self._key_refresher is not None:
            self._key_refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._key_refresher
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        await self.cluster.close()
        await self.bus.close()
        await self.delivery.close()
        await self.engine.dispose()
