"""Signing in once: the lab servers a person uses, their session tokens kept safely, renewed in time.

:class:`SavedSessions` remembers, per server URL, who signed in, their token and when it expires, newest
first (the start screen lists them as "recent servers"). The file is written whole to a temporary file
and moved into place, readable by its owner only (0600) in a folder only they can enter (0700), so a
crash never leaves half a file and no other user of the machine reads a token. A token that has expired
is never handed out. Where the operating system has a working keyring (the ``keyring`` package finds
one: GNOME Keyring, KWallet, macOS Keychain, Windows Credential Locker), the token goes there and the
file keeps only the server, the user name and the expiry; where none works (a headless machine: its
backend is keyring's "fail" one), the token stays in the owner-only file.

:func:`renew_if_due` renews a session when less than ``margin`` of it is left, so a workbench left open
for days keeps working; the server keeps the token and moves its expiry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import logging
import os
import tempfile
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.api import LabClient

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

__all__ = [
    "KEYRING_SERVICE",
    "RENEW_MARGIN",
    "SavedSession",
    "SavedSessions",
    "renew_if_due",
    "usable_keyring",
]

RENEW_MARGIN = dt.timedelta(days=2)
"""Renew a session once less than this is left of it (sessions last 14 days by default)."""
FILE_NAME = "sessions.json"
KEYRING_SERVICE = "spheroseg-workbench"
"""The keyring entry of a session: this service, the server's URL as the "user name"."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SavedSession:
    url: str
    username: str
    token: str
    expires_at: str
    """ISO 8601 with a zone, as the server gives it."""
    used_at: str
    in_keyring: bool = False
    """The token is kept in the OS keyring; the file holds an empty one."""

    def expired(self, now: dt.datetime | None = None) -> bool:
        return dt.datetime.fromisoformat(self.expires_at) <= (now or dt.datetime.now(dt.UTC))


class SavedSessions:
    """The sessions kept in ``folder`` (the workbench's configuration folder)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / FILE_NAME

    def recent(self) -> list[SavedSession]:
        """Every server signed into, newest first (expired ones too: the user name is still worth showing).
        Tokens kept in the keyring are not read here (it may ask the user to unlock it)."""
        return sorted(self._read().values(), key=lambda s: s.used_at, reverse=True)

    def token_for(self, url: str) -> SavedSession | None:
        """The session kept for ``url`` while it has not expired (and its user has not signed out)."""
        found = self._read().get(_key(url))
        if found is None or found.expired():
            return None
        if found.in_keyring:
            token = _keyring_get(found.url)
            found = replace(found, token=token or "")
        return found if found.token else None

    def save(self, url: str, username: str, token: str, expires_at: str) -> None:
        sessions = self._read()
        used_at = dt.datetime.now(dt.UTC).isoformat()
        in_keyring = _keyring_set(_key(url), token)
        kept = "" if in_keyring else token
        sessions[_key(url)] = SavedSession(_key(url), username, kept, expires_at, used_at, in_keyring)
        self._write(sessions)

    def forget(self, url: str) -> None:
        """Drop the token of ``url`` (sign out), keeping the server and user name among the recent ones."""
        sessions = self._read()
        if (found := sessions.get(_key(url))) is not None:
            if found.in_keyring:
                _keyring_delete(found.url)
            sessions[_key(url)] = replace(found, token="", in_keyring=False)
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


def usable_keyring() -> KeyringBackend | None:
    """The OS keyring when one works here; ``None`` on a machine without one (keyring's "fail" backend,
    or a backend that declares itself unusable with a priority of 0 or less) or without the package."""
    try:
        import keyring
        from keyring.backends import fail
    except ImportError:
        return None
    _detect_keyring_once()
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring) or backend.priority <= 0:
        return None
    return backend


@functools.cache
def _detect_keyring_once() -> None:
    """Let keyring detect its backend once, in a thread of its own: the detection keeps an exception it
    met (with the stack that asked, frames and locals) for the life of the process, so asked from a
    sign-in it would keep that workspace, and the window listening to it, alive after both are closed."""
    import keyring

    thread = threading.Thread(target=keyring.get_keyring, name="keyring detection")
    thread.start()
    thread.join()


def _keyring_set(key: str, token: str) -> bool:
    """Keep ``token`` in the keyring; ``False`` when there is none or it refused (then the file keeps it)."""
    backend = usable_keyring()
    if backend is None or not token:
        return False
    try:
        backend.set_password(KEYRING_SERVICE, key, token)
    except Exception:  # a locked or broken keyring: the owner-only file is the fallback, not a failure
        logger.warning("the OS keyring refused the session token; keeping it in the sessions file")
        return False
    return True


def _keyring_get(key: str) -> str | None:
    backend = usable_keyring()
    if backend is None:
        return None
    try:
        return backend.get_password(KEYRING_SERVICE, key)
    except Exception:  # unreadable now (locked, gone): the user signs in again
        logger.warning("could not read the session token from the OS keyring")
        return None


def _keyring_delete(key: str) -> None:
    backend = usable_keyring()
    if backend is None:
        return
    try:
        backend.delete_password(KEYRING_SERVICE, key)
    except Exception:  # already gone, or the keyring is locked: nothing else to do
        logger.info("no session token to delete from the OS keyring for %s", key)
