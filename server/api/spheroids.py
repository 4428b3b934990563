"""``Project.spheroids``: the project's spheroid table, a page at a time, sorted by a metric.

The work is :func:`server.services.spheroids.spheroid_page`; here the metric names of
:class:`cluster.SpheroidMetrics` become the ``SpheroidMetric`` enum and the ``SpheroidRowMetrics`` type
(every metric, nullable), so the schema follows that one list of names.
"""

from __future__ import annotations

import enum
from typing import Any

import strawberry

from cluster import SpheroidMetrics
from server.api.context import Info
from server.api.image_pages import PageInfo
from server.api.images import ReviewStatusEnum
from server.db.spheroid_table import SpheroidRow
from server.domain.review import ReviewStatus
from server.domain.spheroid_table import SpheroidFilter, SpheroidOrder, encode_cursor
from server.services import spheroids as service

__all__ = ["SpheroidConnection", "SpheroidOrderInput", "SpheroidTableFilterInput", "spheroid_connection"]

_SpheroidMetric: Any = enum.Enum(  # type: ignore[misc]  # the members are the metric names
    "SpheroidMetric", {name.upper(): name for name in SpheroidMetrics.names()}
)
SpheroidMetricEnum: Any = strawberry.enum(
    _SpheroidMetric,
    description="A metric of cluster.SpheroidMetrics (units in its name: _px, _um, _um2, _deg; none for "
    "ratios).",
)

_UNITS = {"_px": "pixels", "_um": "µm", "_um2": "µm²", "_deg": "degrees"}


def _described(name: str) -> str:
    unit = next((unit for suffix, unit in _UNITS.items() if name.endswith(suffix)), "no unit")
    if "area" in name and unit == "pixels":
        unit = "px²"
    return f"{name} of cluster.metrics ({unit})."


def _metrics_type() -> Any:
    """``SpheroidRowMetrics``: a nullable field per metric name, built from the names."""
    names = SpheroidMetrics.names()
    namespace: dict[str, Any] = {
        "__annotations__": {name: int | None if name == "hole_count" else float | None for name in names},
        **{name: strawberry.field(description=_described(name)) for name in names},
    }
    return strawberry.type(
        type("SpheroidRowMetrics", (), namespace),
        description="Every metric of a spheroid as stored with its version; null for a µm value without a "
        "pixel size, and for a spheroid stored unmeasured by an older server (until its image is saved "
        "again).",
    )


RowMetrics = _metrics_type()


@strawberry.type(name="SpheroidRow", description="A spheroid of an image's current segmentation.")
class SpheroidRowType:
    spheroid_id: int = strawberry.field(
        description="The spheroid's id within its image (`Spheroid.id`), the same across versions."
    )
    image_id: int = strawberry.field(description="The image it belongs to.")
    image_name: str = strawberry.field(description="That image's file name.")
    version: int = strawberry.field(description="The segmentation version it belongs to (the current one).")
    touches_border: bool = strawberry.field(
        description="The outline comes within 1 px of the image's edge (the spheroid may be cut by it)."
    )
    metrics: RowMetrics = strawberry.field(description="Its metrics.")  # type: ignore[valid-type]

    @classmethod
    def of(cls, row: SpheroidRow) -> SpheroidRowType:
        return cls(
            spheroid_id=row.spheroid_id,
            image_id=row.image_id,
            image_name=row.image_name,
            version=row.version,
            touches_border=row.touches_border,
            metrics=RowMetrics(**row.metrics),
        )


@strawberry.type(name="SpheroidEdge", description="One row of the spheroid table, with its cursor.")
class SpheroidEdge:
    node: SpheroidRowType = strawberry.field(description="The spheroid.")
    order: strawberry.Private[SpheroidOrder]
    row_id: strawberry.Private[int]
    sort_value: strawberry.Private[float | None]

    @strawberry.field(description="Pass as `after` to continue the table from this spheroid.")
    def cursor(self) -> str:
        return encode_cursor(self.order, self.sort_value, self.row_id)


@strawberry.type(name="SpheroidConnection", description="A page of a project's spheroid table.")
class SpheroidConnection:
    edges: list[SpheroidEdge] = strawberry.field(description="The spheroids of this page, in order.")
    page_info: PageInfo = strawberry.field(description="Whether more follow, and the cursor to get them.")
    total_count: int = strawberry.field(description="Spheroids matching the filter, on every page.")


@strawberry.input(description="Which spheroids: all given conditions hold.")
class SpheroidTableFilterInput:
    image_ids: list[int] | None = strawberry.field(
        default=None, description="Only these images' spheroids (at most 10,000 ids)."
    )
    review: list[ReviewStatusEnum] | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="Only spheroids of images in one of these review states."
    )
    touches_border: bool | None = strawberry.field(
        default=None, description="Only those touching the image border (true) or not (false)."
    )

    def to_domain(self) -> SpheroidFilter:
        review = tuple(ReviewStatus(r) for r in self.review or ())
        ids = tuple(self.image_ids) if self.image_ids is not None else None
        return SpheroidFilter(ids, review, self.touches_border)


@strawberry.input(description="Sort by a metric (unknown values last), else by image and spheroid id.")
class SpheroidOrderInput:
    metric: SpheroidMetricEnum | None = strawberry.field(
        default=None,
        description="The metric to sort by; none: by image, then as the image's version lists them.",
    )
    descending: bool = strawberry.field(default=False, description="Largest first.")

    def to_domain(self) -> SpheroidOrder:
        return SpheroidOrder(self.metric.value if self.metric is not None else None, self.descending)


async def spheroid_connection(
    info: Info,
    project_id: int,
    first: int,
    after: str | None,
    where: SpheroidTableFilterInput | None,
    order: SpheroidOrderInput | None,
) -> SpheroidConnection:
    context = info.context
    domain_order = (order or SpheroidOrderInput()).to_domain()
    page = await service.spheroid_page(
        context.services,
        context.require_actor(),
        project_id,
        (where or SpheroidTableFilterInput()).to_domain(),
        domain_order,
        first,
        after,
        context.loaders,
    )
    edges = [
        SpheroidEdge(
            node=SpheroidRowType.of(row),
            order=domain_order,
            row_id=row.row_id,
            sort_value=row.sort_value(domain_order),
        )
        for row in page.rows
    ]
    return SpheroidConnection(
        edges=edges,
        total_count=page.total,
        page_info=PageInfo(
            has_next_page=page.has_next,
            # the table pages forwards only: rows come before this page exactly when it starts after one
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor() if edges else None,
            end_cursor=edges[-1].cursor() if edges else None,
        ),
    )
