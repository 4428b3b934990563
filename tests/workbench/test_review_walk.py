"""The review walk against a real offline server: "n of m" within the gallery's filter, next and previous,
the next image prefetched so that opening it is served by the fetcher's cache, verdicts stored with the
version looked at, a stale one refused with nothing changed, and a walk of the unreviewed going on from
where the reviewer was after each verdict."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.workbench.reviewed_project import (
    REVIEW,
    Project,
    environment,
    graphql,
    reviewed_project,
    save,
    spheroids_of,
)
from workbench.review_walk import STALE_MESSAGE, GivenVerdict, ReviewWalk, Verdict, WalkFilter
from workbench.tasks import Listeners
from workbench.workspace import Workspace, open_offline

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]


@asynccontextmanager
async def _lab(tmp_path: Path, count: int = 4) -> AsyncIterator[tuple[Workspace, Project]]:
    workspace = await open_offline(tmp_path / "data", cache_dir=tmp_path / "cache", environment=environment())
    try:
        yield workspace, await reviewed_project(workspace, tmp_path / "images", count)
    finally:
        await workspace.close()


async def _review(workspace: Workspace, image_id: int) -> dict[str, Any]:
    return (await graphql(workspace, REVIEW, i=image_id))["image"]  # type: ignore[no-any-return]


async def test_next_and_previous_walk_the_filtered_list_and_the_next_image_is_prefetched(
    tmp_path: Path,
) -> None:
    async with _lab(tmp_path) as (workspace, project):
        segmented = {"status": ["DONE"]}  # the gallery shows only segmented images: the last one is not
        walk = ReviewWalk(workspace, project.id, image_filter=segmented)
        await walk.start(project.image_ids[1])
        assert walk.position_text() == "2 of 4"
        assert walk.current is not None and walk.current.name == "well-01.png"

        await walk.prefetching()
        prefetched = walk.prefetched[project.image_ids[2]]  # the next one, before anyone asked for it
        preview = await workspace.fetcher.fetch(prefetched.preview_url)
        outlines = await workspace.fetcher.fetch(prefetched.geometry_url)
        assert preview.from_cache and outlines.from_cache
        assert preview.media_type.startswith("image/")

        assert (await walk.next()) is not None and walk.position_text() == "3 of 4"
        tile = await walk.next()
        assert tile is not None and tile.name == "well-03.png" and walk.position_text() == "4 of 4"
        assert not walk.has_next and await walk.next() is None  # the image without outlines is filtered out
        assert walk.position_text() == "4 of 4"
        await walk.previous()
        await walk.previous()
        await walk.previous()
        assert walk.position_text() == "1 of 4" and not walk.has_previous
        assert await walk.previous() is None and walk.current is not None
        assert walk.current.name == "well-00.png"


async def test_a_verdict_names_the_version_looked_at_and_needs_fix_needs_a_comment(tmp_path: Path) -> None:
    async with _lab(tmp_path) as (workspace, project):
        first = project.image_ids[0]
        version = await save(workspace, first, 1, spheroids_of(5))  # version 2 is the one shown
        walk = ReviewWalk(workspace, project.id)
        await walk.start(first)
        walk.looking_at(first, version)
        given: list[GivenVerdict] = []
        walk.verdict_given.connect(given.append)

        refused = await walk.set_verdict(Verdict.NEEDS_FIX, "  ")
        assert not refused.stored and refused.needs_comment and "needs a comment" in refused.message
        assert (await _review(workspace, first))["reviewHistory"] == []  # nothing was sent

        outcome = await walk.set_verdict(Verdict.NEEDS_FIX, "the halo is outlined, not the core")
        assert outcome.stored, outcome.message
        stored = await _review(workspace, first)
        assert stored["reviewStatus"] == "NEEDS_FIX"
        assert stored["reviewHistory"] == [
            {"status": "NEEDS_FIX", "comment": "the halo is outlined, not the core", "version": 2}
        ]
        assert given == [GivenVerdict(first, Verdict.NEEDS_FIX, "the halo is outlined, not the core")]


async def test_a_verdict_on_a_version_someone_replaced_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    async with _lab(tmp_path) as (workspace, project):
        image_id = project.image_ids[2]
        walk = ReviewWalk(workspace, project.id)
        await walk.start(image_id)
        walk.looking_at(image_id, 1)
        await save(workspace, image_id, 1, spheroids_of(7))  # a colleague saves version 2 meanwhile

        outcome = await walk.set_verdict(Verdict.ACCEPTED)
        assert not outcome.stored and outcome.stale
        assert outcome.message == STALE_MESSAGE
        stored = await _review(workspace, image_id)
        assert stored["reviewStatus"] == "UNREVIEWED" and stored["reviewHistory"] == []
        assert walk.position_text() == "3 of 5"  # still on it


@dataclass(frozen=True)
class _Shown:
    id: int
    version: int


@dataclass
class _Outlines:
    version: int


@dataclass
class _Session:
    """What a review session shows: the image opened, and its outlines' version after its own saves."""

    image: _Shown
    outlines: _Outlines
    image_opened: Listeners[Any] = field(default_factory=Listeners)
    saves: int = 0

    async def save_now(self) -> None:
        self.saves += 1


async def test_a_walk_of_the_unreviewed_goes_on_where_the_accepted_image_was(tmp_path: Path) -> None:
    async with _lab(tmp_path) as (workspace, project):
        walk = ReviewWalk(workspace, project.id, walk=WalkFilter.UNREVIEWED)
        session = _Session(_Shown(project.image_ids[1], 1), _Outlines(1))
        walk.watch(session)
        await walk.start(project.image_ids[1])
        assert walk.position_text() == "2 of 5 unreviewed"

        outcome = await walk.set_verdict(Verdict.ACCEPTED)
        assert outcome.stored, outcome.message
        assert session.saves == 1  # the reviewer's pending edits are saved before the verdict
        assert walk.position_text() == "– of 4 unreviewed"  # it left the walk
        tile = await walk.next()
        assert tile is not None and tile.image_id == project.image_ids[2]
        assert walk.position_text() == "2 of 4 unreviewed"
        assert (await _review(workspace, project.image_ids[1]))["reviewHistory"][0]["version"] == 1

        await walk.set_walk(WalkFilter.ALL)
        assert walk.position_text() == "3 of 5"
        await walk.previous()  # back on the accepted one, then walking the unreviewed: it is not there
        await walk.set_walk(WalkFilter.UNREVIEWED)
        assert walk.position_text() == "– of 4 unreviewed"
        tile = await walk.next()
        assert tile is not None and tile.image_id == project.image_ids[0]
        await walk.set_walk(WalkFilter.NEEDS_FIX)
        assert walk.position_text() == "No images needing a fix left"
