"""Signing in once: the lab servers a person uses, their session tokens kept safely, renewed in time.

:class:`SavedSessions` remembers, per server URL, who signed in, their token and when it expires, newest
first (the start screen lists them as "recent servers"). The file is written whole to a temporary file
and moved into place, readable by its owner only (0600) in a folder only they can enter (0700), so a
crash never leaves half a file and no other user of the machine reads a token. A token that has expired
is never handed out. (An operating system keyring would keep the token out of files altogether; the
workbench does not depend on one yet.)

:func:`renew_if_due` renews a session when less than ``margin`` of it is left, so a workbench left open
for days keeps working; the server keeps the token and moves its expiry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from workbench.api import LabClient

__all__ = ["RENEW_MARGIN", "SavedSession", "SavedSessions", "renew_if_due"]

RENEW_MARGIN = dt.timedelta(days=2)
"""Renew a session once less than this is left of it (sessions last 14 days by default)."""
FILE_NAME = "sessions.json"


@dataclass(frozen=True)
class SavedSession:
    url: str
    username: str
    token: str
    expires_at: str
    """ISO 8601 with a zone, as the server gives it."""
    used_at: str

    def expired(self, now: dt.datetime | None = None) -> bool:
        return dt.datetime.fromisoformat(self.expires_at) <= (now or dt.datetime.now(dt.UTC))


class SavedSessions:
    """The sessions kept in ``folder`` (the workbench's configuration folder)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / FILE_NAME

    def recent(self) -> list[SavedSession]:
        """Every server signed into, newest first (expired ones too: the user name is still worth showing)."""
        return sorted(self._read().values(), key=lambda s: s.used_at, reverse=True)

    def token_for(self, url: str) -> SavedSession | None:
        """The session kept for ``url`` while it has not expired (and its user has not signed out)."""
        found = self._read().get(_key(url))
        return found if found is not None and found.token and not found.expired() else None

    def save(self, url: str, username: str, token: str, expires_at: str) -> None:
        sessions = self._read()
        used_at = dt.datetime.now(dt.UTC).isoformat()
        sessions[_key(url)] = SavedSession(_key(url), username, token, expires_at, used_at)
        self._write(sessions)

    def forget(self, url: str) -> None:
        """Drop the token of ``url`` (sign out), keeping the server and user name among the recent ones."""
        sessions = self._read()
        if (found := sessions.get(_key(url))) is not None:
            sessions[_key(url)] = SavedSession(found.url, found.username, "", found.expires_at, found.used_at)
            self._write(sessions)

    def _read(self) -> dict[str, SavedSession]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):  # unreadable or damaged: signing in again is the remedy
            return {}
        sessions = {}
        for entry in raw.get("sessions", []) if isinstance(raw, dict) else []:
            with contextlib.suppress(TypeError, KeyError, ValueError):
                session = SavedSession(**entry)
                dt.datetime.fromisoformat(session.expires_at)
                sessions[_key(session.url)] = session
        return sessions

    def _write(self, sessions: dict[str, SavedSession]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = json.dumps({"sessions": [asdict(s) for s in sessions.values()]}, indent=1)
        handle, temporary = tempfile.mkstemp(prefix=".sessions-", dir=self.path.parent)  # mode 0600
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            Path(temporary).replace(self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


async def renew_if_due(
    client: LabClient, expires_at: str, margin: dt.timedelta = RENEW_MARGIN, now: dt.datetime | None = None
) -> str:
    """The session's expiry, renewed first (``renewSession``) when less than ``margin`` is left."""
    if dt.datetime.fromisoformat(expires_at) - (now or dt.datetime.now(dt.UTC)) > margin:
        return expires_at
    renewed: str = (await client.call("RenewSession"))["renewSession"]["expiresAt"]
    return renewed


def _key(url: str) -> str:
    return url.rstrip("/").lower()
