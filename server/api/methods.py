"""The ``methods`` query: the segmentation methods, their parameters and models, for the method form.

A client builds its form from it: each parameter's type, default, range and description come from the
declaration that ``segmentImages`` checks a job's parameters against (:mod:`cluster.parameters`), so
what the form offers is what a job accepts.
"""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from cluster import MethodInfo, ModelInfo, ParameterInfo
from server.api.context import Info
from server.api.cost import ListSize
from server.api.extensions import CountedList
from server.api.permissions import IsAuthenticated
from server.services.methods import segmentation_methods

__all__ = ["MethodQuery"]


@strawberry.type(name="MethodParameter", description="A parameter a job may set (segmentImages' parameters).")
class MethodParameterType:
    name: str = strawberry.field(description='Its name in segmentImages\' parameters, e.g. "threshold".')
    type: str = strawberry.field(description="integer, number, boolean or text.")
    nullable: bool = strawberry.field(description="It may be null (left to the workers to decide).")
    default: JSON = strawberry.field(description="Its value when a job leaves it out.")
    minimum: float | None = strawberry.field(description="Smallest value allowed (inclusive); null: none.")
    maximum: float | None = strawberry.field(description="Largest value allowed (inclusive); null: none.")
    exclusive_minimum: float | None = strawberry.field(
        description="The value must be greater than this; null: no such bound."
    )
    exclusive_maximum: float | None = strawberry.field(
        description="The value must be less than this; null: no such bound."
    )
    description: str = strawberry.field(description="What it does, with its unit.")
    choices: list[str] | None = strawberry.field(
        description='The values it may take, for a parameter that names one of a few things (e.g. "model"); '
        "null: any value of its type."
    )

    @classmethod
    def of(cls, parameter: ParameterInfo) -> MethodParameterType:
        return cls(
            name=parameter.name,
            type=parameter.kind,
            nullable=parameter.nullable,
            default=parameter.default,
            minimum=parameter.minimum,
            maximum=parameter.maximum,
            exclusive_minimum=parameter.above,
            exclusive_maximum=parameter.below,
            description=parameter.description,
            choices=list(parameter.choices) or None,
        )


@strawberry.type(name="ModelScore", description="How a model did on one metric over the held-out set.")
class ModelScoreType:
    metric: str = strawberry.field(
        description="iou, dice, boundary_f1, instance_f1, count_error, area_error_pct, small_iou (the IoU "
        "of spheroids 10-20 px in radius that were found), small_found (the share of those found) or "
        "seconds (per image)."
    )
    median: float | None = strawberry.field(description="Median over the held-out images.")
    mean: float | None = strawberry.field(description="Mean over the held-out images.")
    worst5: float | None = strawberry.field(description="Mean of the worst 5% of the held-out images.")


@strawberry.type(name="SegmentationModel", description="A method's model, from its model card.")
class SegmentationModelType:
    name: str = strawberry.field(description="The model's name (as segmentations record it).")
    version: str = strawberry.field(description="Its version.")
    created: str | None = strawberry.field(description="The day it was made (YYYY-MM-DD); null: unknown.")
    training_data: str | None = strawberry.field(description="What it was trained on.")
    held_out_set: str | None = strawberry.field(description="The held-out images the scores come from.")
    scores: list[ModelScoreType] = strawberry.field(description="Its scores on the held-out set.")
    sha256: str | None = strawberry.field(description="Checksum of its weights file; null: no weights.")
    license: str | None = strawberry.field(description="The weights' license; null: no weights.")
    notes: str = strawberry.field(description="How it was made, and what to know before trusting it.")
    key: str | None = strawberry.field(
        description='The value of the method\'s "model" parameter that chooses it (e.g. "resunet-v1"); '
        "null where a method has one model only. The first model listed is the default."
    )

    @classmethod
    def of(cls, model: ModelInfo) -> SegmentationModelType:
        scores = [
            ModelScoreType(
                metric=metric,
                median=summary.get("median"),
                mean=summary.get("mean"),
                worst5=summary.get("worst5"),
            )
            for metric, summary in model.scores.items()
            if isinstance(summary, dict)
        ]
        return cls(
            name=model.name,
            version=model.version,
            created=model.created,
            training_data=model.training_data,
            held_out_set=model.held_out_set,
            scores=scores,
            sha256=model.sha256,
            license=model.license,
            notes=model.notes,
            key=model.key,
        )


@strawberry.type(name="SegmentationMethod", description="A segmentation method segmentImages can run.")
class SegmentationMethodType:
    name: str = strawberry.field(description="Its name, as segmentImages' method takes it.")
    default: bool = strawberry.field(description="segmentImages uses it when no method is given.")
    available: bool = strawberry.field(
        description="This server can run it (the ResUNet needs torch and its weights)."
    )
    parameters: list[MethodParameterType] = strawberry.field(
        description="What a job may set, in the method's order; anything else is refused."
    )
    models: list[SegmentationModelType] = strawberry.field(description="Its models, the default first.")

    @classmethod
    def of(cls, method: MethodInfo) -> SegmentationMethodType:
        return cls(
            name=method.name,
            default=method.default,
            available=method.available,
            parameters=[MethodParameterType.of(p) for p in method.parameters],
            models=[SegmentationModelType.of(m) for m in method.models],
        )


@strawberry.type
class MethodQuery:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        directives=[ListSize(assumed_size=5)],
        extensions=[CountedList()],
        description="Every segmentation method with its parameters and models; build a method form from it.",
    )
    async def methods(self, info: Info) -> list[SegmentationMethodType]:
        found = await segmentation_methods(info.context.require_actor())
        return [SegmentationMethodType.of(method) for method in found]
