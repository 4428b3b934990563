"""Workers joining, leaving and dying, as the scheduler tells them: no polling.

:class:`WorkerWatch` subscribes a client to the scheduler's ``all`` event topic, where Dask logs every
``add-worker`` and ``remove-worker``; a removal the scheduler expected (a worker retired or closed on
purpose) is :attr:`WorkerChangeKind.LEFT`, any other (the process was killed, crashed or stopped answering)
is :attr:`WorkerChangeKind.DIED`. A local worker that dies is restarted by its nanny, which shows as a
death followed by a join. The watch keeps the workers it knows of, so each change says how many are left::

    watch = WorkerWatch(on_change)   # on_change(change: WorkerChange) -> None
    await watch.start(client)        # takes the workers already there, then follows the scheduler
    watch.stop(client)
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cluster.launch.deployment import rpc

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["WorkerChange", "WorkerChangeKind", "WorkerWatch"]

log = logging.getLogger(__name__)

TOPIC = "all"
"""The scheduler's topic for events about the whole cluster (workers added and removed among them)."""


class WorkerChangeKind(enum.StrEnum):
    JOINED = "joined"
    LEFT = "left"
    """Retired or closed on purpose (scaled down, the cluster stopped)."""
    DIED = "died"
    """Gone without being asked: killed, crashed, or stopped answering the scheduler."""


@dataclass(frozen=True)
class WorkerChange:
    kind: WorkerChangeKind
    address: str
    name: str
    workers: int
    """Workers in the cluster after the change."""
    at: float
    """When the scheduler saw it (its clock, unix seconds)."""


class WorkerWatch:
    """Calls ``on_change`` with every :class:`WorkerChange` the scheduler of a client reports."""

    def __init__(self, on_change: Callable[[WorkerChange], None]) -> None:
        self._on_change = on_change
        self._client: Client | None = None
        self.workers: dict[str, str] = {}
        """Address -> name of the workers known now."""

    async def start(self, client: Client) -> None:
        self._client = client
        identity = await rpc(client).identity()
        self.workers = {address: str(info.get("name")) for address, info in identity["workers"].items()}
        client.subscribe_topic(TOPIC, self._on_event)  # type: ignore[no-untyped-call]

    def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.status == "running":
            client.unsubscribe_topic(TOPIC)  # type: ignore[no-untyped-call]

    async def _on_event(self, event: tuple[float, Any]) -> None:
        at, message = event
        if not isinstance(message, dict) or not isinstance(message.get("worker"), str):
            return
        address, action = message["worker"], message.get("action")
        if action == "add-worker":
            kind, name = WorkerChangeKind.JOINED, await self._name_of(address)
            self.workers[address] = name
        elif action == "remove-worker":
            kind = WorkerChangeKind.LEFT if message.get("expected") else WorkerChangeKind.DIED
            name = self.workers.pop(address, address)
        else:
            return
        change = WorkerChange(kind, address, name, len(self.workers), float(at))
        log.info("worker %s (%s) %s; %d now", name, address, kind.value, change.workers)
        self._on_change(change)

    async def _name_of(self, address: str) -> str:
        client = self._client
        if client is None:
            return address
        try:
            identity = await rpc(client).identity()
        except OSError as error:  # the scheduler went away meanwhile: the address names it well enough
            log.info("cannot ask the scheduler for worker names: %s", error)
            return address
        return str(identity["workers"].get(address, {}).get("name", address))
