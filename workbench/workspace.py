"""An open connection to a server, the same object whether the server is the user's own (offline) or a
lab's: the GraphQL client, the one WebSocket for subscriptions, the image fetcher, who is signed in.

Every view of the window takes a :class:`Workspace` and nothing else that speaks to a server, so the
workflow is the same in both modes; only the start (:func:`open_offline` or :func:`open_lab`) and the end
(:meth:`Workspace.close`, which stops an offline server this workbench started) differ.

Each workspace holds the :class:`~workbench.saving.Saver` of its server's edits, made as it opens: edits a
killed or closed workbench left in the journals are replayed at once, and again whenever the live channel
is connected after the server was away.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from workbench.api import LabClient, LiveChannel, SignedIn, StateChange
from workbench.fetch import ImageFetcher
from workbench.offline import OfflineServer, OfflineStart
from workbench.saving import Saver, open_saver
from workbench.sessions import SavedSessions, renew_if_due

__all__ = ["Mode", "Workspace", "open_lab", "open_offline", "resume_lab"]


class Mode(enum.Enum):
    OFFLINE = "offline"
    LAB = "lab"


@dataclass
class Workspace:
    mode: Mode
    url: str
    user: SignedIn
    client: LabClient
    live: LiveChannel
    fetcher: ImageFetcher
    offline: OfflineServer | None = None
    """The offline server, when this workspace is on the user's own machine."""
    started: OfflineStart | None = None
    saver: Saver | None = None
    """Saves the review canvas's edits (journalled first); set once the workspace is open."""

    @property
    def is_admin(self) -> bool:
        return self.user.role == "ADMIN"

    async def close(self, stop_server: bool = True) -> None:
        """Close the connections; stop the offline server too when this workbench started it and
        ``stop_server`` (the window asks first while a job is running). Unsent edits stay in the journal
        for the next start."""
        if self.saver is not None:
            with contextlib.suppress(Exception):
                await self.saver.close()
        with contextlib.suppress(Exception):
            await self.live.__aexit__(None, None, None)
        with contextlib.suppress(Exception):
            await self.fetcher.aclose()
        with contextlib.suppress(Exception):
            await self.client.__aexit__(None, None, None)
        if stop_server and self.offline is not None and self.offline.owned:
            await self.offline.stop()


async def _opened(
    mode: Mode,
    url: str,
    client: LabClient,
    user: SignedIn,
    cache_dir: Path | None,
    on_channel: Callable[[StateChange], None] | None,
) -> Workspace:
    live = LiveChannel(url, user.token, on_state=on_channel)
    await live.__aenter__()
    fetcher = ImageFetcher(cache_dir)
    await fetcher.__aenter__()
    return Workspace(mode, url, user, client, live, fetcher)


async def open_offline(
    data_dir: Path | None = None,
    *,
    cache_dir: Path | None = None,
    environment: Mapping[str, str] | None = None,
    on_channel: Callable[[StateChange], None] | None = None,
    server: OfflineServer | None = None,
    journal_dir: Path | None = None,
) -> Workspace:
    """Start (or reuse) the offline server on ``data_dir`` and sign in with its one-time token; the
    edits journalled under ``journal_dir`` (default: the user's) are replayed.
    Raises :class:`~workbench.offline.OfflineServerError` with the server's last log lines."""
    server = server or OfflineServer(data_dir, environment=environment)
    started = await server.start()
    client = LabClient(started.url)
    await client.__aenter__()
    try:
        user = await client.exchange_bootstrap_token(started.bootstrap_token)
        workspace = await _opened(Mode.OFFLINE, started.url, client, user, cache_dir, on_channel)
    except BaseException:
        await client.__aexit__(None, None, None)
        if server.owned:
            await server.stop()
        raise
    workspace.offline, workspace.started = server, started
    workspace.saver = open_saver(workspace, journal_dir)
    return workspace


async def open_lab(
    url: str,
    username: str,
    password: str,
    *,
    sessions: SavedSessions | None = None,
    cache_dir: Path | None = None,
    on_channel: Callable[[StateChange], None] | None = None,
    journal_dir: Path | None = None,
) -> Workspace:
    """Sign in to the lab server at ``url``; the session is kept in ``sessions`` for the next start."""
    client = LabClient(url)
    await client.__aenter__()
    try:
        user = await client.login(username, password)
        if sessions is not None:
            sessions.save(url, user.username, user.token, user.expires_at)
        workspace = await _opened(Mode.LAB, url, client, user, cache_dir, on_channel)
        workspace.saver = open_saver(workspace, journal_dir)
        return workspace
    except BaseException:
        await client.__aexit__(None, None, None)
        raise


async def resume_lab(
    url: str,
    sessions: SavedSessions,
    *,
    cache_dir: Path | None = None,
    on_channel: Callable[[StateChange], None] | None = None,
    journal_dir: Path | None = None,
) -> Workspace | None:
    """Reopen the saved session for ``url`` (renewed when due); ``None`` when there is none or the server
    no longer knows it, and the user signs in again."""
    saved = sessions.token_for(url)
    if saved is None:
        return None
    client = LabClient(url, token=saved.token)
    await client.__aenter__()
    try:
        me = (await client.call("Me"))["me"]
        if me is None:
            sessions.forget(url)
            await client.__aexit__(None, None, None)
            return None
        expires_at = await renew_if_due(client, saved.expires_at)
        sessions.save(url, saved.username, saved.token, expires_at)
        user = SignedIn(saved.token, expires_at, me["id"], me["username"], me["role"])
        workspace = await _opened(Mode.LAB, url, client, user, cache_dir, on_channel)
        workspace.saver = open_saver(workspace, journal_dir)
        return workspace
    except BaseException:
        await client.__aexit__(None, None, None)
        raise
