"""The user's projects and a project's members, without Qt: what the projects list and the members dialog
show, and the changes they make (create, rename, delete, share).

:class:`Projects` holds the list (with each project's counts and progress from ``Project.stats``) and tells
``changed`` after each load or change, so a view only redraws; :meth:`Projects.follow` keeps it current
from the server's ``projectListEvents`` (a project made or shared elsewhere appears, counts move while a
job runs). Deleting cannot be undone, so the view first asks :meth:`Projects.deletion_cost` and names
what is lost (images, segmentations, exports) in its confirmation. :class:`Members` is one project's
members and roles; sharing exists only on a lab server (offline there is one user), which
:attr:`Projects.can_share` says.

Refusals the server answers as ``InputError`` (an empty name, an unknown user, the last owner) raise
:class:`~workbench.api.ApiError` with the server's message, which names the field.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workbench.api import ApiError, ChannelClosedError, LabClient, LiveChannel, ServerUnreachableError
from workbench.tasks import Listeners

logger = logging.getLogger(__name__)

__all__ = ["FOLLOW_PAUSE_SECONDS", "ROLES", "DeletionCost", "Member", "Members", "ProjectSummary", "Projects"]

FOLLOW_PAUSE_SECONDS = 1.0
"""After reading the list on an event, the events of this long go into one more read: a running job
changes the counts once per image."""
ROLES = ("VIEWER", "EDITOR", "OWNER")
"""A member's roles, from the least to the most they may do (the API's ``ProjectRole``)."""


@dataclass(frozen=True)
class ProjectSummary:
    """One row of the projects list."""

    id: int
    name: str
    description: str
    my_role: str | None
    image_count: int
    segmented_count: int
    reviewed_count: int
    accepted_count: int
    spheroid_count: int

    @property
    def progress(self) -> float:
        """Share of the images segmented, 0 to 1 (0 for an empty project)."""
        return self.segmented_count / self.image_count if self.image_count else 0.0

    @property
    def progress_text(self) -> str:
        if not self.image_count:
            return "no images yet"
        text = f"{self.segmented_count} of {self.image_count} segmented"
        return f"{text}, {self.accepted_count} accepted" if self.accepted_count else text

    @classmethod
    def of(cls, project: Mapping[str, Any]) -> ProjectSummary:
        stats = project["stats"]
        reviews = {entry["status"]: entry["count"] for entry in stats.get("byReview", [])}
        return cls(
            project["id"],
            project["name"],
            project.get("description", ""),
            project.get("myRole"),
            stats["imageCount"],
            stats["segmentedImageCount"],
            sum(count for status, count in reviews.items() if status != "unreviewed"),
            reviews.get("accepted", 0),
            stats["spheroidCount"],
        )


@dataclass(frozen=True)
class DeletionCost:
    """What deleting a project loses."""

    name: str
    images: int
    segmentations: int
    spheroids: int
    exports: int

    @property
    def text(self) -> str:
        """The confirmation's words: what is lost, counted, and that it cannot be undone."""
        lost = [
            _count(self.images, "image"),
            _count(self.segmentations, "segmentation")
            + (f" ({_count(self.spheroids, 'spheroid')})" if self.spheroids else ""),
            _count(self.exports, "export"),
        ]
        return (
            f"Delete the project “{self.name}” for every member? This deletes {lost[0]}, {lost[1]} and "
            f"{lost[2]}. It cannot be undone."
        )


@dataclass(frozen=True)
class Member:
    user_id: int
    username: str
    role: str


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _checked(answer: Mapping[str, Any]) -> Mapping[str, Any]:
    """A mutation's ``…Success``, or the ``InputError`` it answered raised with the server's words."""
    if answer["__typename"] == "InputError":
        raise ApiError(answer["message"], "BAD_USER_INPUT", answer)
    return answer


class Projects:
    """The projects the user is a member of (an administrator: all), with counts and progress."""

    def __init__(self, client: LabClient, *, can_share: bool) -> None:
        self._client = client
        self.can_share = can_share
        """Members and roles can be changed: a lab server (offline, the one user owns everything)."""
        self.items: list[ProjectSummary] = []
        self.changed: Listeners[list[ProjectSummary]] = Listeners()

    def find(self, project_id: int) -> ProjectSummary | None:
        return next((project for project in self.items if project.id == project_id), None)

    async def load(self) -> list[ProjectSummary]:
        projects = (await self._client.call("Projects"))["projects"]
        self.items = sorted(
            (ProjectSummary.of(project) for project in projects), key=lambda p: p.name.casefold()
        )
        self.changed.emit(self.items)
        return self.items

    async def follow(self, live: LiveChannel) -> None:
        """Read the list again whenever the server says it changed, and after a lost connection is back,
        until the workspace closes its live channel or this is cancelled. A failed read is logged and left
        to the next event (the connection banner already says when the server is away); a refused
        subscription raises :class:`~workbench.api.ApiError`."""
        behind = asyncio.Event()

        async def read() -> None:
            while True:
                await behind.wait()
                behind.clear()
                try:
                    await self.load()
                except (ApiError, ServerUnreachableError) as error:
                    logger.info("the projects list was not read again: %s", error)
                await asyncio.sleep(FOLLOW_PAUSE_SECONDS)

        reading = asyncio.ensure_future(read())
        try:
            async for _ in live.subscribe("ProjectListEvents"):
                behind.set()  # whatever it was (a reconnect included), the list is read again
        except ChannelClosedError:
            return  # the workspace closed
        finally:
            reading.cancel()

    async def create(self, name: str, description: str = "") -> int:
        """Create a project the user owns; returns its id (the list is loaded again)."""
        answer = _checked(
            (await self._client.call("CreateProject", name=name, description=description))["createProject"]
        )
        await self.load()
        return int(answer["project"]["id"])

    async def rename(self, project_id: int, name: str) -> None:
        _checked((await self._client.call("UpdateProject", id=project_id, name=name))["updateProject"])
        await self.load()

    async def deletion_cost(self, project_id: int) -> DeletionCost:
        project = (await self._client.call("ProjectDeletionCost", id=project_id))["project"]
        stats = project["stats"]
        exports = sum(
            1 for job in project["jobs"] if job["kind"] == "EXPORT" and job["downloadUrl"] is not None
        )
        return DeletionCost(
            project["name"],
            stats["imageCount"],
            stats["segmentedImageCount"],
            stats["spheroidCount"],
            exports,
        )

    async def delete(self, project_id: int) -> None:
        await self._client.call("DeleteProject", id=project_id)
        await self.load()


class Members:
    """The members of one project and their roles; owners add, change and remove them."""

    def __init__(self, client: LabClient, project_id: int) -> None:
        self._client = client
        self.project_id = project_id
        self.items: list[Member] = []
        self.my_role: str | None = None
        self.changed: Listeners[list[Member]] = Listeners()

    @property
    def can_manage(self) -> bool:
        return self.my_role == "OWNER"

    async def load(self) -> list[Member]:
        project = (await self._client.call("ProjectMembers", id=self.project_id))["project"]
        self.my_role = project["myRole"]
        return self._set(project["members"])

    async def add(self, username: str, role: str) -> list[Member]:
        """Share the project with ``username`` as ``role`` (or change their role)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        answer = await self._client.call("AddProjectMember", id=self.project_id, username=username, role=role)
        return self._set(_checked(answer["addProjectMember"])["project"]["members"])

    async def remove(self, username: str) -> list[Member]:
        answer = await self._client.call("RemoveProjectMember", id=self.project_id, username=username)
        return self._set(_checked(answer["removeProjectMember"])["project"]["members"])

    def _set(self, members: list[Mapping[str, Any]]) -> list[Member]:
        self.items = sorted(
            (Member(m["userId"], m["username"], m["role"]) for m in members),
            key=lambda m: (-ROLES.index(m.role), m.username.casefold()),
        )
        self.changed.emit(self.items)
        return self.items
