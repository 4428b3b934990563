"""The strawberry ASGI app at ``/graphql``: GraphiQL only in development, context built per request.

WebSocket connections speak only ``graphql-transport-ws`` (the legacy ``graphql-ws`` protocol is off) and
authenticate in ``connection_init``: ``{"authorization": "Bearer <token>"}``. A connection without a valid
token, or beyond ``max_connections_per_user``, is closed with 4403; each connection may hold at most
``max_subscriptions_per_connection`` subscriptions.

The session is read again before every operation on the socket (a ``subscribe`` message), so one that has
ended since ``connection_init`` (logout, expiry, a disabled user) starts nothing: the operation gets an
``UNAUTHENTICATED`` error. Subscriptions already running end by themselves (:mod:`server.services.watches`).
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.types.unset import UNSET, UnsetType

from server.api.context import Context, authenticate, build_context, refresh_session
from server.api.extensions import errors_masked
from server.api.schema import build_schema
from server.exceptions import AuthenticationError, ClientError
from server.services.runtime import Runtime

__all__ = ["GraphQLApp"]

logger = logging.getLogger("server.api")

_connection: contextvars.ContextVar[list[Context]] = contextvars.ContextVar("graphql_ws_connection")


class _SessionCheckingHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, with the connection's session read again before each operation runs."""

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        context = self.context
        try:
            with errors_masked(context.request_id):
                if not await refresh_session(context):
                    raise AuthenticationError(context.token_problem or "log in again")
        except ClientError as refused:
            if isinstance(refused, AuthenticationError):
                logger.info("request %s refused: %s on a WebSocket", context.request_id, refused.code)
            error = GraphQLError(str(refused), extensions=refused.extensions)
            await operation.send_initial_errors([error])
            return
        await super().run_operation(operation)


class GraphQLApp(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = _SessionCheckingHandler

    def __init__(self, services: Runtime) -> None:
        settings = services.settings
        super().__init__(
            build_schema(settings),
            graphql_ide="graphiql" if settings.graphiql else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
        )
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await super().__call__(scope, receive, send)
            return
        contexts: list[Context] = []
        _connection.set(contexts)
        try:
            await super().__call__(scope, receive, send)
        finally:
            for context in contexts:  # the connection is over: it no longer counts against its user
                if context.counted_connection and context.user is not None:
                    self.services.websockets[context.user.id] -= 1

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        if isinstance(request, Request):
            return await build_context(self.services, request)
        context = await build_context(self.services, None)
        context.connection_params = {}
        _connection.get().append(context)
        return context

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        params = context.connection_params or {}
        header = str(params.get("authorization") or params.get("Authorization") or "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ConnectionRejectionError({"message": 'send {"authorization": "Bearer <token>"}'})
        if not await authenticate(context, token.strip(), long_lived=True):
            raise ConnectionRejectionError({"message": context.token_problem})
        assert context.user is not None
        open_here = self.services.websockets
        if open_here[context.user.id] >= self.services.settings.max_connections_per_user:
            raise ConnectionRejectionError({"message": "too many open connections for this user"})
        open_here[context.user.id] += 1
        context.counted_connection = True
        accepted: UnsetType = UNSET
        return accepted

    async def get_root_value(self, request: Any) -> None:
        return None
