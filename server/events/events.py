"""What happened: an :class:`Event` of one :class:`EventKind`, and its JSON form for PostgreSQL NOTIFY.

An event says *that* something changed and where (project, job, images); it is small on purpose, so a
client that needs the full state refetches it over GraphQL. ``data`` holds the few details a progress bar or
a gallery badge needs without a round trip (e.g. ``{"done": 12, "total": 40}`` for job progress).

``access_changed`` and ``project_deleted`` are how open subscriptions learn that their subscriber may have
lost the project: they re-check the subscriber's role on those rare events only, never on every event.
``session_ended`` is how they learn that their subscriber's session ended (logout, a disabled user); it is
about no project (``project_id`` is :data:`NO_PROJECT`), so subscriptions ask for it by kind (``always``).
The cluster's events (``cluster_started``, ``worker_joined``, …) are about no project either.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

__all__ = ["CLUSTER_KINDS", "NO_PROJECT", "Event", "EventKind", "session_ended"]

NO_PROJECT = 0
"""The ``project_id`` of an event about no project (project ids start at 1)."""

_T = TypeVar("_T")


class EventKind(enum.StrEnum):
    TASK_FINISHED = "task_finished"
    TASK_FAILED = "task_failed"
    JOB_PROGRESS = "job_progress"
    JOB_FINISHED = "job_finished"
    IMAGE_STATUS = "image_status"
    SEGMENTATION_SAVED = "segmentation_saved"
    REVIEW_CHANGED = "review_changed"
    JOB_CREATED = "job_created"
    JOB_CANCELLED = "job_cancelled"
    ACCESS_CHANGED = "access_changed"
    """Members lost their access (removed from the project); ``data["user_ids"]`` names them."""
    PROJECT_DELETED = "project_deleted"
    """The project is gone; ``data["user_ids"]`` names its members then (admins lose it too)."""
    PROJECT_CREATED = "project_created"
    """A project was made; ``data["user_ids"]`` names its owner."""
    PROJECT_UPDATED = "project_updated"
    """A project was renamed or its description changed."""
    ACCESS_GRANTED = "access_granted"
    """The project was shared with users, or their role changed; ``data["user_ids"]`` names them."""
    SESSION_ENDED = "session_ended"
    """Sessions of ``data["user_id"]`` ended: those in ``data["session_ids"]`` (a logout), or every one
    when it is absent (the user was disabled). ``project_id`` is :data:`NO_PROJECT`."""
    CLUSTER_STARTED = "cluster_started"
    """The server's own cluster started (or the server reached its scheduler); ``data["workers"]``."""
    CLUSTER_STOPPED = "cluster_stopped"
    """The server's own cluster stopped (or the server let go of its scheduler)."""
    WORKER_JOINED = "worker_joined"
    """A worker joined the cluster: ``data["worker"]`` (address), ``data["name"]``, ``data["workers"]``."""
    WORKER_LEFT = "worker_left"
    """A worker was retired or closed on purpose; ``data`` as for ``worker_joined``."""
    WORKER_DIED = "worker_died"
    """A worker went without being asked (killed, crashed, unreachable); ``data`` as for ``worker_joined``.

    The cluster events are about :data:`NO_PROJECT` and go only to the subscribers of the replica that saw
    them (:meth:`~server.events.bus.EventBus.publish_here`): each replica watches the cluster it uses."""


CLUSTER_KINDS = frozenset(
    {
        EventKind.CLUSTER_STARTED,
        EventKind.CLUSTER_STOPPED,
        EventKind.WORKER_JOINED,
        EventKind.WORKER_LEFT,
        EventKind.WORKER_DIED,
    }
)


@dataclass(frozen=True)
class Event:
    """One thing that happened in a project.

    ``actor`` is the username of whoever caused it, ``None`` for the system (the dispatcher). ``data`` must be
    JSON-serialisable; it is stored read-only because the same instance is handed to every subscriber, and
    one consumer must not change what the others see. ``data["truncated"]`` is true when details were left
    out to fit a transport's size limit (refetch to see them).
    """

    kind: EventKind
    project_id: int
    job_id: int | None = None
    image_ids: tuple[int, ...] = ()
    actor: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", EventKind(self.kind))
        object.__setattr__(self, "image_ids", tuple(self.image_ids))
        object.__setattr__(self, "data", MappingProxyType(dict(self.data)))

    def to_json(self) -> str:
        return json.dumps(
            {
                "kind": self.kind.value,
                "project_id": self.project_id,
                "job_id": self.job_id,
                "image_ids": list(self.image_ids),
                "actor": self.actor,
                "data": dict(self.data),
                "at": self.at,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Event:
        """The event ``text`` encodes; :class:`ValueError` naming the bad field when it is malformed.

        Unknown keys are ignored, so a replica running an older version still reads a newer one's events.
        """
        try:
            raw = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"an event must be JSON: {error}") from error
        if not isinstance(raw, dict):
            raise ValueError(f"an event must be a JSON object, not {type(raw).__name__}")
        try:
            kind = EventKind(str(raw.get("kind")))
        except ValueError as error:
            raise ValueError(f"unknown event kind {raw.get('kind')!r}") from error
        image_ids = raw.get("image_ids", [])
        if not isinstance(image_ids, list) or not all(_is_int(i) for i in image_ids):
            raise ValueError("an event's image_ids must be a list of integers")
        data = raw.get("data", {})
        if not isinstance(data, dict):
            raise ValueError("an event's data must be a JSON object")
        at = raw.get("at")
        if isinstance(at, bool) or not isinstance(at, int | float):
            raise ValueError("an event's at must be a number (unix seconds)")
        return cls(
            kind=kind,
            project_id=_field(raw, "project_id", int),
            job_id=_optional(raw, "job_id", int),
            image_ids=tuple(image_ids),
            actor=_optional(raw, "actor", str),
            data=data,
            at=float(at),
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _field(raw: dict[str, Any], name: str, kind: type[_T]) -> _T:
    value = raw.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"an event's {name} must be of type {kind.__name__}, not {type(value).__name__}")
    return value


def _optional(raw: dict[str, Any], name: str, kind: type[_T]) -> _T | None:
    return None if raw.get(name) is None else _field(raw, name, kind)


def session_ended(user_id: int, session_ids: Collection[int] | None = None) -> Event:
    """The event saying that these sessions of ``user_id`` ended (``None``: all of them)."""
    data: dict[str, Any] = {"user_id": user_id}
    if session_ids is not None:
        data["session_ids"] = sorted(session_ids)
    return Event(EventKind.SESSION_ENDED, NO_PROJECT, data=data)
