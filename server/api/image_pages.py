"""A project's images a page at a time: the ``images`` connection of a project, with cursors both ways,
positions, and the arguments that narrow a page (``ids``, ``updatedSince``); the work is
:func:`server.services.images.image_page`'s."""

from __future__ import annotations

import strawberry
from strawberry.dataloader import DataLoader

from server.api.context import Info
from server.api.images import ImageFilterInput, ImageType
from server.domain.errors import InvalidInputError
from server.domain.listing import ImageOrder, PageRequest, encode_cursor, sort_key
from server.exceptions import ClientError
from server.services import images as service

__all__ = ["ImageConnection", "ImageEdge", "PageInfo", "image_connection"]


@strawberry.type(description="One image of a page, with where it stands.")
class ImageEdge:
    node: ImageType = strawberry.field(description="The image.")
    order: strawberry.Private[ImageOrder]
    sort_value: strawberry.Private[str]
    positions: strawberry.Private[DataLoader[int, int | None]]

    @strawberry.field(description="Pass as `after` (or `before`) to continue the listing from this image.")
    def cursor(self) -> str:
        return encode_cursor(self.order, self.sort_value, self.node.id)  # made only when asked for

    @strawberry.field(
        description="Where this image stands (from 1) in the list that `filter` and `orderBy` give, whatever "
        '`ids`, `updatedSince` or the page take of it ("image 37 of 120", 120 being `totalCount` without '
        "`ids` and `updatedSince`). Null when the image left that list after the page was read. The "
        "positions of a page cost one more database statement, made only when asked for."
    )
    async def position(self) -> int | None:
        found: int | None = await self.positions.load(self.node.id)
        return found


@strawberry.type(description="Where a page of images lies in the list.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More images follow the last one of this page.")
    has_previous_page: bool = strawberry.field(description="More images come before the first one.")
    start_cursor: str | None = strawberry.field(description="`before` for the page before this one.")
    end_cursor: str | None = strawberry.field(description="`after` for the page after this one.")


@strawberry.type(description="A page of a project's images, in the order asked for.")
class ImageConnection:
    edges: list[ImageEdge] = strawberry.field(description="The images of this page, in order.")
    page_info: PageInfo = strawberry.field(description="Whether the list goes on, and where to go on from.")
    total_count: int = strawberry.field(
        description="How many images the arguments select (`filter`, narrowed by `ids` and `updatedSince`)."
    )


async def image_connection(
    info: Info, project_id: int, where: ImageFilterInput | None, page: PageRequest
) -> ImageConnection:
    """The ``images`` field of a project: :func:`server.services.images.image_page` as a connection."""
    context = info.context
    actor, loaders = context.require_actor(), context.loaders
    selected = (where or ImageFilterInput()).to_domain()
    try:
        found = await service.image_page(context.services, actor, project_id, selected, page, loaders)
    except InvalidInputError as error:
        raise ClientError(f"{error.field}: {error.message}", field=error.field) from error
    loaders.prime_images(found.images)

    async def load_positions(image_ids: list[int]) -> list[int | None]:
        positions = await service.image_positions(
            context.services, actor, project_id, selected, page.order, image_ids, loaders
        )
        return [positions.get(image_id) for image_id in image_ids]

    positions = DataLoader(load_positions)
    edges = [
        ImageEdge(
            node=ImageType.of(row),
            order=page.order,
            sort_value=sort_key(row, page.order),
            positions=positions,
        )
        for row in found.images
    ]
    page_info = PageInfo(
        has_next_page=found.has_next,
        has_previous_page=found.has_previous,
        start_cursor=edges[0].cursor() if edges else None,
        end_cursor=edges[-1].cursor() if edges else None,
    )
    return ImageConnection(edges=edges, total_count=found.total, page_info=page_info)
