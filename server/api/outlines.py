"""``GET /api/images/{id}/segmentations/{version}/geometry``: a version's outlines with a bearer token.

For clients that do not follow the signed ``Segmentation.geometryUrl``: the same bytes (the binary format
of :mod:`cluster.outlines`, read with ``cluster.decode_outlines``), after the viewer check of
:mod:`server.services.outlines`. The answer is private (``Cache-Control: private, no-cache``) with a strong
ETag, so a client's cache keeps it and asks again with ``If-None-Match`` for a 304.

Answers: 401 without a valid token, 403 for an image that does not exist or that the user may not see
(the same answer), 404 for a version the image does not have.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cluster import OUTLINES_MEDIA_TYPE
from server.api.context import build_context
from server.delivery.headers import etag_matches
from server.domain.errors import InvalidInputError
from server.exceptions import PermissionDeniedError
from server.services import outlines
from server.services.runtime import Runtime

__all__ = ["version_outlines"]

PRIVATE = "private, no-cache"


async def version_outlines(request: Request) -> Response:
    services: Runtime = request.app.state.services
    context = await build_context(services, request)
    actor = context.actor
    if actor is None:
        return _error(401, context.token_problem or "log in first: this needs a bearer token")
    try:
        image_id = int(request.path_params["image_id"])
        version = int(request.path_params["version"])
    except ValueError:
        return _error(404, "image and version must be whole numbers")
    try:
        encoded = await outlines.version_outlines(services, actor, image_id, version, context.loaders)
    except PermissionDeniedError as error:
        return _error(403, str(error))
    except InvalidInputError as error:
        return _error(404, error.message)
    headers = {"ETag": encoded.etag, "Cache-Control": PRIVATE}
    if etag_matches(request.headers.get("if-none-match"), encoded.etag):
        return Response(status_code=304, headers=headers)
    return Response(encoded.data, media_type=OUTLINES_MEDIA_TYPE, headers=headers)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"error": message}, status_code=status, headers={"Cache-Control": "private, no-store"}
    )
