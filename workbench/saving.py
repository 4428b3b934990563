"""Saving the review canvas's edits so that none is lost: the journal first, the server after a short idle.

Each edit of a spheroid (:meth:`Saver.edit`) is written to the image's :class:`~workbench.journal.Journal`
at once (fsynced), and sent after ``idle`` seconds without another edit, or at once on :meth:`Saver.flush`
(Ctrl+S). The pending changes of an image go in one ``editSegmentation`` on the version this saver knows
(several edits of one spheroid as the last of them). Then:

- saved (merged with others' saves or not): the changes leave the journal and the known version moves on;
  a merged save is quiet (``saved`` says ``merged`` so the canvas reloads the spheroids it did not touch);
- a conflict (someone else changed or deleted a spheroid this edit touches): the spheroid's changes are held
  in the journal and not resent; ``conflicts_changed`` shows it with both shapes until the user picks
  :meth:`Saver.keep_mine`, :meth:`Saver.take_theirs` or :meth:`Saver.keep_both`; the rest of the batch is
  sent again (it merges); a "conflict" whose two shapes are the same is this very edit, stored before the
  workbench died and replayed: confirmed, not shown;
- the server unreachable or busy (rate limited, or saves racing too often to merge): everything stays in the
  journal and is sent again after a backoff;
- refused (rings the server cannot store, an image deleted meanwhile): the changes leave the journal and
  ``refused`` says why (the canvas validates every shape first, so this is a defect, not a user's mistake);
  not allowed (a viewer, signed out): they stay in the journal, ``refused`` says why, and are not resent
  until the next :meth:`Saver.flush` or :meth:`Saver.replay`.

:meth:`Saver.replay` sends whatever the journals hold, also what a killed workbench left there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.api import ApiError, Backoff, LabClient, ServerUnreachableError
from workbench.journal import Journal, JournalEntry, Journals
from workbench.tasks import Listeners

__all__ = ["Conflict", "Refusal", "Saved", "Saver", "delete", "upsert"]

logger = logging.getLogger(__name__)

Shape = Mapping[str, Any]


def upsert(
    exterior: Sequence[Sequence[float]], holes: Sequence[Any] = (), spheroid_id: int | None = None
) -> Shape:
    """The change that reshapes spheroid ``spheroid_id`` (``None``: draws a new one)."""
    shape: dict[str, Any] = {
        "exterior": [list(point) for point in exterior],
        "holes": [list(h) for h in holes],
    }
    if spheroid_id is not None:
        shape["id"] = spheroid_id
    return {"upsert": shape}


def delete(spheroid_id: int) -> Shape:
    """The change that deletes spheroid ``spheroid_id``."""
    return {"delete": spheroid_id}


@dataclass(frozen=True)
class Saved:
    """Edits of ``image_id`` stored as ``version``; ``new_ids``: the ids new spheroids got, by change id."""

    image_id: int
    version: int
    merged: bool
    new_ids: Mapping[str, int]


@dataclass(frozen=True)
class Conflict:
    """Spheroid ``spheroid_id`` of ``image_id`` was changed (``reason`` CHANGED) or deleted (DELETED) by
    someone else since ``base_version``; ``mine`` and ``theirs`` are the two shapes (``None``: deleted)."""

    image_id: int
    spheroid_id: int
    reason: str
    base_version: int
    current_version: int
    mine: Shape | None
    theirs: Shape | None
    change: Shape
    change_ids: tuple[str, ...]


@dataclass(frozen=True)
class Refusal:
    image_id: int
    message: str
    problems: tuple[str, ...]


class Saver:
    """Saves the edits of one server's images through ``client``, journalled in ``journals``."""

    def __init__(
        self, client: LabClient, journals: Journals, *, idle: float = 0.8, backoff: Backoff | None = None
    ) -> None:
        self.client = client
        self.journals = journals
        self.idle = idle
        self.backoff = backoff or Backoff(initial=0.5, maximum=30.0)
        self.conflicts: list[Conflict] = []
        self.last_saved: Saved | None = None
        self.unreachable = False
        self.pending_changed: Listeners[int] = Listeners()
        self.saved: Listeners[Saved] = Listeners()
        self.conflicts_changed: Listeners[list[Conflict]] = Listeners()
        self.refused: Listeners[Refusal] = Listeners()
        self._versions: dict[int, int] = {}
        self._held: set[str] = set()
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._sending: dict[int, asyncio.Task[None]] = {}
        self._attempts: dict[int, int] = {}

    # -- what the canvas calls ----------------------------------------------------------------------------

    def open_image(self, image_id: int, version: int) -> None:
        """The canvas shows ``version`` of ``image_id``: edits of it start from there."""
        self._versions[image_id] = version

    def edit(self, image_id: int, change: Shape) -> str:
        """Journal ``change`` (see :func:`upsert`, :func:`delete`) at once and send it after the idle.
        Returns its change id (how :class:`Saved` names the id a new spheroid got). Call
        :meth:`open_image` first: an image never opened counts as having no outlines yet (version 0)."""
        entry = JournalEntry(image_id, self._versions.get(image_id, 0), dict(change))
        self.journals.of(image_id).append(entry)
        self._emit_pending()
        self._schedule(image_id, self.idle)
        return entry.change_id

    @property
    def pending(self) -> int:
        """Changes not confirmed by the server yet (held conflicts included)."""
        return sum(len(self.journals.of(image_id).entries()) for image_id in self.journals.image_ids())

    async def flush(self) -> None:
        """Send every pending change now (Ctrl+S) and wait for the answers (one try each)."""
        await asyncio.gather(*(self._send_now(image_id) for image_id in self.journals.image_ids()))

    async def replay(self) -> None:
        """At start: send what the journals hold, left by this run or by one that was killed.

        A new spheroid a killed workbench sent but never heard back about is stored already: one with the
        same rings on the server is taken as it (its id reported in ``saved``), not drawn a second time.
        """
        for image_id in self.journals.image_ids():
            try:
                await self._confirm_stored_new(image_id)
            except ServerUnreachableError:
                break  # the sends below find the server away too and retry
        await self.flush()

    async def _confirm_stored_new(self, image_id: int) -> None:
        journal = self.journals.of(image_id)
        new = [e for e in journal.entries() if "upsert" in e.change and "id" not in e.change["upsert"]]
        if not new:
            return
        answer = await self.client.call("ImageSpheroids", imageId=image_id)
        segmentation = answer["image"]["segmentation"]
        if segmentation is None:
            return
        stored = {_rings(spheroid): int(spheroid["id"]) for spheroid in segmentation["spheroids"]}
        found = {
            entry.change_id: stored[_rings(entry.change["upsert"])]
            for entry in new
            if _rings(entry.change["upsert"]) in stored
        }
        if found:
            version = int(segmentation["version"])
            journal.remove(set(found), rebase_to=version)
            self._versions[image_id] = max(self._versions.get(image_id, 0), version)
            self.last_saved = Saved(image_id, self._versions[image_id], True, found)
            self._emit_pending()
            self.saved.emit(self.last_saved)

    async def close(self) -> None:
        """Stop the timers and sends; what is unsent stays in the journal for the next start."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in list(self._sending.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the user's choices on a conflict -------------------------------------------------------------------

    async def keep_mine(self, conflict: Conflict) -> None:
        """Save my shape over theirs (on a spheroid they deleted: as a new spheroid)."""
        change = conflict.change
        if "upsert" in change and conflict.theirs is None:
            change = {"upsert": {k: v for k, v in change["upsert"].items() if k != "id"}}
        await self._resolve(conflict, [change])

    async def take_theirs(self, conflict: Conflict) -> None:
        """Drop my change: the stored shape stays."""
        await self._resolve(conflict, [])

    async def keep_both(self, conflict: Conflict) -> None:
        """Keep theirs as stored and add my shape as a new spheroid (my deletion: nothing to add)."""
        if "upsert" not in conflict.change:
            await self._resolve(conflict, [])
            return
        await self._resolve(
            conflict, [{"upsert": {k: v for k, v in conflict.change["upsert"].items() if k != "id"}}]
        )

    async def _resolve(self, conflict: Conflict, changes: Sequence[Shape]) -> None:
        journal = self.journals.of(conflict.image_id)
        version = max(self._versions.get(conflict.image_id, 0), conflict.current_version)
        self._versions[conflict.image_id] = version
        journal.remove(
            conflict.change_ids,
            add=[JournalEntry(conflict.image_id, version, dict(change)) for change in changes],
        )
        self._held.difference_update(conflict.change_ids)
        self.conflicts = [known for known in self.conflicts if known != conflict]
        self.conflicts_changed.emit(self.conflicts)
        self._emit_pending()
        await self._send_now(conflict.image_id)

    # -- sending --------------------------------------------------------------------------------------------

    def _schedule(self, image_id: int, delay: float) -> None:
        if (timer := self._timers.pop(image_id, None)) is not None:
            timer.cancel()
        loop = asyncio.get_running_loop()
        self._timers[image_id] = loop.call_later(delay, self._start, image_id)

    def _start(self, image_id: int) -> asyncio.Task[None]:
        self._timers.pop(image_id, None)
        running = self._sending.get(image_id)
        if running is not None and not running.done():
            return running
        task = asyncio.create_task(self._send(image_id), name=f"save image {image_id}")
        self._sending[image_id] = task
        return task

    async def _send_now(self, image_id: int) -> None:
        if (timer := self._timers.pop(image_id, None)) is not None:
            timer.cancel()
        running = self._sending.get(image_id)
        if running is not None and not running.done():
            await running  # its loop takes the newest changes too
        await self._start(image_id)

    async def _send(self, image_id: int) -> None:
        journal = self.journals.of(image_id)
        while batch := [entry for entry in journal.entries() if entry.change_id not in self._held]:
            try:
                answer = await self._send_batch(image_id, journal, batch)
            except ServerUnreachableError as lost:
                self._retry_later(image_id, None, str(lost))
                return
            except ApiError as refused:  # not allowed, signed out: kept until the user can save again
                logger.warning("edits of image %d not saved: %s", image_id, refused)
                self.refused.emit(Refusal(image_id, str(refused), ()))
                return
            if answer is not None:  # busy: try again after the server's wait
                self._retry_later(image_id, answer, "server busy")
                return
        self._attempts.pop(image_id, None)
        self.unreachable = False

    def _retry_later(self, image_id: int, delay: float | None, why: str) -> None:
        attempt = self._attempts[image_id] = self._attempts.get(image_id, 0) + 1
        wait = self.backoff.delay(attempt) if delay is None else delay
        logger.info("edits of image %d not saved (%s): again in %.1f s", image_id, why, wait)
        self.unreachable = delay is None
        self._schedule(image_id, wait)

    async def _send_batch(self, image_id: int, journal: Journal, batch: list[JournalEntry]) -> float | None:
        """Send ``batch`` once; the seconds to wait when the server is busy, else ``None``."""
        base = max(self._versions.get(image_id, 0), *(entry.base_version for entry in batch))
        changes, sources = _coalesced(batch)
        data = await self.client.call("EditSegmentation", imageId=image_id, baseVersion=base, changes=changes)
        answer = data["editSegmentation"]
        kind = answer["__typename"]
        sent = {entry.change_id for entry in batch}
        if kind == "SegmentationEditSuccess":
            version = int(answer["segmentation"]["version"])
            new = [ids[-1] for key, ids in sources.items() if isinstance(key, str)]
            journal.remove(sent, rebase_to=version)
            self._versions[image_id] = version
            self.last_saved = Saved(
                image_id, version, bool(answer["merged"]), dict(zip(new, answer["newIds"], strict=True))
            )
            self._emit_pending()
            self.saved.emit(self.last_saved)
        elif kind == "EditConflict":
            self._hold(image_id, journal, answer, changes, sources)
        elif kind == "RateLimited":
            return float(answer["retryAfterSeconds"])
        elif kind == "VersionConflict":  # others saved at this very instant, too often to merge: soon again
            return self.backoff.delay(1)
        else:
            journal.remove(sent)
            problems = tuple(answer.get("problems", ()))
            logger.error("edits of image %d refused: %s %s", image_id, answer.get("message"), problems)
            self._emit_pending()
            self.refused.emit(Refusal(image_id, str(answer.get("message", kind)), problems))
        return None

    def _hold(
        self,
        image_id: int,
        journal: Journal,
        answer: Mapping[str, Any],
        changes: Mapping[str, Any],
        sources: Mapping[Any, list[str]],
    ) -> None:
        found_all: list[Mapping[str, Any]] = answer["conflicts"]
        stored = [found for found in found_all if _same_shape(found["mine"], found["theirs"])]
        if stored:
            # the server stored these before (a workbench killed between the save and its answer, then
            # replayed): not a conflict with oneself; the canvas reloads as after a merged save
            version = max(self._versions.get(image_id, 0), int(answer["currentVersion"]))
            journal.remove(
                {c for found in stored for c in sources.get(int(found["id"]), ())}, rebase_to=version
            )
            self._versions[image_id] = version
            self.last_saved = Saved(image_id, version, True, {})
            self._emit_pending()
            self.saved.emit(self.last_saved)
        sent_shapes = {shape["id"]: {"upsert": shape} for shape in changes["upsert"] if "id" in shape}
        sent_shapes.update({spheroid_id: {"delete": spheroid_id} for spheroid_id in changes["delete"]})
        for found in (found for found in found_all if found not in stored):
            spheroid_id = int(found["id"])
            same = [
                known
                for known in self.conflicts
                if (known.image_id, known.spheroid_id) == (image_id, spheroid_id)
            ]
            # an edit of a spheroid already in conflict joins it: the choice settles every change of it
            earlier = tuple(change_id for known in same for change_id in known.change_ids)
            change_ids = (*earlier, *sources.get(spheroid_id, ()))
            self._held.update(change_ids)
            conflict = Conflict(
                image_id,
                spheroid_id,
                str(found["reason"]),
                int(answer["baseVersion"]),
                int(answer["currentVersion"]),
                found["mine"],
                found["theirs"],
                sent_shapes[spheroid_id],
                change_ids,
            )
            self.conflicts = [*(known for known in self.conflicts if known not in same), conflict]
        self.conflicts_changed.emit(self.conflicts)

    def _emit_pending(self) -> None:
        self.pending_changed.emit(self.pending)


def _rings(shape: Shape) -> tuple[Any, ...]:
    """A spheroid's rings to compare with what the server stored (rounded: it may store fewer digits)."""
    rings = [shape["exterior"], *shape.get("holes", ())]
    return tuple(tuple((round(float(x), 2), round(float(y), 2)) for x, y in ring) for ring in rings)


def _same_shape(mine: Shape | None, theirs: Shape | None) -> bool:
    return (
        mine is not None
        and theirs is not None
        and (mine["exterior"], mine["holes"]) == (theirs["exterior"], theirs["holes"])
    )


def _coalesced(batch: Sequence[JournalEntry]) -> tuple[dict[str, Any], dict[int | str, list[str]]]:
    """The batch as ``editSegmentation``'s changes, each spheroid once (its last change), and the change ids
    behind each spheroid (keyed by id; a new spheroid by its change id)."""
    last: dict[int | str, Shape] = {}
    sources: dict[int | str, list[str]] = {}
    for entry in batch:
        change = entry.change
        key: int | str
        if "delete" in change:
            key = int(change["delete"])
        elif change["upsert"].get("id") is not None:
            key = int(change["upsert"]["id"])
        else:
            key = entry.change_id
        last.pop(key, None)  # keep the order of the last change
        last[key] = change
        sources.setdefault(key, []).append(entry.change_id)
    upserts = [change["upsert"] for change in last.values() if "upsert" in change]
    deletes = [change["delete"] for change in last.values() if "delete" in change]
    return {"upsert": upserts, "delete": deletes}, sources
