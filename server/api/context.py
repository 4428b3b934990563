"""The per-request context: who is asking (from the bearer token), a request id, fresh DataLoaders."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from strawberry.types import Info as StrawberryInfo

from server.api.loaders import Loaders
from server.api.services import Services
from server.db import users
from server.db.models import User
from server.domain.auth import hash_token
from server.domain.roles import UserRole
from server.exceptions import AuthenticationError

__all__ = ["Context", "Info", "authenticate", "build_context"]


@dataclass
class Context:
    services: Services
    request: Request | None
    user: User | None
    session_id: int | None
    loaders: Loaders
    token_problem: str | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    connection_params: dict[str, Any] | None = None
    """A WebSocket's ``connection_init`` payload (strawberry sets it), where its token comes from."""
    counted_connection: bool = False

    @property
    def address(self) -> str:
        client = self.request.client if self.request is not None else None
        return client.host if client is not None else "unknown"

    @property
    def is_admin(self) -> bool:
        return self.user is not None and self.user.role == UserRole.ADMIN

    def require_user(self) -> User:
        if self.user is None:
            raise AuthenticationError(self.token_problem or "log in first: this needs a bearer token")
        return self.user


Info = StrawberryInfo[Context, Any]


def bearer_token(request: Request) -> tuple[str | None, str | None]:
    """The token of an ``Authorization: Bearer …`` header, or a problem with the header."""
    header = request.headers.get("authorization")
    if header is None:
        return None, None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None, "the Authorization header must be 'Bearer <token>'"
    return token.strip(), None


async def build_context(services: Services, request: Request | None) -> Context:
    token, problem = bearer_token(request) if request is not None else (None, None)
    context = Context(services, request, None, None, Loaders(services.db, None))
    if token is not None:
        await authenticate(context, token)
    else:
        context.token_problem = problem
    return context


async def authenticate(context: Context, token: str, *, long_lived: bool = False) -> bool:
    """Make the session token's user the context's user; ``False`` (and a ``token_problem``) if invalid.

    A WebSocket context lives as long as its connection, so it gets loaders that cache nothing
    (``long_lived``): a role taken away meanwhile applies to the next subscription.
    """
    services = context.services
    async with services.db() as db:
        found = await users.user_by_token(db, hash_token(token))
    if found is None:
        context.token_problem = "the session token is invalid, expired or revoked; log in again"
        return False
    context.user, session = found
    context.session_id = session.id
    batched = services.settings.dataloader_batching and not long_lived
    context.loaders = Loaders(services.db, context.user.id, batched=batched)
    context.loaders.prime_user(context.user)
    return True
