"""Purging a CDN: CloudFront invalidations (boto3), Cloudflare and Fastly purge APIs (httpx), an nginx cache.

A :class:`PurgeRequest` holds cache tags (``project-<id>``, ``image-<id>``: the origin sends them as
``Cache-Tag`` and ``Surrogate-Key``) and paths (one ending in ``/`` is a prefix). Each provider purges
them its own way, in batches within its documented limits, and reports what it sent and every error;
nothing is swallowed, because a purge that silently failed leaves a deleted image on the edge.

==========  =====================================  ==========================================
provider    tags                                   paths
==========  =====================================  ==========================================
cloudfront  ``project-<id>`` as ``/img/<id>/*``     invalidations, 3000 paths each (prefix → ``*``)
cloudflare  ``{"tags": […]}``, 100 per call         ``{"prefixes"}`` / ``{"files"}``, 100 per call
fastly      ``Surrogate-Key`` batch, 256 per call   one ``POST /purge/<host><path>`` per exact path
nginx       ``Cache-Tag`` in the cached headers     the cache key (``$request_uri``), prefix or exact
==========  =====================================  ==========================================

``by_tag`` says which form a provider prefers when the server purges an image or a project itself.
"""

from __future__ import annotations

import asyncio
import functools
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx

__all__ = [
    "CloudFrontPurger",
    "CloudflarePurger",
    "FastlyPurger",
    "NginxCachePurger",
    "NullPurger",
    "PurgeReport",
    "PurgeRequest",
    "Purger",
    "batches",
]

T = TypeVar("T")
_PROJECT_TAG = re.compile(r"^project-(\d+)$")
_IMAGE_PREFIX = re.compile(r"^/img/(\d+)/(?:(\d+)/)?$")
_TIMEOUT = httpx.Timeout(15.0, connect=5.0)


@dataclass(frozen=True)
class PurgeRequest:
    tags: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.tags or self.paths)


@dataclass
class PurgeReport:
    provider: str
    requests: int = 0
    tags: int = 0
    paths: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class Purger(Protocol):
    name: str
    by_tag: bool

    async def purge(self, request: PurgeRequest) -> PurgeReport: ...


def batches(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class NullPurger:
    """No CDN in front (or one without a purge API): nothing to purge, nothing sent."""

    name = "none"
    by_tag = True

    async def purge(self, request: PurgeRequest) -> PurgeReport:
        return PurgeReport(self.name)


class CloudFrontPurger:
    name = "cloudfront"
    by_tag = False
    MAX_PATHS = 3000

    def __init__(self, distribution_id: str, client: Any, batch: int = MAX_PATHS) -> None:
        self.distribution_id = distribution_id
        self.client = client
        self.batch = min(batch, self.MAX_PATHS)

    async def purge(self, request: PurgeRequest) -> PurgeReport:
        report = PurgeReport(self.name)
        paths = [p + "*" if p.endswith("/") else p for p in request.paths]
        for tag in request.tags:
            found = _PROJECT_TAG.match(tag)
            if found:
                paths.append(f"/img/{found[1]}/*")
            else:
                report.errors.append(f"CloudFront purges by path only; tag {tag!r} has no path")
        for chunk in batches(sorted(set(paths)), self.batch):
            call = functools.partial(
                self.client.create_invalidation,
                DistributionId=self.distribution_id,
                InvalidationBatch={
                    "Paths": {"Quantity": len(chunk), "Items": chunk},
                    "CallerReference": f"spheroseg-{uuid.uuid4().hex}",
                },
            )
            report.requests += 1
            try:
                await asyncio.to_thread(call)
                report.paths += len(chunk)
            except Exception as error:  # botocore's ClientError and connection errors alike
                report.errors.append(f"CloudFront refused an invalidation of {len(chunk)} paths: {error}")
        return report


class _HttpPurger:
    name = "http"
    by_tag = True

    def __init__(
        self, api_url: str, headers: dict[str, str], transport: httpx.AsyncBaseTransport | None
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.headers = headers
        self.transport = transport

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(headers=self.headers, timeout=_TIMEOUT, transport=self.transport)

    async def _send(
        self, client: httpx.AsyncClient, report: PurgeReport, what: str, **kwargs: Any
    ) -> httpx.Response | None:
        report.requests += 1
        try:
            response = await client.post(**kwargs)
        except httpx.HTTPError as error:
            report.errors.append(f"{self.name}: purging {what} failed: {error!r}")
            return None
        if response.status_code >= 400:
            report.errors.append(
                f"{self.name}: purging {what} was refused ({response.status_code}): {response.text[:300]}"
            )
            return None
        return response


class CloudflarePurger(_HttpPurger):
    name = "cloudflare"

    def __init__(
        self,
        api_url: str,
        zone_id: str,
        token: str,
        site_url: str,
        batch: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(api_url, {"Authorization": f"Bearer {token}"}, transport)
        self.zone_id = zone_id
        self.batch = batch
        parts = urlsplit(site_url)
        self.site_base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self.host_prefix = parts.netloc + parts.path.rstrip("/")

    async def purge(self, request: PurgeRequest) -> PurgeReport:
        report = PurgeReport(self.name)
        prefixes = [self.host_prefix + p for p in request.paths if p.endswith("/")]
        files = [self.site_base + p for p in request.paths if not p.endswith("/")]
        url = f"{self.api_url}/zones/{self.zone_id}/purge_cache"
        async with self.client() as client:
            for kind, items in (("tags", list(request.tags)), ("prefixes", prefixes), ("files", files)):
                for chunk in batches(items, self.batch):
                    what = f"{len(chunk)} {kind}"
                    response = await self._send(client, report, what, url=url, json={kind: chunk})
                    if response is None:
                        continue
                    body = _json(response)
                    if not body.get("success", False):
                        report.errors.append(f"cloudflare: purging {what} failed: {body.get('errors')}")
                    elif kind == "tags":
                        report.tags += len(chunk)
                    else:
                        report.paths += len(chunk)
        return report


class FastlyPurger(_HttpPurger):
    name = "fastly"
    MAX_KEYS = 256

    def __init__(
        self,
        api_url: str,
        service_id: str,
        token: str,
        site_url: str,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(api_url, {"Fastly-Key": token, "Accept": "application/json"}, transport)
        self.service_id = service_id
        parts = urlsplit(site_url)
        self.host_prefix = parts.netloc + parts.path.rstrip("/")

    async def purge(self, request: PurgeRequest) -> PurgeReport:
        report = PurgeReport(self.name)
        tags = list(request.tags)
        exact = []
        for path in request.paths:
            found = _IMAGE_PREFIX.match(path)
            if found:
                tags.append(f"image-{found[2]}" if found[2] else f"project-{found[1]}")
            elif path.endswith("/"):
                report.errors.append(f"fastly cannot purge the prefix {path!r}; purge a tag or exact paths")
            else:
                exact.append(path)
        async with self.client() as client:
            for chunk in batches(sorted(set(tags)), self.MAX_KEYS):
                response = await self._send(
                    client,
                    report,
                    f"{len(chunk)} surrogate keys",
                    url=f"{self.api_url}/service/{self.service_id}/purge",
                    headers={"Surrogate-Key": " ".join(chunk)},
                )
                if response is not None:
                    report.tags += len(chunk)
            for path in exact:
                response = await self._send(
                    client, report, path, url=f"{self.api_url}/purge/{self.host_prefix}{path}"
                )
                if response is not None:
                    report.paths += 1
        return report


class NginxCachePurger:
    """Deletes entries of an nginx ``proxy_cache`` on this machine (open-source nginx has no purge API).

    Each cache file starts with a binary header, then ``KEY: <cache key>`` and the upstream's response
    headers; an entry goes when its key (``proxy_cache_key $request_uri``) matches a path or prefix, or its
    ``Cache-Tag`` holds a tag. nginx treats a deleted file as a miss and fetches the URL again.
    """

    name = "nginx"
    by_tag = True
    HEAD_BYTES = 16 * 1024

    def __init__(self, cache_path: str | Path) -> None:
        self.cache_path = Path(cache_path)

    async def purge(self, request: PurgeRequest) -> PurgeReport:
        return await asyncio.to_thread(self._purge, request)

    def _purge(self, request: PurgeRequest) -> PurgeReport:
        report = PurgeReport(self.name, requests=1)
        wanted_tags = set(request.tags)
        prefixes = tuple(p for p in request.paths if p.endswith("/"))
        exact = {p for p in request.paths if not p.endswith("/")}
        if not self.cache_path.is_dir():
            report.errors.append(f"nginx cache folder {self.cache_path} does not exist")
            return report
        for entry in self.cache_path.rglob("*"):
            if not entry.is_file() or entry.name.startswith("."):
                continue
            try:
                with entry.open("rb") as handle:
                    head = handle.read(self.HEAD_BYTES)
                key, tags = _cache_entry(head)
                if key is None:
                    continue
                path = key.split("?", 1)[0]
                if path in exact or path.startswith(prefixes) or tags & wanted_tags:
                    entry.unlink(missing_ok=True)
                    report.paths += 1
            except OSError as error:
                report.errors.append(f"nginx cache entry {entry.name}: {error.strerror or error}")
        report.tags = len(wanted_tags)
        return report


def _cache_entry(head: bytes) -> tuple[str | None, set[str]]:
    start = head.find(b"\nKEY: ")
    if start < 0:
        return None, set()
    end = head.find(b"\n", start + 6)
    key = head[start + 6 : end].decode("latin-1")
    tags: set[str] = set()
    headers_end = head.find(b"\r\n\r\n", end)
    for line in head[end:headers_end].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"cache-tag":
            tags.update(t.strip() for t in value.decode("latin-1").split(",") if t.strip())
    return key, tags


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"success": False, "errors": [response.text[:300]]}
    return body if isinstance(body, dict) else {"success": False, "errors": [body]}
