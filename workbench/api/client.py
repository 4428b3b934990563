"""Queries and mutations over HTTP: gql on httpx, operations sent by name, errors a person can act on.

One :class:`LabClient` per server and sign-in. It holds the session token and sends it with every
request; :meth:`LabClient.login` and :meth:`LabClient.use_token` (a token kept from an earlier run, or one
the offline server's bootstrap handed over) set it. Subscriptions go over
:class:`~workbench.api.live.LiveChannel`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.exceptions import (
    TransportClosed,
    TransportConnectionFailed,
    TransportQueryError,
    TransportServerError,
)
from gql.transport.httpx import HTTPXAsyncTransport
from graphql import OperationType

from workbench.api.errors import ApiError, RateLimitedError, ServerUnreachableError, error_of
from workbench.api.operations import operation

__all__ = ["LabClient", "SignedIn"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignedIn:
    token: str
    expires_at: str
    user_id: int
    username: str
    role: str


class LabClient:
    """A connection to one server's ``/graphql`` (``url`` is the server's base URL).

    ``transport`` replaces httpx's network transport (tests pass ``httpx.ASGITransport(app)``).
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        extra: dict[str, Any] = {"transport": transport} if transport is not None else {}
        self._client = Client(
            transport=HTTPXAsyncTransport(url=f"{self.url}/graphql", timeout=timeout, **extra),
            fetch_schema_from_transport=False,
        )
        self._session: AsyncClientSession | None = None

    async def __aenter__(self) -> LabClient:
        self._session = await self._client.connect_async()  # type: ignore[no-untyped-call]  # untyped in gql
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._session = None
        await self._client.close_async()  # type: ignore[no-untyped-call]

    def use_token(self, token: str | None) -> None:
        self.token = token

    async def call(self, name: str, /, **variables: Any) -> dict[str, Any]:
        """Run the query or mutation ``name`` (see :mod:`workbench.api.operations`) and return its data.

        Raises :class:`ApiError` (or a subclass) when the server refuses, :class:`ServerUnreachableError`
        when it does not answer.
        """
        found = operation(name)
        if found.kind is OperationType.SUBSCRIPTION:
            raise TypeError(f"{name} is a subscription: use LiveChannel.subscribe")
        if self._session is None:
            raise RuntimeError("use the client inside `async with`")
        request = GraphQLRequest(found.text, variable_values=variables or None, operation_name=name)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            data = await self._session.execute(request, extra_args={"headers": headers})
        except TransportQueryError as refused:
            raise error_of(_first_error(refused)) from refused
        except TransportServerError as refused:  # an HTTP error status without a GraphQL answer
            message = f"the server answered HTTP {refused.code}: {refused}"
            raise ApiError(message, f"HTTP_{refused.code}") from None
        except (TransportConnectionFailed, TransportClosed, httpx.TransportError) as lost:
            raise ServerUnreachableError(f"no answer from {self.url}: {lost}") from lost
        return dict(data)

    async def login(self, username: str, password: str) -> SignedIn:
        """Sign in; the client then sends the new session's token. Raises :class:`ApiError` with code
        ``INVALID_CREDENTIALS`` for a wrong name or password, :class:`RateLimitedError` after too many."""
        answer = await self.call("Login", username=username, password=password)
        return self._signed_in(answer["login"])

    async def exchange_bootstrap_token(self, token: str) -> SignedIn:
        """Sign in with the one-time token the offline server printed (or ``spheroseg server
        bootstrap-token`` issued); refused as :meth:`login` is when it was used already or expired."""
        answer = await self.call("ExchangeBootstrapToken", token=token)
        return self._signed_in(answer["exchangeBootstrapToken"])

    def _signed_in(self, answer: Mapping[str, Any]) -> SignedIn:
        kind = answer["__typename"]
        if kind == "RateLimited":
            raise RateLimitedError(
                answer["message"], "RATE_LIMITED", {"retryAfterSeconds": answer["retryAfterSeconds"]}
            )
        if kind != "LoginSuccess":
            raise ApiError(answer["message"], "INVALID_CREDENTIALS")
        user = answer["user"]
        self.token = answer["token"]
        return SignedIn(answer["token"], answer["expiresAt"], user["id"], user["username"], user["role"])

    async def logout(self) -> None:
        await self.call("Logout")
        self.token = None


def _first_error(refused: TransportQueryError) -> Mapping[str, Any]:
    errors = refused.errors or [{"message": str(refused)}]
    first = errors[0]
    return first if isinstance(first, Mapping) else {"message": str(first)}
