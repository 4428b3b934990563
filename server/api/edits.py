"""``editSegmentation``: save only the spheroids that changed, merged with edits of other spheroids."""

from __future__ import annotations

from typing import Annotated

import strawberry

from server.api.context import Info
from server.api.cost import Cost, ListSize
from server.api.extensions import CountedList
from server.api.permissions import CanEditProject
from server.api.results import InputError, RateLimited
from server.api.segmentations import (
    SAVE_REFUSALS,
    InvalidSpheroids,
    Points,
    SegmentationType,
    SpheroidType,
    VersionConflict,
    save_refusal,
)
from server.db.models import Image
from server.domain.errors import (
    ConflictReason,
    EditConflictError,
    SpheroidConflict,
)
from server.domain.spheroids import SpheroidDraft
from server.services import segmentations as service
from server.services.segmentations import EditSaved

__all__ = ["SegmentationEditMutation"]

ConflictReasonEnum = strawberry.enum(
    ConflictReason,
    name="SpheroidConflictReason",
    description="Why a spheroid your edit touches collides with a save made since your base version: "
    "CHANGED (someone else changed its rings) or DELETED (someone else deleted it; a job's result "
    "replaces every spheroid).",
)


@strawberry.input(
    description="A spheroid to put in: with `id`, new rings for that spheroid; without, a new one."
)
class SpheroidUpsertInput:
    id: int | None = strawberry.field(
        default=None,
        description="The spheroid whose rings these replace (it keeps its id); omit for a new one.",
    )
    exterior: Points = strawberry.field(
        description="Ring of (x, y) image pixels; may repeat the first point."
    )
    holes: list[Points] = strawberry.field(
        default_factory=list, description="Hole rings, each as `exterior`."
    )


@strawberry.input(description="What an edit changes; spheroids it does not name stay as they are stored.")
class SegmentationChangesInput:
    upsert: list[SpheroidUpsertInput] = strawberry.field(
        default_factory=list, description="Spheroids drawn or reshaped; metrics are measured by the server."
    )
    delete: list[int] = strawberry.field(default_factory=list, description="Ids of spheroids to delete.")


@strawberry.type(description="The edit was saved as a new version.")
class SegmentationEditSuccess:
    segmentation: SegmentationType = strawberry.field(description="The new version.")
    merged: bool = strawberry.field(
        description="True when others saved since `baseVersion` and this edit went on top of their changes "
        "(to other spheroids): reload the spheroids it did not touch."
    )
    new_ids: list[int] = strawberry.field(
        description="The ids the spheroids sent without an id got, in the order they were sent."
    )


@strawberry.type(name="SpheroidConflict", description="A spheroid this edit and another save both changed.")
class SpheroidConflictType:
    id: int = strawberry.field(description="The spheroid in question.")
    reason: ConflictReasonEnum = strawberry.field(  # type: ignore[valid-type]
        description="CHANGED: someone else reshaped it; DELETED: someone else deleted it (or a job's result "
        "replaced every spheroid)."
    )
    mine: SpheroidType | None = strawberry.field(
        description="The shape this edit sent, measured; null when this edit deletes it."
    )
    theirs: SpheroidType | None = strawberry.field(
        description="The shape stored now; null when it was deleted."
    )


@strawberry.type(
    description="Someone saved since `baseVersion` and changed or deleted spheroids this edit touches; "
    "nothing was saved. Choose a shape for each and edit again from `currentVersion`."
)
class EditConflict:
    message: str = strawberry.field(description="What collided, for people.")
    base_version: int = strawberry.field(description="The version the edit started from.")
    current_version: int = strawberry.field(description="The version stored now.")
    ids: list[int] = strawberry.field(description="The ids of the spheroids in question.")
    conflicts: list[SpheroidConflictType] = strawberry.field(
        directives=[Cost(weight=5), ListSize(assumed_size=10)],
        extensions=[CountedList()],
        description="Each spheroid in question, with both shapes.",
    )


SegmentationEditResult = Annotated[
    SegmentationEditSuccess | EditConflict | VersionConflict | InvalidSpheroids | InputError | RateLimited,
    strawberry.union(
        "SegmentationEditResult",
        description="The new version (with others' changes merged in), or why nothing was saved: a "
        "spheroid was changed by both sides, a stale base, rings that cannot be stored, a wrong argument, "
        "or too many saves lately.",
    ),
]


def _conflict_of(error: EditConflictError, image: Image | None) -> EditConflict:
    size = (image.width, image.height) if image is not None else (0, 0)

    def shape(conflict: SpheroidConflict) -> SpheroidConflictType:
        mine, theirs = conflict.mine, conflict.theirs
        return SpheroidConflictType(
            id=conflict.id,
            reason=conflict.reason,
            mine=SpheroidType.of(mine, size) if mine is not None else None,
            theirs=SpheroidType.of(theirs, size) if theirs is not None else None,
        )

    return EditConflict(
        message=str(error),
        base_version=error.base_version,
        current_version=error.current_version,
        ids=[conflict.id for conflict in error.conflicts],
        conflicts=[shape(conflict) for conflict in error.conflicts],
    )


def _success(saved: EditSaved) -> SegmentationEditSuccess:
    return SegmentationEditSuccess(
        segmentation=SegmentationType.of(saved.row), merged=saved.merged, new_ids=saved.new_ids
    )


@strawberry.type
class SegmentationEditMutation:
    @strawberry.mutation(
        permission_classes=[CanEditProject],
        directives=[Cost(weight=20)],
        description="Save only what changed as the next version: the spheroids `changes` names are put in "
        "or deleted, the others kept as stored, metrics measured by the server. Edits of other spheroids "
        "saved since `baseVersion` are merged (`merged: true`); edits of the same ones return EditConflict. "
        "Counts against the same budget as `saveSegmentation`.",
    )
    async def edit_segmentation(
        self,
        info: Info,
        image_id: Annotated[int, strawberry.argument(description="The image whose segmentation to edit.")],
        base_version: Annotated[
            int, strawberry.argument(description="The version the edit started from (0: none yet).")
        ],
        changes: Annotated[SegmentationChangesInput, strawberry.argument(description="What changed.")],
    ) -> SegmentationEditResult:
        context = info.context
        drafts = [SpheroidDraft(s.exterior, s.holes, s.id) for s in changes.upsert]
        try:
            saved = await service.edit_segmentation(
                context.services,
                context.require_actor(),
                image_id,
                base_version,
                drafts,
                changes.delete,
                context.loaders,
            )
        except EditConflictError as error:
            return _conflict_of(error, await context.loaders.image.load(image_id))
        except SAVE_REFUSALS as error:
            return save_refusal(error)
        return _success(saved)
