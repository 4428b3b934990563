"""Every URL the API hands out is absolute: a client fetches it as given, and gets the image.

The app runs in uvicorn on 127.0.0.1 in the test's loop, with the options `spheroseg server serve` uses
for forwarded headers (:func:`server.cli.proxy_options`).
"""

from __future__ import annotations

import asyncio
import io
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from PIL import Image

from server.app import create_app
from server.cli import proxy_options
from server.composition import Services
from spheroseg_testing import free_port, serve
from tests.server.conftest import Api, png_bytes

pytestmark = pytest.mark.anyio

URLS = """query($i: Int!) { image(id: $i) { thumbnailUrl originalUrl previewUrl(width: 64, format: PNG) } }"""
EXPORT = """mutation($p: Int!) { exportProject(projectId: $p, formats: [CSV]) {
  ... on ExportStarted { job { id } } } }"""
JOB = "query($j: Int!) { job(id: $j) { status downloadUrl } }"


def _served(services: Services) -> AbstractAsyncContextManager[str]:
    """The app over ``services`` in uvicorn as ``serve`` runs it (its proxy options); its URL."""
    return serve(create_app(services=services), free_port(), **proxy_options(services.settings))


async def _world(api: Api) -> tuple[str, int, int, bytes]:
    token = await api.user("owner")
    project = await api.project(token)
    original = png_bytes(96, 64, seed=3)
    image_id = (await api.upload(token, project, [("a.png", original)])).json()["files"][0]["imageId"]
    return token, project, image_id, original


async def _ask(
    url: str, token: str, query: str, headers: dict[str, str] | None = None, **variables: Any
) -> Any:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{url}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {token}", **(headers or {})},
        )
    body = response.json()
    assert not body.get("errors"), body
    return body["data"]


async def _export_url(url: str, token: str, project: int, headers: dict[str, str] | None = None) -> str:
    """The download link of a finished export of ``project``, as the server at ``url`` hands it out."""
    job_id = (await _ask(url, token, EXPORT, headers, p=project))["exportProject"]["job"]["id"]
    async with asyncio.timeout(30):
        while (job := (await _ask(url, token, JOB, headers, j=job_id))["job"])["status"] != "DONE":
            assert job["status"] in ("QUEUED", "RUNNING"), job
            await asyncio.sleep(0.05)
    link: str = job["downloadUrl"]
    return link


async def test_urls_fetched_as_given_return_the_image(api: Api) -> None:
    token, project, image_id, original = await _world(api)
    async with _served(api.services) as url:
        urls = (await _ask(url, token, URLS, i=image_id))["image"]
        export = await _export_url(url, token, project)
        async with httpx.AsyncClient(timeout=30) as client:  # a client that knows no base URL
            for name in ("thumbnailUrl", "previewUrl", "originalUrl"):
                assert urls[name].startswith(f"{url}/img/{project}/{image_id}/"), urls[name]
                response = await client.get(urls[name])
                assert response.status_code == 200, (name, response.text)
                assert Image.open(io.BytesIO(response.content)).size == (96, 64) or name == "thumbnailUrl"
            assert (await client.get(urls["originalUrl"])).content == original
            assert (await client.get(export)).status_code == 200


async def test_the_public_url_comes_first_and_a_trusted_proxy_gives_its_scheme_and_host(api: Api) -> None:
    token, project, image_id, _ = await _world(api)
    settings = api.services.settings
    settings.forwarded_allow_ips = "127.0.0.1"  # a proxy on this machine, as nginx in front of `serve`
    behind_proxy = {"Host": "seg.lab.example", "X-Forwarded-Proto": "https"}
    async with _served(api.services) as url:
        urls = (await _ask(url, token, URLS, behind_proxy, i=image_id))["image"]
        assert all(u.startswith("https://seg.lab.example/img/") for u in urls.values()), urls
        export = await _export_url(url, token, project, behind_proxy)
        assert export.startswith("https://seg.lab.example/")
        settings.forwarded_allow_ips = ""  # a proxy not trusted: its X-Forwarded-Proto is ignored
    async with _served(api.services) as url:
        untrusted = (await _ask(url, token, URLS, behind_proxy, i=image_id))["image"]
        assert untrusted["originalUrl"].startswith("http://seg.lab.example/img/")
        settings.public_url = url + "/"  # configured: whatever the request says
        configured = (await _ask(url, token, URLS, behind_proxy, i=image_id))["image"]
        assert configured["originalUrl"].startswith(f"{url}/img/{project}/")
        async with httpx.AsyncClient(timeout=30) as client:
            assert (await client.get(configured["originalUrl"])).status_code == 200
