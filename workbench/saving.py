"""Saving the review canvas's edits so that none is lost: the journal first, the server after a short idle.

Each edit of a spheroid (:meth:`Saver.edit`) is written to the image's :class:`~workbench.journal.Journal`
at once (fsynced), and sent after ``idle`` seconds without another edit, or at once on :meth:`Saver.flush`
(Ctrl+S). The pending changes of an image go in one ``editSegmentation`` on the version this saver knows
(several edits of one spheroid as the last of them). Then:

- saved (merged with others' saves or not): the changes leave the journal and the known version moves on;
  a merged save is quiet (``saved`` says ``merged`` so the canvas reloads the spheroids it did not touch);
- a conflict (someone else changed or deleted a spheroid this edit touches): the spheroid's changes are held
  in the journal and not resent; ``conflicts_changed`` shows it with both shapes until the user picks
  :meth:`Saver.keep_mine`, :meth:`Saver.take_theirs` or :meth:`Saver.keep_both` (then ``saved``, merged,
  tells the canvas to show what is stored); the rest of the batch is
  sent again (it merges); a "conflict" whose two shapes are the same is this very edit, stored before the
  workbench died and replayed: confirmed, not shown;
- the server unreachable or busy (rate limited, or saves racing too often to merge): everything stays in the
  journal and is sent again after a backoff;
- refused (rings the server cannot store, an image deleted meanwhile): the changes leave the journal and
  ``refused`` says why (the canvas validates every shape first, so this is a defect, not a user's mistake);
  not allowed (a viewer, signed out): they stay in the journal, ``refused`` says why, and are not resent
  until the next :meth:`Saver.flush` or :meth:`Saver.replay`.

:meth:`Saver.replay` sends whatever the journals hold, also what a killed workbench left there;
:func:`open_saver` makes a workspace's saver, which replays at once and each time the live channel is
connected again (the server is back), so edits kept while it was away go without waiting for a backoff.

Idempotency: ``editSegmentation`` stores a call's changes all or none, and the journal keeps exactly the
rings that were sent (the server stores them as sent, float64), so what the server holds tells whether a
send whose answer never came was stored: a change whose spheroid is stored as it (or gone, for a delete)
is confirmed, not sent again nor shown as a conflict, also when later edits of that spheroid were added
on top; a new spheroid with the same rings as a stored one is that one (its id reported in ``saved``).
This is checked before every send that follows a lost answer (the server killed or unreachable mid-send),
not only at start. :attr:`Saver.status_changed` tells the one-line status (:class:`SaveStatus`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.api import (
    ApiError,
    Backoff,
    ChannelState,
    LabClient,
    LiveChannel,
    ServerUnreachableError,
    StateChange,
)
from workbench.journal import Journal, JournalEntry, Journals, user_journal_folder
from workbench.tasks import Listeners

if TYPE_CHECKING:  # the workspace holds its saver (workbench.workspace imports this module)
    from workbench.workspace import Workspace

__all__ = [
    "Conflict",
    "Refusal",
    "SaveStatus",
    "Saved",
    "Saver",
    "delete",
    "journals_of",
    "open_saver",
    "upsert",
]

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


@dataclass(frozen=True)
class SaveStatus:
    """Where the edits stand, for the one line under the canvas: ``pending`` changes not confirmed
    (``held`` of them wait for a conflict's choice), a send under way, the server away, the last refusal
    (until the next save)."""

    pending: int
    held: int
    sending: bool
    unreachable: bool
    conflicts: int
    refusal: Refusal | None

    @property
    def text(self) -> str:
        """The line a user reads; the conflicts first, since only the user can settle them."""
        if self.conflicts:
            return _count(self.conflicts, "conflict")  # the view adds its Resolve… button
        unsent = self.pending - self.held
        if self.unreachable and unsent:
            return (
                f"{_count(unsent, 'edit')} kept on this computer: the server cannot be reached; "
                f"{'it is' if unsent == 1 else 'they are'} sent when it is back"
            )
        if self.refusal is not None:  # the first problem says more than the summary ("1 problem(s)")
            problems = self.refusal.problems
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            return f"Not saved: {problems[0]}{more}" if problems else f"Not saved: {self.refusal.message}"
        if unsent:
            return f"Saving {_count(unsent, 'edit')}…"
        return "All edits saved"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


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
        self.last_refusal: Refusal | None = None
        self.pending_changed: Listeners[int] = Listeners()
        self.status_changed: Listeners[SaveStatus] = Listeners()
        self.saved: Listeners[Saved] = Listeners()
        self.conflicts_changed: Listeners[list[Conflict]] = Listeners()
        self.refused: Listeners[Refusal] = Listeners()
        self._versions: dict[int, int] = {}
        self._held: set[str] = set()
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._sending: dict[int, asyncio.Task[None]] = {}
        self._attempts: dict[int, int] = {}
        self._unanswered: set[int] = set()
        """Images whose last send got no answer: perhaps stored, so checked before sending again."""
        self._replaying: asyncio.Task[None] | None = None
        self._unfollow: Callable[[], None] | None = None

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

    @property
    def status(self) -> SaveStatus:
        sending = any(not task.done() for task in self._sending.values())
        return SaveStatus(
            self.pending,
            len(self._held),
            sending,
            self.unreachable,
            len(self.conflicts),
            self.last_refusal,
        )

    def follow(self, channel: LiveChannel) -> None:
        """Replay each time ``channel`` is connected again: the
        server is back, so what waited for it goes now rather than after the rest of a backoff."""

        def on_state(change: StateChange) -> None:
            if change.state is ChannelState.CONNECTED and self.pending:
                self.start_replay()

        self._unfollow = channel.add_state_listener(on_state)

    def start_replay(self) -> asyncio.Task[None]:
        """:meth:`replay` as a task this saver holds (one at a time; :meth:`close` ends it)."""
        if self._replaying is None or self._replaying.done():
            self._replaying = asyncio.create_task(self._replay_logged(), name="replay journalled edits")
        return self._replaying

    async def _replay_logged(self) -> None:
        try:
            await self.replay()
        except ApiError as error:  # not allowed, signed out: kept in the journal; the status says why
            logger.warning("journalled edits not replayed: %s", error)

    async def flush(self) -> None:
        """Send every pending change now (Ctrl+S) and wait for the answers (one try each)."""
        await asyncio.gather(*(self._send_now(image_id) for image_id in self.journals.image_ids()))

    async def replay(self) -> None:
        """At start: send what the journals hold, left by this run or by one that was killed.

        A new spheroid a killed workbench sent but never heard back about is stored already: one with the
        same rings on the server is taken as it (its id reported in ``saved``), not drawn a second time.
        """
        self._unanswered.update(self.journals.image_ids())
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
            # not rebased: the other changes, if they were in the same stored call, come back as
            # "conflicts" with their own shapes and are confirmed then (_hold); others merge as usual
            journal.remove(set(found))
            self.last_saved = Saved(image_id, int(segmentation["version"]), True, found)
            self._emit_pending()
            self.saved.emit(self.last_saved)

    async def close(self) -> None:
        """Stop the timers and sends; what is unsent stays in the journal for the next start."""
        if self._unfollow is not None:
            self._unfollow()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        tasks = [*self._sending.values(), *([self._replaying] if self._replaying else [])]
        for task in tasks:
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

    async def authors_since(self, conflict: Conflict) -> list[str]:
        """Who saved the image after ``conflict``'s base version (one of them changed the spheroid; the
        versions do not say which): names, "a segmentation run" for a job's result, "you (in another
        window)" for the signed-in user (offline, every save is theirs), oldest first."""
        first = min(100, max(1, conflict.current_version - conflict.base_version))
        answer = await self.client.call(
            "SavesSince", imageId=conflict.image_id, first=first, before=conflict.current_version + 1
        )
        image = answer["image"]
        saves = [] if image is None else image["segmentationHistory"]
        names: list[str] = []
        for save in reversed(saves):
            if int(save["version"]) <= conflict.base_version:
                continue
            name = save["author"] or ("a segmentation run" if save["origin"] == "JOB" else "someone")
            if answer["me"] is not None and name == answer["me"]["username"]:
                name = "you (in another window)"
            if name not in names:
                names.append(name)
        return names

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
        if not self.journals.of(conflict.image_id).entries():
            # the canvas shows what is stored now (theirs, mine, or both with mine's new id), as after a
            # merged save; still pending (the server away), it keeps showing the user's shape meanwhile
            version = self._versions[conflict.image_id]
            self.last_saved = Saved(conflict.image_id, version, True, {})
            self.saved.emit(self.last_saved)

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
        self._emit_status()
        try:
            await self._send_all(image_id)
        finally:
            self._sending.pop(image_id, None)
            self._emit_status()

    async def _send_all(self, image_id: int) -> None:
        journal = self.journals.of(image_id)
        while batch := [entry for entry in journal.entries() if entry.change_id not in self._held]:
            try:
                if image_id in self._unanswered:
                    await self._confirm_stored_new(image_id)
                    self._unanswered.discard(image_id)
                    continue  # the batch without what was found stored
                answer = await self._send_batch(image_id, journal, batch)
            except ServerUnreachableError as lost:
                self._unanswered.add(image_id)  # sent perhaps, the answer lost: checked next time
                self._retry_later(image_id, None, str(lost))
                return
            except ApiError as refused:  # not allowed, signed out: kept until the user can save again
                logger.warning("edits of image %d not saved: %s", image_id, refused)
                self._refuse(Refusal(image_id, str(refused), ()))
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
            self.unreachable, self.last_refusal = False, None
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
            self._refuse(Refusal(image_id, str(answer.get("message", kind)), problems))
        return None

    def _refuse(self, refusal: Refusal) -> None:
        self.last_refusal = refusal
        self.refused.emit(refusal)
        self._emit_status()

    def _hold(
        self,
        image_id: int,
        journal: Journal,
        answer: Mapping[str, Any],
        changes: Mapping[str, Any],
        sources: Mapping[Any, list[str]],
    ) -> None:
        found_all: list[Mapping[str, Any]] = answer["conflicts"]
        changes_by_id = {entry.change_id: entry.change for entry in journal.entries()}
        confirmed = {
            int(found["id"]): _stored_already(found, sources.get(int(found["id"]), []), changes_by_id)
            for found in found_all
        }
        stored = [found for found in found_all if confirmed[int(found["id"])]]
        if stored:
            # the server stored these before (a workbench killed between the save and its answer, then
            # replayed): not a conflict with oneself; later edits of the spheroid go on top of it (the
            # spheroids the server did not name are unchanged since the base, so the current version is
            # a safe base for them too); the canvas reloads as after a merged save
            version = max(self._versions.get(image_id, 0), int(answer["currentVersion"]))
            journal.remove({c for ids in confirmed.values() for c in ids}, rebase_to=version)
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
        self._emit_status()

    def _emit_status(self) -> None:
        self.status_changed.emit(self.status)


def journals_of(workspace: Workspace, folder: Path | None = None) -> Journals:
    """The journals of ``workspace``'s server under ``folder`` (the user's journal folder): a lab server by
    its URL; the offline server by its data folder, since its URL gets a new port at each start and edits
    a killed workbench left must be found by the next one."""
    where = folder or user_journal_folder()
    if workspace.offline is not None:
        return Journals(where, f"offline:{workspace.offline.data_folder.resolve()}")
    return Journals(where, workspace.url)


def open_saver(workspace: Workspace, folder: Path | None = None, **options: Any) -> Saver:
    """The saver of ``workspace`` (``options`` as :class:`Saver`'s): it replays what its journals hold at
    once (edits a killed or closed workbench left) and each time the live channel is connected again.
    Call it with the loop running; :meth:`Saver.close` it before the workspace. Every opened workspace
    has one already (``workspace.saver``)."""
    saver = Saver(workspace.client, journals_of(workspace, folder), **options)
    saver.follow(workspace.live)
    if saver.pending:
        saver.start_replay()
    return saver


def _rings(shape: Shape) -> tuple[Any, ...]:
    """A spheroid's rings to compare with what the server stored: rounded to 0.01 px, so that a float
    printed differently on its way through JSON still compares equal."""
    rings = [shape["exterior"], *(shape.get("holes") or ())]
    rounded = [[(round(float(x), 2), round(float(y), 2)) for x, y in ring] for ring in rings]
    # the server drops a closing vertex that repeats the first
    return tuple(tuple(ring[:-1] if len(ring) > 1 and ring[0] == ring[-1] else ring) for ring in rounded)


def _stored_already(
    found: Mapping[str, Any], source_ids: Sequence[str], changes: Mapping[str, Shape]
) -> list[str]:
    """Of the changes ``source_ids`` (oldest first) behind a conflicting spheroid, those the server has
    stored already: up to the newest whose result is what it holds now (``theirs``; ``None`` deleted)."""
    theirs = found["theirs"]
    for index in range(len(source_ids) - 1, -1, -1):
        change = changes.get(source_ids[index])
        if change is None:
            continue
        if "delete" in change and theirs is None:
            return list(source_ids[: index + 1])
        if "upsert" in change and theirs is not None and _rings(change["upsert"]) == _rings(theirs):
            return list(source_ids[: index + 1])
    return []


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
