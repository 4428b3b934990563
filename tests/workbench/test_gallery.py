"""The gallery's tiles against the real app: loaded a page at a time as they come into view, each page once,
kept right by the events' image ids, started over when the list itself changes, caught up after a lost
connection."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from server.app import create_app
from tests.server.api.test_projects import SAVE, SQUARE
from tests.server.conftest import Api, png_bytes
from workbench.api import LabClient
from workbench.gallery import Gallery

pytestmark = pytest.mark.anyio

REVIEW = """mutation($i: Int!) { setReview(images: [{imageId: $i, version: 1}], status: ACCEPTED) {
  __typename } }"""
RENAME = "mutation($i: Int!, $n: String!) { updateImage(id: $i, name: $n) { __typename } }"
DELETE = "mutation($i: Int!) { deleteImages(imageIds: [$i]) { __typename } }"


class CountingClient(LabClient):
    """The real client, counting the pages it asks for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pages: list[str | None] = []
        self.directions: list[str] = []  # each page asked for: "first", "after", "last" or "before"

    async def call(self, name: str, /, **variables: Any) -> dict[str, Any]:
        if name == "GalleryPage":
            self.pages.append(variables.get("after"))
            named = [key for key in ("after", "before", "last") if variables.get(key)]
            self.directions.append(named[0] if named else "first")
        elif name == "GalleryCursor":  # a hop towards a far page: only where it ends, no images
            self.directions.append("hop")
        return await super().call(name, **variables)


async def _project(api: Api, count: int) -> tuple[str, int, dict[str, int]]:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    files = [(f"well{k:03d}.png", png_bytes(seed=k)) for k in range(count)]
    uploaded = (await api.upload(owner, project_id, files)).json()["files"]
    return owner, project_id, {f["name"]: f["imageId"] for f in uploaded}


def _client(api: Api, token: str) -> CountingClient:
    transport = httpx.ASGITransport(app=create_app(services=api.services))
    return CountingClient("http://testserver", token=token, transport=transport)


async def test_pages_load_as_they_come_into_view_each_once(api: Api) -> None:
    owner, project_id, _ = await _project(api, 25)
    changes: list[range | None] = []
    async with _client(api, owner) as client:
        gallery = Gallery(client, project_id, page_size=10, on_change=changes.append)
        await gallery.ensure(range(0, 10))
        assert (len(gallery), len(client.pages)) == (25, 1)
        assert gallery.tile(9) is not None and gallery.tile(10) is None  # a placeholder until seen

        await asyncio.gather(gallery.ensure(range(15, 25)), gallery.ensure(range(20, 25)))

    assert len(client.pages) == 3  # pages 2 and 3, each once, the second after the first
    assert [gallery.tile(k).name for k in (0, 12, 24)] == ["well000.png", "well012.png", "well024.png"]  # type: ignore[union-attr]
    assert changes == [range(0, 10), range(10, 20), range(20, 25)]
    assert gallery.index_of(gallery.tile(24).image_id) == 24  # type: ignore[union-attr]


async def test_a_jump_to_the_end_reads_the_last_pages_not_every_page_before_them(api: Api) -> None:
    owner, project_id, _ = await _project(api, 205)
    async with _client(api, owner) as client:
        gallery = Gallery(client, project_id, page_size=10)
        await gallery.ensure(range(0, 10))
        await gallery.ensure(range(190, 205))  # End key: the last screen, across the last two pages
        assert client.directions == ["first", "last", "before"]  # not the 19 pages in between
        assert [gallery.tile(k).name for k in (190, 199, 200, 204)] == [  # type: ignore[union-attr]
            "well190.png",
            "well199.png",
            "well200.png",
            "well204.png",
        ]
        assert gallery.tile(189) is None and gallery.tile(10) is None

        await gallery.ensure(range(175, 190))  # scrolling up from the end goes on backwards
        assert client.directions[3:] == ["before", "before"]
        await gallery.ensure(range(10, 20))  # and down from the top forwards, as before
        assert client.directions[5:] == ["after"]
    assert [gallery.tile(k).name for k in (170, 189, 19)] == ["well170.png", "well189.png", "well019.png"]  # type: ignore[union-attr]
    assert sum(gallery.tile(k) is not None for k in range(205)) == 55  # six pages, none twice


async def test_a_jump_to_the_middle_hops_to_its_page_without_reading_the_pages_between(api: Api) -> None:
    owner, project_id, _ = await _project(api, 205)
    async with _client(api, owner) as client:
        gallery = Gallery(client, project_id, page_size=10)
        await gallery.ensure(range(0, 10))
        await gallery.ensure(range(100, 110))  # the scroll bar dragged to the middle
        assert client.directions == ["first", "hop", "after"]
        await gallery.ensure(range(170, 180))  # then nearer the end than the middle: a hop from the tail
        assert client.directions[3:] == ["hop", "before"]
    assert [gallery.tile(k).name for k in (100, 109, 170, 179)] == [  # type: ignore[union-attr]
        "well100.png",
        "well109.png",
        "well170.png",
        "well179.png",
    ]
    assert gallery.tile(99) is None and gallery.tile(110) is None and gallery.tile(169) is None


async def test_an_event_updates_its_tiles_in_place_and_a_moved_image_starts_over(api: Api) -> None:
    owner, project_id, ids = await _project(api, 6)
    image = ids["well002.png"]
    await api.ok(SAVE, owner, id=image, base=0, sph=[{"exterior": SQUARE}])
    async with _client(api, owner) as client:
        changes: list[range | None] = []
        gallery = Gallery(client, project_id, page_size=4, on_change=changes.append)
        await gallery.ensure(range(0, 6))
        changes.clear()

        await api.ok(REVIEW, owner, i=image)
        await gallery.refresh([image])
        assert gallery.tile(2).review_status == "ACCEPTED" and changes == [range(2, 3)]  # type: ignore[union-attr]

        await api.ok(RENAME, owner, i=image, n="zz-last.png")  # sorted by name: it moves to the end
        await gallery.refresh([image])
        assert changes[-1] is None and gallery.tile(0) is None  # started over
        await gallery.ensure(range(0, 6))
        assert [gallery.tile(k).name for k in range(6)][-2:] == ["well005.png", "zz-last.png"]  # type: ignore[union-attr]

        await api.ok(DELETE, owner, i=ids["well000.png"])
        await gallery.refresh([ids["well000.png"]])
        await gallery.ensure(range(0, 6))
        assert len(gallery) == 5 and gallery.tile(0).name == "well001.png"  # type: ignore[union-attr]


async def test_catching_up_reads_what_changed_while_the_connection_was_lost(api: Api) -> None:
    owner, project_id, ids = await _project(api, 3)
    image = ids["well001.png"]
    async with _client(api, owner) as client:
        gallery = Gallery(client, project_id)
        await gallery.ensure(range(0, 3))
        assert gallery.tile(1).segmentation_status == "NONE"  # type: ignore[union-attr]

        await api.ok(SAVE, owner, id=image, base=0, sph=[{"exterior": SQUARE}])  # no event reached us
        await gallery.catch_up()

    assert gallery.tile(1).segmentation_status == "DONE"  # type: ignore[union-attr]
    assert gallery.tile(0).segmentation_status == "NONE"  # type: ignore[union-attr]


async def test_images_imported_by_someone_else_come_in_when_their_event_names_them(api: Api) -> None:
    owner, project_id, _ = await _project(api, 1)
    async with _client(api, owner) as client:
        changes: list[range | None] = []
        gallery = Gallery(client, project_id, on_change=changes.append)
        await gallery.ensure(range(0, 10))
        assert len(gallery) == 1

        added = (await api.upload(owner, project_id, [("xlate.png", png_bytes(seed=9))])).json()["files"]
        await gallery.refresh([added[0]["imageId"]])  # as the image_status event (data.added) names it
        assert changes[-1] is None  # started over: the count is read again
        await gallery.ensure(range(0, 10))

    assert len(gallery) == 2 and gallery.tile(1).name == "xlate.png"  # type: ignore[union-attr]
