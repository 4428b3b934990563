"""Permission classes: authenticated, admin, and the project role a field needs.

A project permission finds the project from what the field is about: its ``source`` (a project or an
image), or its arguments (``id``/``projectId`` for a project, ``imageId``/``imageIds``/``images`` for
images). A project that does not exist and one the user may not see give the same answer, so strangers
learn nothing.
Lookups go through the request's DataLoaders, so checking 100 images costs no extra statement.
"""

from __future__ import annotations

from typing import Any, ClassVar

from strawberry.permission import BasePermission

from server.api.context import Context, Info
from server.domain.roles import Action, ProjectRole, UserRole, allows
from server.exceptions import PermissionDeniedError
from server.services import permissions

__all__ = ["CanEditProject", "CanManageProject", "CanViewProject", "IsAdmin", "IsAuthenticated"]


class IsAuthenticated(BasePermission):
    message = "log in first"

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        info.context.require_user()
        return True


class IsAdmin(BasePermission):
    message = "only an administrator may do this"

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        user = info.context.require_user()
        if user.role != UserRole.ADMIN:
            raise PermissionDeniedError(self.message)
        return True


async def project_role(context: Context, project_id: int) -> ProjectRole | None:
    """The context's user's role in the project, by the rule every entry point shares, read through the
    request's DataLoaders."""
    return await permissions.project_role(context.actor, project_id, context.loaders)


IMAGE_ID_FIELDS = frozenset({"image", "updateImage"})
"""Root fields whose ``id`` argument is an image id."""
JOB_ID_FIELDS = frozenset({"job", "cancelJob"})
"""Root fields whose ``id`` argument is a job id (every other ``id`` is a project id)."""


async def project_ids_for(source: Any, info: Info, kwargs: dict[str, Any]) -> list[int | None]:
    """The projects a field touches; ``None`` stands for an image that does not exist."""
    if source is not None and hasattr(source, "project_id"):
        return [source.project_id]
    if source is not None and hasattr(source, "members_of_project"):
        return [source.id]
    if info.field_name in IMAGE_ID_FIELDS:
        kwargs = {"image_id": kwargs["id"]}
    elif info.field_name in JOB_ID_FIELDS:
        kwargs = {"job_id": kwargs.get("job_id", kwargs.get("id"))}
    if "job_id" in kwargs:
        job = await info.context.loaders.job.load(int(kwargs["job_id"]))
        return [job.project_id if job is not None else None]
    if "input" in kwargs:  # an input object may name the project or images (segmentImages)
        given = kwargs["input"]
        named = {
            n: getattr(given, n) for n in ("project_id", "image_ids") if getattr(given, n, None) is not None
        }
        kwargs = {**kwargs, **named}
    if "images" in kwargs:  # setReview: each image reviewed, with its version
        kwargs = {**kwargs, "image_ids": [given.image_id for given in kwargs["images"]]}
    for name in ("id", "project_id"):
        if name in kwargs:
            return [int(kwargs[name])]
    image_ids = [kwargs["image_id"]] if "image_id" in kwargs else list(kwargs.get("image_ids", []))
    if "image_ids" in kwargs and not image_ids:
        return []
    if image_ids:
        rows = await info.context.loaders.image.load_many(image_ids)
        return [row.project_id if row is not None else None for row in rows]
    raise RuntimeError(f"cannot tell which project field {info.field_name!r} touches")


class _ProjectPermission(BasePermission):
    action: ClassVar[Action]

    async def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        context = info.context
        context.require_user()
        granted = context.loaders.granted
        for project_id in set(await project_ids_for(source, info, kwargs)):
            if (project_id, self.action) in granted:
                continue  # the page's 100 images share one project: decided once per request
            role = await project_role(context, project_id) if project_id is not None else None
            if not allows(role, self.action):
                what = permissions.VERBS[self.action]
                raise PermissionDeniedError(f"not found, or you may not {what} it ({info.field_name})")
            granted.remember((project_id, self.action))
        return True


class CanViewProject(_ProjectPermission):
    action = Action.VIEW


class CanEditProject(_ProjectPermission):
    action = Action.EDIT


class CanManageProject(_ProjectPermission):
    action = Action.MANAGE
