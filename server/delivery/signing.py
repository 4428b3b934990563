"""Signed image paths: ``/img/<project>/<image>/<key id>/<expires>/<signature>/<sha256>/<name>``.

The signature is an HMAC-SHA256 (URL-safe base64, 128 bits) over everything else in the path, made with
the key the path names, so keys can rotate: new URLs use the current key while URLs signed with an older
key still verify until they expire or the key is removed. A path works without a bearer token, so napari,
httpx or a CDN can fetch it; only someone who was allowed to see the image was ever given it.

The project and image come first so that a purge by path prefix (``/img/12/`` for a project, ``/img/12/345/``
for an image, as a CloudFront wildcard invalidation) reaches every URL of it, whatever key signed it.

Expiry times are rounded up to a window (a day by default), so every URL handed out within a window is
the same string and a CDN's cache keeps serving it; a URL is valid for at least ``ttl`` and at most
``ttl + window`` seconds.

The same keys sign other links whose lifetime their maker picks (:meth:`UrlSigner.sign_message`: a local
blob store's download links, ``/api/blobs/<key>?kid=…&expires=…&signature=…``), so one rotation retires
them all.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

__all__ = ["ImagePath", "PathProblem", "UrlSigner", "parse_image_path"]

_PATH = re.compile(
    r"^/img/(?P<project>\d{1,12})/(?P<image>\d{1,12})/(?P<kid>[A-Za-z0-9_-]{1,32})/(?P<exp>\d{1,12})/"
    r"(?P<sig>[A-Za-z0-9_-]{22})/(?P<sha>[0-9a-f]{64})/(?P<name>[A-Za-z0-9_.-]{1,120})$"
)


class PathProblem(Enum):
    MALFORMED = "malformed"  # not an image path at all            -> 404
    UNKNOWN_KEY = "unknown key"  # signed with a key this server lacks  -> 404
    RETIRED_KEY = "retired key"  # signed with a key rotated away       -> 403
    BAD_SIGNATURE = "bad signature"  # tampered                          -> 403
    EXPIRED = "expired"  # signature fine, but too late             -> 403


@dataclass(frozen=True)
class ImagePath:
    """A verified (or to-be-signed) image path; ``name`` is ``original`` or a rendition segment."""

    project_id: int
    image_id: int
    content_hash: str
    name: str
    key_id: str = ""
    expires: int = 0
    signature: str = ""

    def signed_part(self) -> str:
        return (
            f"{self.project_id}/{self.image_id}/{self.key_id}/{self.expires}/{self.content_hash}/{self.name}"
        )

    def path(self) -> str:
        return (
            f"/img/{self.project_id}/{self.image_id}/{self.key_id}/{self.expires}/{self.signature}/"
            f"{self.content_hash}/{self.name}"
        )

    @property
    def is_original(self) -> bool:
        return self.name == "original"


def parse_image_path(path: str) -> ImagePath | None:
    found = _PATH.match(path)
    if found is None:
        return None
    return ImagePath(
        project_id=int(found["project"]),
        image_id=int(found["image"]),
        content_hash=found["sha"],
        name=found["name"],
        key_id=found["kid"],
        expires=int(found["exp"]),
        signature=found["sig"],
    )


def project_prefix(project_id: int) -> str:
    return f"/img/{project_id}/"


def image_prefix(project_id: int, image_id: int) -> str:
    return f"/img/{project_id}/{image_id}/"


class UrlSigner:
    """Signs and verifies image paths with a set of named keys, one of them current."""

    def __init__(
        self,
        keys: dict[str, bytes],
        current: str,
        ttl: int,
        window: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if current not in keys:
            raise ValueError(f"the current signing key {current!r} is not among the keys")
        if ttl <= 0 or window <= 0:
            raise ValueError("the URL lifetime and its rounding window must be positive")
        self._keys = dict(keys)
        self.current = current
        self._retired: Callable[[str], bool] = lambda key_id: False
        self.ttl = ttl
        self.window = window
        self.clock = clock

    def use(self, keys: dict[str, bytes], current: str, retired: Callable[[str], bool]) -> None:
        """Sign with ``current`` from now on and verify with ``keys`` only; URLs of a key for which
        ``retired`` says yes are refused as such (403, so a client asks for new ones)."""
        if current not in keys:
            raise ValueError(f"the current signing key {current!r} is not among the keys")
        self._keys, self.current, self._retired = dict(keys), current, retired

    def expiry(self, now: float | None = None) -> int:
        moment = self.clock() if now is None else now
        return math.ceil((moment + self.ttl) / self.window) * self.window

    def _mac(self, key_id: str, message: str) -> str:
        digest = hmac.new(self._keys[key_id], message.encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, target: ImagePath, now: float | None = None) -> ImagePath:
        unsigned = ImagePath(
            target.project_id,
            target.image_id,
            target.content_hash,
            target.name,
            self.current,
            self.expiry(now),
        )
        return ImagePath(
            unsigned.project_id,
            unsigned.image_id,
            unsigned.content_hash,
            unsigned.name,
            unsigned.key_id,
            unsigned.expires,
            self._mac(self.current, unsigned.signed_part()),
        )

    def verify(self, path: str, now: float | None = None) -> ImagePath | PathProblem:
        parsed = parse_image_path(path)
        if parsed is None:
            return PathProblem.MALFORMED
        problem = self._check(parsed.key_id, parsed.signed_part(), parsed.signature, parsed.expires, now)
        return parsed if problem is None else problem

    def sign_message(self, message: str, expires: int) -> tuple[str, str]:
        """The current key's id and its signature of ``message`` until ``expires`` (a Unix time the caller
        picks). Callers keep their messages apart from image paths (``server.storage.download_message``)."""
        return self.current, self._mac(self.current, f"{message}\n{expires}")

    def verify_message(
        self, message: str, key_id: str, expires: int, signature: str, now: float | None = None
    ) -> PathProblem | None:
        """``None`` when ``signature`` is what :meth:`sign_message` made for ``message`` and it has not
        expired; otherwise what is wrong with it."""
        return self._check(key_id, f"{message}\n{expires}", signature, expires, now)

    def _check(
        self, key_id: str, signed: str, signature: str, expires: int, now: float | None
    ) -> PathProblem | None:
        if key_id not in self._keys:
            return PathProblem.RETIRED_KEY if self._retired(key_id) else PathProblem.UNKNOWN_KEY
        if not hmac.compare_digest(self._mac(key_id, signed), signature):
            return PathProblem.BAD_SIGNATURE
        if expires < (self.clock() if now is None else now):
            return PathProblem.EXPIRED
        return None


__all__ += ["image_prefix", "project_prefix"]
