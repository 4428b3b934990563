"""Sessions kept between runs of the workbench: per server, owner-only on disk, never an expired token,
survives a damaged file; and renewed against the real app before they run out."""

from __future__ import annotations

import datetime as dt
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

from server.app import create_app
from tests.server.conftest import Api
from workbench.api import LabClient
from workbench.sessions import KEYRING_SERVICE, SavedSessions, renew_if_due, usable_keyring

pytestmark = pytest.mark.anyio

LATER = (dt.datetime.now(dt.UTC) + dt.timedelta(days=10)).isoformat()
EARLIER = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()


def test_sessions_are_kept_per_server_readable_by_their_owner_only(tmp_path: Path) -> None:
    kept = SavedSessions(tmp_path / "config")
    kept.save("https://seg.lab.example/", "ana", "token-a", LATER)
    kept.save("http://127.0.0.1:8000", "ana", "token-b", EARLIER)

    again = SavedSessions(tmp_path / "config")  # the next run
    found = again.token_for("https://SEG.lab.example")
    assert found is not None and (found.username, found.token) == ("ana", "token-a")
    assert again.token_for("http://127.0.0.1:8000") is None  # expired: sign in again
    assert [s.url for s in again.recent()] == ["http://127.0.0.1:8000", "https://seg.lab.example"]
    assert stat.S_IMODE(again.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(again.path.parent.stat().st_mode) == 0o700

    again.forget("https://seg.lab.example")
    assert again.token_for("https://seg.lab.example") is None
    assert "token-a" not in again.path.read_text() and len(again.recent()) == 2


def test_a_damaged_file_means_signing_in_again_not_a_crash(tmp_path: Path) -> None:
    kept = SavedSessions(tmp_path)
    kept.path.write_text('{"sessions": [{"url": "x"}, 7]')
    assert kept.recent() == [] and kept.token_for("x") is None
    kept.save("https://seg.lab.example", "ana", "t", LATER)
    assert kept.token_for("https://seg.lab.example") is not None


async def test_a_session_is_renewed_only_when_little_is_left(api: Api) -> None:
    token = await api.user("ana")
    transport = httpx.ASGITransport(app=create_app(services=api.services))
    async with LabClient("http://testserver", token=token, transport=transport) as client:
        far = await renew_if_due(client, LATER)
        soon = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
        renewed = await renew_if_due(client, soon)
        me = await client.call("Me")  # the same token goes on working

    assert far == LATER  # nothing asked
    lifetime = dt.datetime.fromisoformat(renewed) - dt.datetime.now(dt.UTC)
    assert lifetime > dt.timedelta(days=13)  # a full session lifetime from now (14 days)
    assert me["me"]["username"] == "ana"


class _MemoryKeyring(KeyringBackend):
    """A working keyring held in memory: a real backend, as GNOME Keyring or the macOS Keychain would be."""

    priority = 1.0  # type: ignore[assignment]  # keyring declares it as a classproperty

    def __init__(self, entries: dict[tuple[str, str], str]) -> None:
        # an argument keyring's own discovery cannot give (it builds each backend class with none), so
        # this backend is used only where a test sets it
        super().__init__()
        self.entries = entries

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


@pytest.fixture
def memory_keyring() -> Iterator[_MemoryKeyring]:
    before = keyring.get_keyring()
    backend = _MemoryKeyring({})
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(before)


def test_without_a_working_keyring_the_token_stays_in_the_owner_only_file(tmp_path: Path) -> None:
    assert usable_keyring() is None  # this machine has none: keyring's "fail" backend
    kept = SavedSessions(tmp_path)
    kept.save("https://seg.lab.example", "ana", "token-a", LATER)
    assert "token-a" in kept.path.read_text()
    found = SavedSessions(tmp_path).token_for("https://seg.lab.example")
    assert found is not None and found.token == "token-a"


def test_with_a_keyring_the_file_keeps_no_token(tmp_path: Path, memory_keyring: _MemoryKeyring) -> None:
    kept = SavedSessions(tmp_path)
    kept.save("https://Seg.lab.example/", "ana", "token-a", LATER)

    assert "token-a" not in kept.path.read_text()
    assert memory_keyring.entries == {(KEYRING_SERVICE, "https://seg.lab.example"): "token-a"}
    found = SavedSessions(tmp_path).token_for("https://seg.lab.example")
    assert found is not None and (found.username, found.token) == ("ana", "token-a")
    assert [s.username for s in kept.recent()] == ["ana"]

    kept.forget("https://seg.lab.example")  # signing out removes it from the keyring too
    assert memory_keyring.entries == {} and kept.token_for("https://seg.lab.example") is None
    assert [s.username for s in kept.recent()] == ["ana"]
