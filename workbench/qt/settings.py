"""What the window remembers between runs, through QSettings: its geometry, the projects opened recently
on each server, the lab servers connected to. Tests hand in a QSettings on a file of their own."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings

__all__ = ["WindowSettings"]

KEEP = 10
"""How many recent projects (per server) and servers are remembered."""


class WindowSettings:
    """The window's remembered state in ``settings`` (the application's QSettings when ``None``)."""

    def __init__(self, settings: QSettings | None = None) -> None:
        self.settings = settings or QSettings()

    def geometry(self) -> QByteArray | None:
        value = self.settings.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def save_geometry(self, geometry: QByteArray) -> None:
        self.settings.setValue("window/geometry", geometry)
        self.settings.sync()

    def recent_servers(self) -> list[str]:
        """Lab server URLs connected to, newest first."""
        return self._list("servers/recent")

    def add_recent_server(self, url: str) -> None:
        self._push("servers/recent", url.rstrip("/"))

    def recent_projects(self, server_url: str) -> list[int]:
        """Project ids opened on ``server_url``, newest first."""
        found = []
        for value in self._list(f"projects/{_group(server_url)}"):
            if value.isdigit():
                found.append(int(value))
        return found

    def add_recent_project(self, server_url: str, project_id: int) -> None:
        self._push(f"projects/{_group(server_url)}", str(project_id))

    def _list(self, key: str) -> list[str]:
        value = self.settings.value(key)
        if isinstance(value, str):  # QSettings gives a one-item list back as a plain string
            return [value] if value else []
        return [str(item) for item in value] if isinstance(value, list) else []

    def _push(self, key: str, item: str) -> None:
        items = [item, *(old for old in self._list(key) if old != item)][:KEEP]
        self.settings.setValue(key, items)
        self.settings.sync()


def _group(url: str) -> str:
    """A settings key for a server: its URL without characters QSettings treats as separators."""
    return "".join(c if c.isalnum() else "_" for c in url.rstrip("/").lower())
