"""The event bus: filters, bounded fan-out, and PostgreSQL LISTEN/NOTIFY across replicas and reconnects."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable

import anyio
import asyncpg
import pytest

from server.events import (
    Event,
    EventBus,
    EventKind,
    LocalEventBus,
    PostgresEventBus,
    Subscription,
    open_event_bus,
)
from server.events.postgres import MAX_PAYLOAD_BYTES, dsn_from_url, fit_payload
from server.exceptions import EventBusError
from tests.server.starters import Postgres, free_port

pytestmark = pytest.mark.anyio

_databases = itertools.count()
WAIT = 10.0  # seconds to wait for a notification; generous, only a broken bus ever waits this long


@pytest.fixture
def pg_url(postgres: Postgres) -> str:
    """A fresh database, so no other test's notifications reach this one's channel."""
    name = f"events_{next(_databases)}"
    postgres.psql(f"CREATE DATABASE {name}")
    return postgres.url(name)


@pytest.fixture(params=["local", "postgresql"])
def bus_url(request: pytest.FixtureRequest) -> str | None:
    """``None`` for the in-process bus, else a database URL (resolved here, outside the event loop)."""
    url: str | None = None if request.param == "local" else request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def bus(bus_url: str | None) -> AsyncIterator[EventBus]:
    built: EventBus = LocalEventBus() if bus_url is None else PostgresEventBus(bus_url)
    await built.start()
    yield built
    await built.close()


@pytest.fixture
async def replicas(pg_url: str) -> AsyncIterator[tuple[PostgresEventBus, PostgresEventBus]]:
    """Two buses on one database, standing in for two server replicas."""
    first, second = PostgresEventBus(pg_url), PostgresEventBus(pg_url)
    await first.start()
    await second.start()
    yield first, second
    await first.close()
    await second.close()


async def drain(subscription: Subscription) -> list[Event]:
    """The events already queued, without waiting."""
    events = []
    while (event := await subscription.get(timeout=0)) is not None:
        events.append(event)
    return events


async def received(subscription: Subscription, count: int) -> list[Event]:
    events = []
    for _ in range(count):
        event = await subscription.get(timeout=WAIT)
        assert event is not None, f"only {len(events)} of {count} events arrived"
        events.append(event)
    return events


async def until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(WAIT):
        while not condition():
            await asyncio.sleep(0.01)


def finished(project_id: int, n: int = 0, job_id: int | None = 1) -> Event:
    return Event(EventKind.TASK_FINISHED, project_id, job_id=job_id, image_ids=(n,), data={"n": n})


def progress(job_id: int, done: int, total: int = 50) -> Event:
    return Event(EventKind.JOB_PROGRESS, 1, job_id=job_id, data={"done": done, "total": total})


# --- events as JSON ---


def test_event_json_round_trip() -> None:
    event = Event(
        EventKind.SEGMENTATION_SAVED,
        3,
        job_id=None,
        image_ids=(5, 8),
        actor="marta",
        data={"version": 4, "spheroids": [{"area_um2": 1.5}], "note": "überprüft"},
    )
    assert Event.from_json(event.to_json()) == event
    with pytest.raises(TypeError):
        event.data["version"] = 5  # type: ignore[index]  # shared by every subscriber, so read-only


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1, 2]",
        '{"kind": "nope", "project_id": 1, "at": 1.0}',
        '{"kind": "job_finished", "at": 1.0}',
        '{"kind": "job_finished", "project_id": "1", "at": 1.0}',
        '{"kind": "job_finished", "project_id": true, "at": 1.0}',
        '{"kind": "job_finished", "project_id": 1, "image_ids": ["a"], "at": 1.0}',
        '{"kind": "job_finished", "project_id": 1, "data": [], "at": 1.0}',
        '{"kind": "job_finished", "project_id": 1, "actor": 7, "at": 1.0}',
        '{"kind": "job_finished", "project_id": 1}',
    ],
)
def test_malformed_event_json_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="event"):
        Event.from_json(text)


def test_an_oversized_event_loses_its_largest_details_first() -> None:
    event = Event(
        EventKind.JOB_FINISHED,
        1,
        job_id=2,
        image_ids=(1, 2, 3),
        data={"done": 40, "log": "x" * 20_000, "note": "é" * 4_500},  # the note: 4,500 chars, 9,000 bytes
    )
    shrunk = Event.from_json(fit_payload(event))
    assert shrunk.data == {"done": 40, "truncated": True}
    assert shrunk.image_ids == (1, 2, 3)
    assert shrunk.at == event.at

    many_images = Event(EventKind.JOB_FINISHED, 1, job_id=2, image_ids=tuple(range(100_000, 102_000)))
    text = fit_payload(many_images)
    assert len(text.encode()) <= MAX_PAYLOAD_BYTES
    assert Event.from_json(text).data == {"truncated": True}


def test_the_bus_follows_the_database() -> None:
    assert isinstance(open_event_bus("sqlite+aiosqlite:///spheroseg.sqlite3"), LocalEventBus)
    assert isinstance(open_event_bus("postgresql+asyncpg://seg:pw@db:5432/spheroseg"), PostgresEventBus)
    assert dsn_from_url("postgresql+asyncpg://seg:pw@db/spheroseg") == "postgresql://seg:pw@db/spheroseg"


# --- fan-out, on both buses ---


async def test_a_subscription_gets_the_events_matching_all_its_filters(bus: EventBus) -> None:
    everything = bus.subscribe()
    project = bus.subscribe(project_id=1)
    job = bus.subscribe(job_id=7)
    kinds = bus.subscribe(kinds={EventKind.JOB_FINISHED, EventKind.JOB_CANCELLED})
    all_three = bus.subscribe(project_id=2, job_id=7, kinds=[EventKind.JOB_FINISHED])
    # a job's events, and its project's access changes (which name no job)
    with_also = bus.subscribe(
        project_id=2, job_id=7, kinds=[EventKind.JOB_FINISHED], also=[EventKind.ACCESS_CHANGED]
    )
    published = [
        finished(1, job_id=7),
        Event(EventKind.JOB_FINISHED, 1, job_id=7),
        Event(EventKind.JOB_FINISHED, 2, job_id=7),
        Event(EventKind.JOB_FINISHED, 2, job_id=8),
        Event(EventKind.REVIEW_CHANGED, 2, image_ids=(4,), actor="marta"),
        Event(EventKind.ACCESS_CHANGED, 1, data={"user_ids": [3]}),
        Event(EventKind.ACCESS_CHANGED, 2, data={"user_ids": [3]}),
    ]
    for event in published:
        await bus.publish(event)

    # Each event reaches all subscriptions at once: once the unfiltered one has them all, so have the rest.
    assert await received(everything, len(published)) == published
    assert await drain(project) == [*published[:2], published[5]]
    assert await drain(job) == published[:3]
    assert await drain(kinds) == published[1:4]
    assert await drain(all_three) == [published[2]]
    assert await drain(with_also) == [published[2], published[6]]
    assert bus.published_count == len(published)
    assert await everything.get(timeout=0.01) is None


async def test_closing_a_subscription_removes_it_from_the_bus(bus: EventBus) -> None:
    kept = bus.subscribe()
    async with bus.subscribe(project_id=1) as scoped:
        assert bus.subscriber_count == 2
        await bus.publish(finished(1))
        with anyio.fail_after(WAIT):
            async for event in scoped:
                assert event.kind is EventKind.TASK_FINISHED
                break  # the consumer walks away mid-stream
    assert bus.subscriber_count == 1

    collected: list[Event] = []

    async def consume() -> None:
        async for event in kept:
            collected.append(event)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(consume)
        await until(lambda: len(collected) == 1)
        kept.close()  # ends the consumer's loop
    kept.close()
    assert bus.subscriber_count == 0
    assert [event async for event in kept] == []


async def test_closing_the_bus_ends_every_subscription(bus: EventBus) -> None:
    first, second = bus.subscribe(), bus.subscribe(job_id=3)
    await bus.close()
    assert bus.subscriber_count == 0
    assert await first.get() is None
    assert [event async for event in second] == []
    with pytest.raises(EventBusError):
        await bus.publish(finished(1))
    with pytest.raises(EventBusError, match="shutting down"):  # a late subscriber would wait forever
        bus.subscribe()


async def test_details_that_are_no_json_are_refused_by_both_buses(bus: EventBus) -> None:
    with pytest.raises(TypeError, match="JSON"):
        await bus.publish(Event(EventKind.JOB_CREATED, 1, job_id=1, data={"when": object()}))
    assert bus.published_count == 0


# --- a slow subscriber (in-process fan-out; both buses share it) ---


async def test_a_slow_subscriber_neither_delays_others_nor_grows() -> None:
    bus = LocalEventBus()
    slow = bus.subscribe(max_queue=8)  # never reads
    fast = bus.subscribe()
    with anyio.fail_after(WAIT):  # publish never waits for a reader
        for n in range(100):
            await bus.publish(finished(1, n))
            event = await fast.get(timeout=0)
            assert event is not None and event.data["n"] == n
    assert slow.pending == 8
    assert slow.dropped == 92
    assert [event.data["n"] for event in await drain(slow)] == list(range(92, 100))  # the latest ones
    assert fast.dropped == 0


async def test_a_slow_subscriber_always_gets_the_latest_progress() -> None:
    bus = LocalEventBus()
    slow = bus.subscribe(max_queue=4)
    await bus.publish(finished(1, 1, job_id=2))
    await bus.publish(progress(2, 1))
    await bus.publish(progress(3, 1))
    await bus.publish(finished(1, 2, job_id=2))
    for done in range(2, 51):
        await bus.publish(progress(2, done))

    events = await drain(slow)
    assert [(event.kind, event.job_id, event.data.get("done")) for event in events] == [
        (EventKind.TASK_FINISHED, 2, None),
        (EventKind.JOB_PROGRESS, 3, 1),
        (EventKind.TASK_FINISHED, 2, None),
        (EventKind.JOB_PROGRESS, 2, 50),
    ]
    assert slow.dropped == 0  # superseded progress is not a loss

    await bus.publish(progress(4, 1))
    await bus.publish(finished(1, 3))
    await bus.publish(finished(1, 4))
    await bus.publish(finished(1, 5))
    await bus.publish(progress(2, 51))  # no progress of job 2 queued: the oldest event goes
    assert slow.dropped == 1
    assert slow.pending == 4


# --- PostgreSQL: replicas, payload size, listener loss ---


async def test_every_replica_sees_every_event_once(
    replicas: tuple[PostgresEventBus, PostgresEventBus],
) -> None:
    first, second = replicas
    on_first, on_second = first.subscribe(), second.subscribe(project_id=1)
    one, two, three = finished(1, 1), finished(1, 2), finished(1, 3)
    await first.publish(one)
    await first.publish(two)
    await second.publish(three)

    # Notifications arrive in commit order, so a duplicate of ``one`` would show up before ``two``.
    assert await received(on_first, 3) == [one, two, three]
    assert await received(on_second, 3) == [one, two, three]
    assert (first.published_count, second.published_count) == (2, 1)
    assert not on_first.missed and not on_second.missed


async def test_a_big_event_is_shrunk_and_still_delivered(
    replicas: tuple[PostgresEventBus, PostgresEventBus],
) -> None:
    first, second = replicas
    subscription = second.subscribe()
    big = Event(EventKind.TASK_FAILED, 1, job_id=9, image_ids=(1, 2), data={"error": "x" * 50_000, "code": 3})
    await first.publish(big)
    [event] = await received(subscription, 1)
    assert (event.kind, event.job_id, event.image_ids) == (EventKind.TASK_FAILED, 9, (1, 2))
    assert event.data == {"code": 3, "truncated": True}


async def test_the_listener_reconnects_and_flags_subscriptions_that_may_have_missed_events(
    replicas: tuple[PostgresEventBus, PostgresEventBus], pg_url: str
) -> None:
    first, second = replicas
    on_first, on_second = first.subscribe(), second.subscribe()
    connection = await asyncpg.connect(dsn_from_url(pg_url))
    try:
        await connection.fetchval("SELECT pg_terminate_backend($1)", first.listener_pid)
    finally:
        await connection.close()

    await until(lambda: first.reconnects == 1 and first.listener_pid is not None)
    assert on_first.missed
    assert not on_second.missed  # the other replica's listener was never lost
    assert not first.subscribe().missed  # opened after the gap

    event = finished(1, 7)
    await second.publish(event)
    assert await received(on_first, 1) == [event]
    assert await received(on_second, 1) == [event]


async def test_an_unreachable_database_is_an_error_not_a_hang(postgres: Postgres, pg_url: str) -> None:
    with anyio.fail_after(WAIT):
        with pytest.raises(EventBusError, match="cannot listen"):
            await PostgresEventBus(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/x").start()

        bus = PostgresEventBus(pg_url, timeout=2.0)
        await bus.start()
        try:
            open_before = bus.subscribe()
            postgres.psql(f"DROP DATABASE {pg_url.rsplit('/', 1)[1]} WITH (FORCE)")
            await until(lambda: bus.listener_pid is None)
            assert open_before.missed
            assert bus.subscribe().missed  # opened while nothing listens
            with pytest.raises(EventBusError, match="did not answer"):
                await bus.publish(finished(1))
        finally:
            await bus.close()
