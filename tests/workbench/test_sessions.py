"""Sessions kept between runs of the workbench: per server, owner-only on disk, never an expired token,
survives a damaged file; and renewed against the real app before they run out."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import httpx
import pytest

from server.app import create_app
from tests.server.conftest import Api
from workbench.api import LabClient
from workbench.sessions import SavedSessions, renew_if_due

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
