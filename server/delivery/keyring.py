"""Rotating the image URL key, so that URLs handed out before (to a member since removed) stop working.

The base keys come from settings: ``SPHEROSEG_DELIVERY_SIGNING_KEYS``, or one key ``k0`` derived from
``SPHEROSEG_SECRET_KEY``. A rotation (``rotateSigningKey`` in GraphQL, or ``spheroseg server
rotate-signing-key``) adds a row to ``signing_keys``: an id and a random salt, never a key. From then on
URLs are signed with the key ``r<id>`` = HMAC-SHA256(current base key, ``image urls:`` + salt) and every
earlier key is *retired*: its URLs get 403, and the desktop asks the API for fresh ones. Every replica
derives the same key from the same row: it reads the newest row when it starts, every
``delivery_signing_key_refresh_seconds``, and at once when a URL names a newer key than its own, so a URL
that one replica just signed works on the others. Keys a CDN signs with itself (CloudFront key pairs,
imgproxy) are not rotated by this; a CDN may keep serving what it cached until it is purged.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db import signing
from server.delivery.signing import ImagePath, PathProblem, UrlSigner, parse_image_path

__all__ = ["Keyring", "Rotation"]

_ROTATED = re.compile(r"^r(\d{1,12})$")

LOOK_AGAIN_SECONDS = 1.0
"""Least time between two database reads caused by URLs naming a newer key (anyone can forge such a URL)."""


@dataclass(frozen=True)
class Rotation:
    id: int
    salt: str

    @property
    def key_id(self) -> str:
        return f"r{self.id}"


def _rotation_number(key_id: str) -> int | None:
    found = _ROTATED.match(key_id)
    return int(found[1]) if found else None


class Keyring:
    """The signer's keys: the base keys, or the newest rotation's key with everything before it retired."""

    def __init__(
        self,
        signer: UrlSigner,
        base: dict[str, bytes],
        base_current: str,
        sessions: async_sessionmaker[AsyncSession],
    ) -> None:
        self.signer = signer
        self._base = dict(base)
        self._base_current = base_current
        self._sessions = sessions
        self._looked_at = -LOOK_AGAIN_SECONDS
        self.rotation: Rotation | None = None

    def apply(self, rotation: Rotation | None) -> None:
        """Sign with ``rotation``'s key from now on (an older one than the one in use changes nothing)."""
        if rotation is None or (self.rotation is not None and rotation.id <= self.rotation.id):
            return
        message = b"image urls:" + rotation.salt.encode()
        key = hmac.new(self._base[self._base_current], message, hashlib.sha256).digest()
        base, newest = set(self._base), rotation.id

        def retired(key_id: str) -> bool:
            number = _rotation_number(key_id)
            return key_id in base or (number is not None and number < newest)

        self.signer.use({rotation.key_id: key}, rotation.key_id, retired)
        self.rotation = rotation

    async def refresh(self) -> None:
        """Take up the newest rotation in the database (made by another replica or the command line)."""
        async with self._sessions() as db:
            row = await signing.latest_rotation(db)
        if row is not None:
            self.apply(Rotation(row.id, row.salt))

    async def rotate(self) -> str:
        """Retire every key in use and sign with a new one; returns its id."""
        async with self._sessions.begin() as db:
            row = await signing.add_rotation(db)
            rotation = Rotation(row.id, row.salt)
        self.apply(rotation)
        return rotation.key_id

    async def verify(self, path: str) -> ImagePath | PathProblem:
        """The signer's verdict, after taking up a rotation this replica has not seen yet."""
        verified = self.signer.verify(path)
        parsed = parse_image_path(path)
        if verified is PathProblem.UNKNOWN_KEY and parsed is not None and await self._took_up(parsed.key_id):
            verified = self.signer.verify(path)
        return verified

    async def verify_message(
        self, message: str, key_id: str, expires: int, signature: str
    ) -> PathProblem | None:
        """Likewise for a link signed with :meth:`UrlSigner.sign_message`."""
        verified = self.signer.verify_message(message, key_id, expires, signature)
        if verified is PathProblem.UNKNOWN_KEY and await self._took_up(key_id):
            verified = self.signer.verify_message(message, key_id, expires, signature)
        return verified

    async def _took_up(self, key_id: str) -> bool:
        """Whether ``key_id`` names a newer rotation and the database was read for it (at most once a
        :data:`LOOK_AGAIN_SECONDS`)."""
        number = _rotation_number(key_id)
        now = time.monotonic()
        newer = number is not None and number > (self.rotation.id if self.rotation else 0)
        if not newer or now - self._looked_at < LOOK_AGAIN_SECONDS:
            return False
        self._looked_at = now
        await self.refresh()
        return True
