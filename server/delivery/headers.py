"""HTTP caching headers of the image endpoint and the API: Cache-Control by class, ETags, tags, ranges.

===============================  ==================================================================
what                             Cache-Control
===============================  ==================================================================
content-addressed (``/img/…``)   ``public, max-age=31536000, immutable``: the path names the bytes
signed, not content-addressed    ``private, max-age=<seconds until the signature expires>``
API responses, errors            ``private, no-store``
===============================  ==================================================================
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs

__all__ = [
    "IMMUTABLE",
    "NO_STORE",
    "ByteRange",
    "CacheControlMiddleware",
    "bounded",
    "etag_matches",
    "parse_range",
    "tag_headers",
]

IMMUTABLE = "public, max-age=31536000, immutable"
NO_STORE = "private, no-store"


def bounded(expires: int, now: float | None = None) -> str:
    """For a signed response whose bytes may change: cached no longer than its signature is valid."""
    left = max(0, int(expires - (time.time() if now is None else now)))
    return f"private, max-age={left}"


def tag_headers(project_id: int, image_id: int) -> dict[str, str]:
    """Purge-by-tag headers: Cloudflare's ``Cache-Tag`` (commas) and Fastly's ``Surrogate-Key`` (spaces)."""
    tags = [f"project-{project_id}", f"image-{image_id}"]
    return {"Cache-Tag": ",".join(tags), "Surrogate-Key": " ".join(tags)}


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """``If-None-Match`` uses the weak comparison (RFC 9110 13.1.2): ``W/"x"`` matches ``"x"``."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | Literal[False] | None:
    """One range of ``bytes=a-b``, ``bytes=a-`` or ``bytes=-n``.

    ``None``: no usable Range header (serve everything; several ranges are answered whole too, as RFC 9110
    allows); ``False``: a range that cannot be satisfied (416).
    """
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[len("bytes=") :].strip().partition("-")
    try:
        if first == "":
            suffix = int(last)
            if suffix <= 0:
                return False
            return ByteRange(max(0, size - suffix), size - 1) if size else False
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start > end or start >= size:
        return False
    return ByteRange(start, min(end, size - 1))


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class CacheControlMiddleware:
    """Gives every HTTP response without a Cache-Control one by class (see the module's table).

    API answers hold private data and change at any time, so nothing may keep them; a signed export
    download may be kept by the user's own cache until its signature expires.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        value = NO_STORE
        if scope.get("path", "").startswith("/api/blobs/"):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            try:
                value = bounded(int(query.get("expires", ["0"])[0]))
            except ValueError:
                value = NO_STORE

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append((b"cache-control", value.encode()))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_header)
