"""The Starlette application: ``/graphql``, uploads, signed blob downloads, outlines with a token, health
and Prometheus metrics.

``create_app(Settings())`` builds everything from settings; tests pass their own settings and talk to it
in-process through ``httpx.ASGITransport``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute

from server.api.body_limit import BodyLimitMiddleware
from server.api.graphql_app import GraphQLApp
from server.api.outlines import version_outlines
from server.api.upload import upload_images
from server.composition import Services
from server.delivery import CacheControlMiddleware, ImageEndpoint
from server.exceptions import BlobNotFoundError, InvalidKeyError
from server.services import blobs, health
from server.settings import Settings

__all__ = ["create_app"]


async def live(request: Request) -> JSONResponse:
    return JSONResponse({"status": "live"})


async def ready(request: Request) -> JSONResponse:
    checks = await health.readiness(request.app.state.services)
    healthy = all(value == health.OK for value in checks.values())
    return JSONResponse(
        {"status": "ready" if healthy else "not ready", **checks}, status_code=200 if healthy else 503
    )


async def metrics(request: Request) -> Response:
    services: Services = request.app.state.services
    await services.refresh_metrics()
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def blob(request: Request) -> Response:
    """A signed download link of the store, streamed from the store whatever it is."""
    query = request.query_params
    try:
        download = await blobs.signed_download(
            request.app.state.services,
            request.path_params["key"],
            query.get("kid", ""),
            int(query.get("expires", "0")),
            query.get("signature", ""),
        )
    except (ValueError, InvalidKeyError, BlobNotFoundError):
        return PlainTextResponse("not found", status_code=404)
    if download is None:
        return PlainTextResponse("the link is invalid or has expired; ask for a new one", status_code=403)
    return StreamingResponse(
        download.chunks, media_type=download.media_type, headers={"Content-Length": str(download.size)}
    )


def create_app(settings: Settings | None = None, services: Services | None = None) -> Starlette:
    services = services or Services.create(settings or Settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await services.start()
        yield
        await services.close()

    graphql = GraphQLApp(services)
    images = ImageEndpoint(services.delivery, services.db, services.keyring)
    app = Starlette(
        routes=[
            Route("/health/live", live),
            Route("/health/ready", ready),
            Route("/metrics", metrics),
            Route("/api/projects/{project_id}/images", upload_images, methods=["POST"]),
            Route("/api/blobs/{key:path}", blob),
            Route("/api/images/{image_id}/segmentations/{version}/geometry", version_outlines),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/img/{path:path}", images, methods=["GET", "HEAD"]),
        ],
        middleware=[
            Middleware(CacheControlMiddleware),
            Middleware(BodyLimitMiddleware, max_bytes=services.settings.max_request_bytes),
        ],
        lifespan=lifespan,
    )
    app.state.services = services
    return app
