"""The per-request context: who is asking (from the bearer token), a request id, fresh DataLoaders."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from strawberry.types import Info as StrawberryInfo

from server.api.cost import CostAccount
from server.api.loaders import Loaders
from server.db.models import User
from server.domain.roles import UserRole
from server.exceptions import AuthenticationError
from server.services import sessions
from server.services.permissions import Actor
from server.services.runtime import Runtime

__all__ = ["Context", "Info", "authenticate", "build_context", "refresh_session"]

SESSION_ENDED = "your session has ended (logged out, expired or the account disabled); log in again"


@dataclass
class Context:
    services: Runtime
    request: Request | None
    user: User | None
    session_id: int | None
    loaders: Loaders
    token_problem: str | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    connection_params: dict[str, Any] | None = None
    """A WebSocket's ``connection_init`` payload (strawberry sets it), where its token comes from."""
    counted_connection: bool = False
    cost: CostAccount | None = None
    """The operation's cost and budget, once :class:`~server.api.extensions.CostLimit` has estimated it."""
    session_expires_at: dt.datetime | None = None
    """When the session ends by itself; an open subscription ends then (:mod:`server.services.watches`)."""

    @property
    def address(self) -> str:
        client = self.request.client if self.request is not None else None
        return client.host if client is not None else "unknown"

    @property
    def is_admin(self) -> bool:
        return self.user is not None and self.user.role == UserRole.ADMIN

    @property
    def actor(self) -> Actor | None:
        """Who asks, as services take it (``None``: nobody logged in)."""
        return Actor.of(self.user) if self.user is not None else None

    def require_actor(self) -> Actor:
        return Actor.of(self.require_user())

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


async def build_context(services: Runtime, request: Request | None) -> Context:
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
    found = await sessions.authenticate(services, token)
    if found is None:
        context.token_problem = "the session token is invalid, expired or revoked; log in again"
        return False
    context.user, session = found
    context.session_id = session.id
    context.session_expires_at = session.expires_at
    batched = services.settings.dataloader_batching and not long_lived
    context.loaders = Loaders(services.db, context.user.id, batched=batched)
    context.loaders.prime_user(context.user)
    return True


async def refresh_session(context: Context) -> bool:
    """Read the context's session again: ``False`` (and a ``token_problem``) once it has ended; while it is
    live, the user as stored now, so a role changed meanwhile applies to what the context does next, and
    the session's expiry as stored now (renewed meanwhile, perhaps)."""
    if context.session_id is None:  # anonymous: no session that could have ended
        return context.user is None
    found = await sessions.live_session(context.services, context.session_id)
    if found is None:
        context.token_problem = SESSION_ENDED
        return False
    context.user, session = found
    context.session_expires_at = session.expires_at
    return True
