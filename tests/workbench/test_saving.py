"""Saving edits against the real offline server: an edit is saved after the idle, two people's edits of
different spheroids both land, the same spheroid is a conflict each of whose three choices ends as the user
expects, and no edit is lost when the server goes away or the workbench itself is killed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.processes import disc_png
from workbench.api import Backoff, ChannelState, LabClient, LiveChannel
from workbench.jobs import follow_job, start_segmentation
from workbench.journal import JournalEntry, Journals
from workbench.offline import OfflineServer
from workbench.saving import Conflict, Refusal, Saved, Saver, delete, upsert
from workbench.uploads import import_files
from workbench.workspace import open_offline

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]

QUICK = Backoff(initial=0.1, maximum=0.5)


def _square(x: float, size: float = 20.0) -> list[list[float]]:
    return [[x, 20.0], [x + size, 20.0], [x + size, 20.0 + size], [x, 20.0 + size]]


A, B, C = _square(20), _square(100), _square(200)


@dataclass
class Lab:
    server: OfflineServer
    url: str
    token: str
    image_id: int
    project_id: int
    pid: int


def _environment() -> dict[str, str]:
    kept = {name: value for name, value in os.environ.items() if not name.startswith("SPHEROSEG_")}
    return {**kept, "SPHEROSEG_PASSWORD_MEMORY_KIB": "1024", "SPHEROSEG_CLUSTER_WORKERS": "1"}


@asynccontextmanager
async def _lab(tmp_path: Path) -> AsyncIterator[Lab]:
    """An offline server with a project of one imported image (no outlines yet)."""
    (tmp_path / "well.png").write_bytes(disc_png(seed=1))
    server = OfflineServer(tmp_path / "data", environment=_environment())
    started = await server.start()
    try:
        async with LabClient(started.url) as client:
            signed_in = await client.exchange_bootstrap_token(started.bootstrap_token)
            created = await client.call("CreateProject", name="Plate 1")
            project_id = created["createProject"]["project"]["id"]
            (imported,) = await import_files(client, project_id, [tmp_path / "well.png"])
        assert imported.image_id is not None
        yield Lab(server, started.url, signed_in.token, imported.image_id, project_id, started.pid)
    finally:
        await server.stop()


@asynccontextmanager
async def _saver(lab: Lab, folder: Path, **options: Any) -> AsyncIterator[Saver]:
    async with LabClient(lab.url, token=lab.token) as client:
        saver = Saver(client, Journals(folder, lab.url), **options)
        try:
            yield saver
        finally:
            await saver.close()


async def _stored(lab: Lab) -> tuple[int, dict[int, list[list[float]]]]:
    """The image's current version and each spheroid's exterior, as the server keeps them."""
    async with LabClient(lab.url, token=lab.token) as client:
        segmentation = (await client.call("ImageSpheroids", imageId=lab.image_id))["image"]["segmentation"]
    if segmentation is None:
        return 0, {}
    return segmentation["version"], {s["id"]: s["exterior"] for s in segmentation["spheroids"]}


async def _draw(saver: Saver, image_id: int, shapes: Sequence[list[list[float]]]) -> list[int]:
    """Draw new spheroids on an image without outlines and save them; their ids."""
    saver.open_image(image_id, 0)
    change_ids = [saver.edit(image_id, upsert(shape)) for shape in shapes]
    await saver.flush()
    assert saver.last_saved is not None
    return [saver.last_saved.new_ids[change_id] for change_id in change_ids]


async def test_an_edit_of_a_segmented_spheroid_is_saved_after_the_idle(tmp_path: Path) -> None:
    async with _lab(tmp_path) as lab:
        async with LabClient(lab.url, token=lab.token) as client, LiveChannel(lab.url, lab.token) as channel:
            job_id = await start_segmentation(client, lab.project_id, method="classical")
            await follow_job(client, channel, job_id, lambda state: None)
        version, segmented = await _stored(lab)
        (spheroid_id,) = segmented

        async with _saver(lab, tmp_path / "journal", idle=0.3) as saver:
            saves: list[Saved] = []
            pending: list[int] = []
            saver.saved.connect(saves.append)
            saver.pending_changed.connect(pending.append)
            saved = asyncio.Event()
            saver.saved.connect(lambda _: saved.set())
            saver.open_image(lab.image_id, version)
            saver.edit(lab.image_id, upsert(_square(150, 60), spheroid_id=spheroid_id))
            saver.edit(lab.image_id, upsert(_square(150, 80), spheroid_id=spheroid_id))  # a second drag
            assert saver.pending == 2  # on disk before anything is sent
            await asyncio.wait_for(saved.wait(), 30)

        assert await _stored(lab) == (version + 1, {spheroid_id: _square(150, 80)})  # both drags, one version
        assert [(s.version, s.merged) for s in saves] == [(version + 1, False)]
        assert pending[-1] == 0
        assert Journals(tmp_path / "journal", lab.url).of(lab.image_id).entries() == []


async def test_two_people_editing_different_spheroids_both_save_and_the_second_is_merged(
    tmp_path: Path,
) -> None:
    async with _lab(tmp_path) as lab:
        async with _saver(lab, tmp_path / "ana") as ana, _saver(lab, tmp_path / "bea") as bea:
            first, _, third = await _draw(ana, lab.image_id, [A, B, C])
            bea.open_image(lab.image_id, 1)
            told: list[object] = []
            bea.conflicts_changed.connect(told.append)
            bea.refused.connect(told.append)
            ana.edit(lab.image_id, upsert(_square(20, 30), spheroid_id=first))
            bea.edit(lab.image_id, delete(third))
            await ana.flush()
            await bea.flush()

            assert ana.last_saved is not None and bea.last_saved is not None
            assert (ana.last_saved.version, ana.last_saved.merged) == (2, False)
            assert (bea.last_saved.version, bea.last_saved.merged) == (3, True)
            assert bea.conflicts == [] and bea.pending == 0
            assert told == [] and bea.status.text == "All edits saved"  # quietly: nothing to read or choose
        version, shapes = await _stored(lab)
        assert (version, sorted(shapes.values())) == (3, sorted([_square(20, 30), B]))


@pytest.mark.parametrize("choice", ["keep_mine", "take_theirs", "keep_both"])
async def test_editing_the_same_spheroid_is_a_conflict_with_both_shapes_and_each_choice_ends_as_chosen(
    tmp_path: Path, choice: str
) -> None:
    theirs_shape, mine_shape = _square(100, 40), _square(100, 10)
    async with _lab(tmp_path) as lab:
        async with _saver(lab, tmp_path / "ana") as ana, _saver(lab, tmp_path / "bea") as bea:
            _, second, third = await _draw(ana, lab.image_id, [A, B, C])
            bea.open_image(lab.image_id, 1)
            shown: list[list[Conflict]] = []
            bea.conflicts_changed.connect(shown.append)
            ana.edit(lab.image_id, upsert(theirs_shape, spheroid_id=second))
            await ana.flush()
            bea.edit(lab.image_id, upsert(mine_shape, spheroid_id=second))
            bea.edit(lab.image_id, upsert(_square(200, 5), spheroid_id=third))
            await bea.flush()

            (conflict,) = shown[-1]
            assert (conflict.spheroid_id, conflict.reason) == (second, "CHANGED")
            assert conflict.mine is not None and conflict.mine["exterior"] == mine_shape
            assert conflict.theirs is not None and conflict.theirs["exterior"] == theirs_shape
            assert bea.pending == 1  # the conflicting edit is kept until the user chooses
            # the other spheroid's edit did not wait for the choice
            assert await _stored(lab) == (3, {1: A, second: theirs_shape, third: _square(200, 5)})

            saves: list[Saved] = []
            bea.saved.connect(saves.append)
            await getattr(bea, choice)(conflict)

            assert bea.conflicts == [] and shown[-1] == [] and bea.pending == 0
            # the canvas is told to show what is stored now, whichever the choice
            assert (saves[-1].version, saves[-1].merged) == (3 if choice == "take_theirs" else 4, True)
        version, shapes = await _stored(lab)
        expected = {
            "keep_mine": (4, [A, mine_shape, _square(200, 5)]),
            "take_theirs": (3, [A, theirs_shape, _square(200, 5)]),
            "keep_both": (4, [A, theirs_shape, _square(200, 5), mine_shape]),
        }[choice]
        assert (version, sorted(shapes.values())) == (expected[0], sorted(expected[1]))


async def test_a_spheroid_the_other_deleted_comes_back_as_a_new_one_when_i_keep_mine(tmp_path: Path) -> None:
    async with _lab(tmp_path) as lab:
        async with _saver(lab, tmp_path / "ana") as ana, _saver(lab, tmp_path / "bea") as bea:
            first, second = await _draw(ana, lab.image_id, [A, B])
            bea.open_image(lab.image_id, 1)
            ana.edit(lab.image_id, delete(second))
            await ana.flush()
            bea.edit(lab.image_id, upsert(_square(100, 10), spheroid_id=second))
            await bea.flush()
            bea.edit(
                lab.image_id, upsert(_square(100, 15), spheroid_id=second)
            )  # edited again before choosing
            await bea.flush()

            (conflict,) = bea.conflicts
            assert (conflict.reason, conflict.theirs) == ("DELETED", None)
            assert conflict.mine is not None and conflict.mine["exterior"] == _square(100, 15)
            await bea.keep_mine(conflict)
            assert bea.pending == 0 and bea.conflicts == []
        version, shapes = await _stored(lab)
        assert (
            version == 3 and shapes[first] == A and sorted(shapes.values()) == sorted([A, _square(100, 15)])
        )
        assert second not in shapes  # a deleted spheroid's id is never given again


async def test_edits_made_while_the_server_is_down_are_kept_and_saved_once_it_is_back(tmp_path: Path) -> None:
    async with _lab(tmp_path) as lab:
        async with _saver(lab, tmp_path / "journal", backoff=QUICK) as saver:
            first, second = await _draw(saver, lab.image_id, [A, B])
            await lab.server.stop()
            saver.edit(lab.image_id, upsert(_square(20, 50), spheroid_id=first))
            saver.edit(lab.image_id, delete(second))
            await saver.flush()
            assert saver.unreachable and saver.pending == 2  # nothing lost, nothing sent

            back = asyncio.Event()
            saver.saved.connect(lambda _: back.set())
            await lab.server.start()  # same data folder and port
            await asyncio.wait_for(back.wait(), 60)  # the retry sends them without the user

            assert saver.pending == 0 and not saver.unreachable
        assert await _stored(lab) == (2, {first: _square(20, 50)})


async def test_edits_left_by_a_closed_workbench_while_the_server_was_killed_are_replayed_at_start(
    tmp_path: Path,
) -> None:
    async with _lab(tmp_path) as lab:
        async with _saver(lab, tmp_path / "journal", backoff=QUICK) as saver:
            (first,) = await _draw(saver, lab.image_id, [A])
            os.kill(lab.pid, signal.SIGKILL)  # the server dies without a word
            await lab.server.wait()
            saver.edit(lab.image_id, upsert(_square(20, 50), spheroid_id=first))
            await saver.flush()
        await lab.server.start()

        async with _saver(lab, tmp_path / "journal") as restarted:
            assert restarted.pending == 1
            await restarted.replay()
            assert restarted.pending == 0
        assert await _stored(lab) == (2, {first: _square(20, 50)})


CHILD = """
import os, signal, sys
from pathlib import Path
from workbench.journal import JournalEntry, Journals
from workbench.saving import upsert
folder, url, image_id, spheroid_id = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
square = [[20.0, 20.0], [90.0, 20.0], [90.0, 90.0], [20.0, 90.0]]
Journals(folder, url).of(image_id).append(JournalEntry(image_id, 1, upsert(square, spheroid_id=spheroid_id)))
line = JournalEntry(image_id, 1, upsert(square)).line()
with Journals(folder, url).of(image_id).path.open("a") as torn:  # the next edit, cut short by the kill
    torn.write(line[:20])
    torn.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


async def test_an_edit_journalled_by_a_workbench_killed_mid_edit_is_saved_by_the_next_one(
    tmp_path: Path,
) -> None:
    async with _lab(tmp_path) as lab:
        async with _saver(lab, tmp_path / "journal") as saver:
            (first,) = await _draw(saver, lab.image_id, [A])

        killed = subprocess.run(
            [sys.executable, "-c", CHILD, str(tmp_path / "journal"), lab.url, str(lab.image_id), str(first)],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
            check=False,
        )
        assert killed.returncode == -9

        async with _saver(lab, tmp_path / "journal") as restarted:
            await restarted.replay()
            assert restarted.pending == 0
        assert await _stored(lab) == (2, {first: _square(20, 70)})


async def test_an_edit_the_server_stored_before_the_workbench_was_killed_is_not_a_conflict_on_replay(
    tmp_path: Path,
) -> None:
    """Killed after the server stored the save and before the answer came back: the journal still has it."""
    async with _lab(tmp_path) as lab:
        async with _saver(lab, tmp_path / "journal") as saver:
            (first,) = await _draw(saver, lab.image_id, [A])
        change = upsert(_square(20, 50), spheroid_id=first)
        Journals(tmp_path / "journal", lab.url).of(lab.image_id).append(JournalEntry(lab.image_id, 1, change))
        async with LabClient(lab.url, token=lab.token) as client:
            sent = await client.call(
                "EditSegmentation",
                imageId=lab.image_id,
                baseVersion=1,
                changes={"upsert": [change["upsert"]]},
            )
        assert sent["editSegmentation"]["segmentation"]["version"] == 2

        async with _saver(lab, tmp_path / "journal") as restarted:
            await restarted.replay()
            assert restarted.pending == 0 and restarted.conflicts == []
        assert await _stored(lab) == (2, {first: _square(20, 50)})  # no second version, nothing to choose


async def test_a_new_spheroid_the_server_stored_before_the_workbench_was_killed_is_not_drawn_twice(
    tmp_path: Path,
) -> None:
    async with _lab(tmp_path) as lab:
        async with _saver(lab, tmp_path / "journal") as saver:
            await _draw(saver, lab.image_id, [A])
        drawn = JournalEntry(lab.image_id, 1, upsert(B))
        Journals(tmp_path / "journal", lab.url).of(lab.image_id).append(drawn)
        async with LabClient(lab.url, token=lab.token) as client:
            sent = await client.call(
                "EditSegmentation",
                imageId=lab.image_id,
                baseVersion=1,
                changes={"upsert": [drawn.change["upsert"]]},
            )
        (new_id,) = sent["editSegmentation"]["newIds"]

        async with _saver(lab, tmp_path / "journal") as restarted:
            saves: list[Saved] = []
            restarted.saved.connect(saves.append)
            await restarted.replay()
            assert restarted.pending == 0
        version, shapes = await _stored(lab)
        assert (version, sorted(shapes.values())) == (2, sorted([A, B]))
        assert saves[-1].new_ids == {drawn.change_id: new_id}  # the canvas learns the id it got


async def test_a_shape_the_server_cannot_store_is_refused_with_its_problem_and_later_edits_still_save(
    tmp_path: Path,
) -> None:
    async with _lab(tmp_path) as lab:
        async with _saver(lab, tmp_path / "journal") as saver:
            (first,) = await _draw(saver, lab.image_id, [A])
            refusals: list[Refusal] = []
            saver.refused.connect(refusals.append)
            saver.edit(lab.image_id, upsert([[370.0, 10.0], [500.0, 10.0], [500.0, 50.0]], spheroid_id=first))
            await saver.flush()
            assert saver.pending == 0  # not resent forever
            saver.edit(lab.image_id, upsert(_square(20, 30), spheroid_id=first))
            await saver.flush()

        (refusal,) = refusals
        assert "outside" in refusal.problems[0]
        assert await _stored(lab) == (2, {first: _square(20, 30)})


async def test_a_deletion_the_server_stored_before_the_workbench_was_killed_is_not_a_conflict_on_replay(
    tmp_path: Path,
) -> None:
    async with _lab(tmp_path) as lab:
        async with _saver(lab, tmp_path / "journal") as saver:
            first, second = await _draw(saver, lab.image_id, [A, B])
        Journals(tmp_path / "journal", lab.url).of(lab.image_id).append(
            JournalEntry(lab.image_id, 1, delete(second))
        )
        async with LabClient(lab.url, token=lab.token) as client:  # stored; the answer never came back
            await client.call(
                "EditSegmentation", imageId=lab.image_id, baseVersion=1, changes={"delete": [second]}
            )

        async with _saver(lab, tmp_path / "journal") as restarted:
            shown: list[list[Conflict]] = []
            restarted.conflicts_changed.connect(shown.append)
            await restarted.replay()
            assert restarted.pending == 0 and restarted.conflicts == []
            assert all(conflicts == [] for conflicts in shown)  # "deleted by someone else" never shown
            assert restarted.status.text == "All edits saved"
        assert await _stored(lab) == (2, {first: A})


async def test_an_edit_made_on_top_of_a_stored_but_unanswered_one_saves_without_a_conflict(
    tmp_path: Path,
) -> None:
    """The server stored the first drag and died before answering; the user dragged again meanwhile: the
    second drag goes on top of the first, with no conflict against the user's own shape."""
    async with _lab(tmp_path) as lab:
        async with _saver(lab, tmp_path / "journal") as saver:
            (first,) = await _draw(saver, lab.image_id, [A])
        journal = Journals(tmp_path / "journal", lab.url).of(lab.image_id)
        stored_drag = upsert(_square(20, 50), spheroid_id=first)
        journal.append(JournalEntry(lab.image_id, 1, stored_drag))
        journal.append(JournalEntry(lab.image_id, 1, upsert(_square(20, 60), spheroid_id=first)))
        async with LabClient(lab.url, token=lab.token) as client:
            await client.call(
                "EditSegmentation",
                imageId=lab.image_id,
                baseVersion=1,
                changes={"upsert": [stored_drag["upsert"]]},
            )

        async with _saver(lab, tmp_path / "journal") as restarted:
            await restarted.replay()
            assert restarted.pending == 0 and restarted.conflicts == []
        assert await _stored(lab) == (3, {first: _square(20, 60)})


KILLED_MID_EDIT = """
import asyncio, os, signal, sys
from pathlib import Path
from workbench.saving import upsert
from workbench.workspace import open_offline
data, journals, image_id = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])

async def main() -> None:
    workspace = await open_offline(data, journal_dir=journals)
    workspace.saver.open_image(image_id, 0)
    workspace.saver.edit(image_id, upsert([[30.0, 30.0], [90.0, 30.0], [90.0, 90.0], [30.0, 90.0]]))
    os.kill(os.getpid(), signal.SIGKILL)  # right after edit returned, before the idle send

asyncio.run(main())
"""


async def test_a_workbench_killed_right_after_an_edit_finds_it_on_its_next_start_and_saves_it(
    tmp_path: Path,
) -> None:
    """Offline, as a user works: the killed workbench's server goes with it; the next start gets a new port
    (so a new URL), and still finds the journal, keyed by the data folder, and replays it."""
    (tmp_path / "well.png").write_bytes(disc_png(seed=1))
    environment = _environment()
    first = await open_offline(
        tmp_path / "data",
        cache_dir=tmp_path / "cache",
        environment=environment,
        journal_dir=tmp_path / "journal",
    )
    try:
        project = await first.client.call("CreateProject", name="Plate 1")
        (imported,) = await import_files(
            first.client, project["createProject"]["project"]["id"], [tmp_path / "well.png"]
        )
    finally:
        await first.close()
    assert imported.image_id is not None

    killed = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        KILLED_MID_EDIT,
        str(tmp_path / "data"),
        str(tmp_path / "journal"),
        str(imported.image_id),
        env={**environment, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert await asyncio.wait_for(killed.wait(), 120) == -signal.SIGKILL

    # started at once: the killed one's server may still be stopping (it polls its parent); it is waited for
    again = await open_offline(
        tmp_path / "data",
        cache_dir=tmp_path / "cache",
        environment=environment,
        journal_dir=tmp_path / "journal",
    )
    try:
        saver = again.saver  # made with the workspace, replaying what the killed one left
        assert saver is not None
        await _until(lambda: saver.pending == 0, 60)
        answer = await again.client.call("ImageSpheroids", imageId=imported.image_id)
    finally:
        await again.close()
    segmentation = answer["image"]["segmentation"]
    assert [s["exterior"] for s in segmentation["spheroids"]] == [
        [[30.0, 30.0], [90.0, 30.0], [90.0, 90.0], [30.0, 90.0]]
    ]


async def test_edits_kept_while_the_server_was_killed_go_as_soon_as_the_live_channel_is_back(
    tmp_path: Path,
) -> None:
    """The saver's own retry waits minutes here; the reconnection is what sends them."""
    environment = _environment()
    (tmp_path / "well.png").write_bytes(disc_png(seed=1))
    workspace = await open_offline(
        tmp_path / "data",
        cache_dir=tmp_path / "cache",
        environment=environment,
        journal_dir=tmp_path / "journal",
    )
    try:
        project = await workspace.client.call("CreateProject", name="Plate 1")
        (imported,) = await import_files(
            workspace.client, project["createProject"]["project"]["id"], [tmp_path / "well.png"]
        )
        image_id = imported.image_id
        assert image_id is not None and workspace.offline is not None and workspace.started is not None
        saver = workspace.saver  # the workspace's own, as the review page uses it
        assert saver is not None
        saver.backoff = Backoff(initial=300, maximum=300)
        # the gallery's subscription, through which the channel notices the server is gone
        gallery = asyncio.create_task(
            _follow_events(workspace.live, project["createProject"]["project"]["id"])
        )
        try:
            (first,) = await _draw(saver, image_id, [A])
            while workspace.live.state.state is not ChannelState.CONNECTED:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # subscribed
            os.kill(workspace.started.pid, signal.SIGKILL)
            await workspace.offline.wait()
            saver.edit(image_id, upsert(_square(20, 50), spheroid_id=first))
            saver.edit(image_id, upsert(B))
            await saver.flush()
            assert saver.status.text == (
                "2 edits kept on this computer: the server cannot be reached; they are sent when it is back"
            )
            saved = asyncio.Event()
            saver.saved.connect(lambda _: saved.set())
            await workspace.offline.start()  # same data folder and port: the live channel reconnects
            await asyncio.wait_for(saved.wait(), 60)
            assert saver.pending == 0 and saver.status.text == "All edits saved"
        finally:
            gallery.cancel()
        answer = await workspace.client.call("ImageSpheroids", imageId=image_id)
    finally:
        await workspace.close()
    shapes = {s["id"]: s["exterior"] for s in answer["image"]["segmentation"]["spheroids"]}
    assert shapes[first] == _square(20, 50) and sorted(shapes.values()) == sorted([_square(20, 50), B])


async def _follow_events(channel: LiveChannel, project_id: int) -> None:
    async for _ in channel.subscribe("ProjectEvents", projectId=project_id):
        pass


class AnswerLost(httpx.AsyncBaseTransport):
    """Real HTTP to the server, except that the answer to the next ``editSegmentation`` is dropped after
    the server has stored it (as when the server dies or the network breaks at that instant)."""

    def __init__(self) -> None:
        self.real = httpx.AsyncHTTPTransport()
        self.lose_next = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.real.handle_async_request(request)
        if self.lose_next and b"editSegmentation" in request.content:
            self.lose_next = False
            await response.aread()  # stored by now
            await response.aclose()
            raise httpx.ReadError("connection reset before the answer", request=request)
        return response

    async def aclose(self) -> None:
        await self.real.aclose()


async def test_edits_whose_answer_was_lost_are_not_stored_twice_nor_shown_as_conflicts(
    tmp_path: Path,
) -> None:
    """Not a replay at start: the running saver's own retry checks what the server holds first."""
    async with _lab(tmp_path) as lab:
        lossy = AnswerLost()
        async with LabClient(lab.url, token=lab.token, transport=lossy) as client:
            saver = Saver(client, Journals(tmp_path / "journal", lab.url), backoff=QUICK)
            saves: list[Saved] = []
            saver.saved.connect(saves.append)
            try:
                (first,) = await _draw(saver, lab.image_id, [A])
                lossy.lose_next = True
                drawn = saver.edit(lab.image_id, upsert(B))  # a new spheroid: stored, the answer lost
                await saver.flush()
                assert saver.unreachable and saver.pending == 1
                await _until(lambda: saver.pending == 0)  # the retry finds it stored
                new_id = saves[-1].new_ids[drawn]  # the canvas learns the id it got

                lossy.lose_next = True
                saver.edit(lab.image_id, upsert(_square(20, 50), spheroid_id=first))  # stored, answer lost
                await saver.flush()
                saver.edit(lab.image_id, upsert(_square(20, 60), spheroid_id=first))  # dragged again
                await saver.flush()
                await _until(lambda: saver.pending == 0)
                assert saver.conflicts == []
            finally:
                await saver.close()
        # B once; the second drag on top of the first (versions: A, B, first drag, second drag)
        assert await _stored(lab) == (4, {first: _square(20, 60), new_id: B})


async def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)
