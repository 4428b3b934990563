"""A real edge: nginx caching in front of the origin, a gallery loaded three times, one image purged; a
version's outlines cached the same way."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cluster import decode_outlines
from server.app import create_app
from server.composition import Services
from tests.server.api.test_projects import SAVE
from tests.server.conftest import Api, make_settings, png_bytes
from tests.server.edge import OriginCounter, require_nginx, serve, start_nginx
from tests.server.starters import free_port

pytestmark = pytest.mark.anyio

IMAGES = 8
GALLERY = (
    """query($p: Int!) { project(id: $p) { images(first: 100) { edges { node { id thumbnailUrl } } } } }"""
)


async def _pass(client: httpx.AsyncClient, urls: list[str]) -> list[str]:
    statuses = []
    for url in urls:
        response = await client.get(url)
        assert response.status_code == 200 and response.headers["content-type"] == "image/webp"
        statuses.append(response.headers.get("x-cache-status", ""))
    return statuses


async def test_a_warm_edge_serves_the_gallery_and_a_purge_refetches_only_that_image(
    database_url: str, tmp_path: Path
) -> None:
    require_nginx()
    origin_port, edge_port = free_port(), free_port()
    edge_root = tmp_path / "edge"
    settings = make_settings(
        database_url,
        str(tmp_path / "blobs"),
        public_url=f"http://127.0.0.1:{edge_port}",
        delivery_purge="nginx",
        delivery_nginx_cache_path=str(edge_root / "cache"),
    )
    services = Services.create(settings)
    counter = OriginCounter(create_app(services=services))
    edge = None
    try:
        async with serve(counter, origin_port) as origin_url:
            edge = start_nginx(origin_port, edge_port, edge_root)
            async with httpx.AsyncClient(base_url=origin_url, timeout=30) as origin:
                api = Api(origin, services)
                admin = await api.user("admin", admin=True)
                project = await api.project(admin)
                files = [(f"well{i:02d}.png", png_bytes(96, 80, seed=i)) for i in range(IMAGES)]
                assert (await api.upload(admin, project, files)).json()["accepted"] == IMAGES
                await services.delivery.drain()
                edges = (await api.ok(GALLERY, admin, p=project))["project"]["images"]["edges"]
            urls = [e["node"]["thumbnailUrl"] for e in edges]
            assert all(url.startswith(edge.url + "/img/") for url in urls)
            async with httpx.AsyncClient(timeout=30) as viewer:
                counter.paths.clear()
                assert await _pass(viewer, urls) == ["MISS"] * IMAGES
                assert len(counter.images()) == IMAGES
                for _ in range(2):
                    assert await _pass(viewer, urls) == ["HIT"] * IMAGES
                assert len(counter.images()) == IMAGES  # the second and third passes never reached the origin

                purged_id = edges[3]["node"]["id"]
                async with httpx.AsyncClient(base_url=origin_url, timeout=30) as origin:
                    done = await Api(origin, services).ok(
                        "mutation($i: [Int!]) { purgeCdn(imageIds: $i) { __typename "
                        "... on CdnPurgeSuccess { paths } } }",
                        admin,
                        i=[purged_id],
                    )
                assert done["purgeCdn"] == {"__typename": "CdnPurgeSuccess", "paths": 1}
                counter.paths.clear()
                statuses = await _pass(viewer, urls)
                assert counter.images() == [httpx.URL(urls[3]).path]  # that image, and nothing else
                assert statuses == ["HIT"] * 3 + ["MISS"] + ["HIT"] * (IMAGES - 4)
    finally:
        if edge is not None:
            edge.stop()
        await services.close()


async def test_the_edge_caches_a_versions_outlines_like_a_rendition(
    database_url: str, tmp_path: Path
) -> None:
    require_nginx()
    origin_port, edge_port = free_port(), free_port()
    settings = make_settings(
        database_url, str(tmp_path / "blobs"), public_url=f"http://127.0.0.1:{edge_port}"
    )
    services = Services.create(settings)
    counter = OriginCounter(create_app(services=services))
    edge = None
    try:
        async with serve(counter, origin_port) as origin_url:
            edge = start_nginx(origin_port, edge_port, tmp_path / "edge")
            async with httpx.AsyncClient(base_url=origin_url, timeout=30) as origin:
                api = Api(origin, services)
                owner = await api.user("owner")
                project = await api.project(owner)
                upload = await api.upload(owner, project, [("well.png", png_bytes(96, 80))])
                image_id = upload.json()["files"][0]["imageId"]
                square = [[10, 10], [30, 10], [30, 30], [10, 30]]
                await api.ok(SAVE, owner, id=image_id, base=0, sph=[{"exterior": square}])
                query = "query($i: Int!) { image(id: $i) { segmentation { geometryUrl } } }"
                url = (await api.ok(query, owner, i=image_id))["image"]["segmentation"]["geometryUrl"]
            assert url.startswith(edge.url + "/img/") and url.endswith("/outlines-v1.bin")
            async with httpx.AsyncClient(timeout=30) as viewer:
                counter.paths.clear()
                statuses = []
                for _ in range(3):
                    response = await viewer.get(url)
                    assert response.status_code == 200
                    assert decode_outlines(response.content).metrics["area_px"].tolist() == [400.0]
                    statuses.append(response.headers.get("x-cache-status"))
                assert statuses == ["MISS", "HIT", "HIT"]
                assert counter.images() == [httpx.URL(url).path]  # the origin encoded and sent it once
    finally:
        if edge is not None:
            edge.stop()
        await services.close()
