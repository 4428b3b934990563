"""The strawberry ASGI app at ``/graphql``: GraphiQL only in development, context built per request."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from server.api.context import Context, build_context
from server.api.schema import build_schema
from server.api.services import Services

__all__ = ["GraphQLApp"]


class GraphQLApp(GraphQL[Context, None]):
    def __init__(self, services: Services) -> None:
        settings = services.settings
        super().__init__(
            build_schema(settings),
            graphql_ide="graphiql" if settings.graphiql else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        )
        self.services = services

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        return await build_context(self.services, request if isinstance(request, Request) else None)

    async def get_root_value(self, request: Any) -> None:
        return None
