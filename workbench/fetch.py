"""Fetching image pixels for the gallery and the viewer: httpx, an on-disk HTTP cache, retries, limits.

The server hands out signed, cacheable image URLs (thumbnails, previews, originals). This fetcher is the
one way the desktop reads them, Qt-free so it is tested without a window:

- an on-disk RFC 9111 cache (hishel's SQLite storage, as a private cache): ``immutable`` renditions are
  read from disk with no request at all, bounded ones until they expire, and an ``ETag`` revalidates
  (``If-None-Match`` → 304) instead of downloading again; the cache survives restarts;
- at most ``max_concurrency`` requests at once, so scrolling a gallery of 5,000 thumbnails neither floods
  the server nor starves the viewer;
- retries with exponential backoff and jitter on connection errors, timeouts, 429 and 5xx (honouring a
  short ``Retry-After``); never on 403/404, which retrying cannot fix: a 403 means the link expired or was
  tampered with, and the caller asks the server for fresh URLs (:class:`LinkExpiredError`);
- cancellation the asyncio way: cancelling the task that awaits :meth:`ImageFetcher.fetch_many` cancels
  every request in flight and starts no more;
- every request has a timeout.

``X-Display-Range`` (the contrast stretch the server applied) is parsed into :class:`DisplayRange`, so the
viewer can show true pixel values under an 8-bit preview. A segmentation version's outlines
(``Segmentation.geometryUrl``, immutable like a rendition) come through the same cache and retries, decoded
into arrays off the event loop by ``cluster.decode_outlines`` (:meth:`ImageFetcher.fetch_outlines`). Errors::

    FetchError             the image could not be fetched (``status`` when the server answered), or
                           outlines were not readable
    └── LinkExpiredError       403: expired or invalid signature; get new URLs from the API
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx
from hishel import AsyncSqliteStorage, CacheOptions
from hishel.httpx import AsyncCacheTransport

from cluster import Outlines, OutlinesFormatError, decode_outlines

__all__ = ["DisplayRange", "FetchError", "FetchedImage", "ImageFetcher", "LinkExpiredError"]

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 30.0


class FetchError(Exception):
    def __init__(self, url: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{message} ({url})")
        self.url = url
        self.status = status


class LinkExpiredError(FetchError):
    """The server refused the URL's signature (expired or altered): ask the API for fresh URLs."""


@dataclass(frozen=True)
class DisplayRange:
    """Display grey 0 is ``low`` and 255 is ``high`` in the original's units (linear in between)."""

    low: float
    high: float
    dtype: str

    def to_original(self, grey: float) -> float:
        return self.low + (self.high - self.low) * grey / 255.0

    @classmethod
    def parse(cls, header: str | None) -> DisplayRange | None:
        if not header:
            return None
        fields = dict(part.strip().partition("=")[::2] for part in header.split(";"))
        try:
            return cls(float(fields["low"]), float(fields["high"]), fields.get("dtype", ""))
        except (KeyError, ValueError):
            return None


@dataclass(frozen=True)
class FetchedImage:
    url: str
    content: bytes
    media_type: str
    from_cache: bool
    display_range: DisplayRange | None


class ImageFetcher:
    """Fetches image URLs through a disk cache in ``cache_dir`` (``None``: no cache, for tests)."""

    def __init__(
        self,
        cache_dir: Path | None,
        *,
        max_concurrency: int = 6,
        retries: int = 3,
        backoff: float = 0.25,
        timeout: float = 30.0,
        cache_bytes: int = 2 * 1024**3,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.max_concurrency = max(1, max_concurrency)
        self.retries = max(0, retries)
        self.backoff = backoff
        network = transport or httpx.AsyncHTTPTransport()
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            storage = AsyncSqliteStorage(
                database_path=cache_dir / "images-http-cache.sqlite", max_size=cache_bytes
            )
            network = AsyncCacheTransport(network, storage=storage, rfc=CacheOptions(shared=False))
        self._client = httpx.AsyncClient(
            transport=network,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=True,
        )
        self._slots: asyncio.Semaphore | None = None

    async def __aenter__(self) -> ImageFetcher:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    def _semaphore(self) -> asyncio.Semaphore:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_concurrency)
        return self._slots

    async def fetch(self, url: str) -> FetchedImage:
        """One image, from the disk cache when the server's headers allow, else from the network."""
        async with self._semaphore():
            for attempt in range(self.retries + 1):
                try:
                    response = await self._client.get(url)
                except httpx.TransportError as error:
                    if attempt == self.retries:
                        raise FetchError(url, f"could not reach the image server: {error!r}") from error
                    await asyncio.sleep(self._delay(attempt, None))
                    continue
                if response.status_code in RETRY_STATUSES and attempt < self.retries:
                    await asyncio.sleep(self._delay(attempt, response.headers.get("retry-after")))
                    continue
                return self._result(url, response)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def fetch_outlines(self, url: str) -> Outlines:
        """A version's outlines from its ``geometryUrl`` (disk cache first), decoded in a thread."""
        fetched = await self.fetch(url)
        try:
            return await asyncio.to_thread(decode_outlines, fetched.content)
        except OutlinesFormatError as error:
            raise FetchError(url, f"the outlines could not be read: {error}") from error

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return min(max(float(retry_after), 0.0), MAX_RETRY_AFTER)
            except ValueError:
                pass
        return self.backoff * (2.0**attempt) * random.uniform(0.5, 1.0)

    @staticmethod
    def _result(url: str, response: httpx.Response) -> FetchedImage:
        if response.status_code == 403:
            raise LinkExpiredError(url, "the image link expired or is invalid", 403)
        if response.status_code != 200:
            raise FetchError(url, f"the image server answered {response.status_code}", response.status_code)
        return FetchedImage(
            url=url,
            content=response.content,
            media_type=response.headers.get("content-type", "application/octet-stream"),
            from_cache=_from_cache(response.extensions.get("caching")),
            display_range=DisplayRange.parse(response.headers.get("x-display-range")),
        )

    async def fetch_many(
        self,
        urls: Sequence[str],
        on_result: Callable[[str, FetchedImage | FetchError], None] | None = None,
    ) -> list[FetchedImage | FetchError]:
        """Every URL (at most ``max_concurrency`` at once); a failure is returned in its place, not raised.

        ``on_result`` is called as each one finishes, so a gallery fills in as images arrive. Cancelling
        the awaiting task cancels all requests still running.
        """
        results: dict[int, FetchedImage | FetchError] = {}

        async def one(index: int, url: str) -> None:
            try:
                result: FetchedImage | FetchError = await self.fetch(url)
            except FetchError as error:
                result = error
            results[index] = result
            if on_result is not None:
                on_result(url, result)

        async with asyncio.TaskGroup() as group:
            for index, url in enumerate(urls):
                group.create_task(one(index, url))
        return [results[index] for index in range(len(urls))]


def _from_cache(caching: object) -> bool:
    """hishel's ``caching`` extension (a mapping in 2.x, an object in some versions), or none at all."""
    if isinstance(caching, dict):
        return bool(caching.get("from_cache", False))
    return bool(getattr(caching, "from_cache", False))
