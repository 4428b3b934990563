"""Queries and mutations over HTTP: gql on httpx, operations sent by name, errors a person can act on.

One :class:`LabClient` per server and sign-in. It holds the session token and sends it with every
request; :meth:`LabClient.login` and :meth:`LabClient.use_token` (a token kept from an earlier run, or one
the offline server's bootstrap handed over) set it. Subscriptions go over
:class:`~workbench.api.live.LiveChannel`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, cast

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

from workbench.api.errors import (
    ApiError,
    ForbiddenError,
    NotSignedInError,
    RateLimitedError,
    ServerUnreachableError,
    error_of,
)
from workbench.api.operations import operation

__all__ = ["NDJSON", "LabClient", "SignedIn"]

NDJSON = "application/x-ndjson"

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
        # uploads are plain HTTP (multipart, answered a line per file), beside GraphQL
        self._http = httpx.AsyncClient(base_url=self.url, timeout=httpx.Timeout(timeout, write=None), **extra)

    async def __aenter__(self) -> LabClient:
        self._session = await self._client.connect_async()  # type: ignore[no-untyped-call]  # untyped in gql
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._session = None
        await self._client.close_async()  # type: ignore[no-untyped-call]
        await self._http.aclose()

    async def upload(
        self, project_id: int, files: Sequence[tuple[str, Path]], on_sent: Callable[[int], None] | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Send ``files`` (name, path) to the project in one request, streamed from disk, and yield the
        server's answer for each file as soon as it is stored or refused (``accepted``, ``imageId`` or
        ``reason``), then its summary (``done``; with ``error`` when the request was cut short).
        ``on_sent`` hears the bytes of the files as they go out."""
        headers = {"Accept": NDJSON, **({"Authorization": f"Bearer {self.token}"} if self.token else {})}
        with contextlib.ExitStack() as opened:
            parts = [
                (
                    "files",
                    (
                        name,
                        _counted(opened.enter_context(path.open("rb")), on_sent),
                        "application/octet-stream",
                    ),
                )
                for name, path in files
            ]
            try:
                async with self._http.stream(
                    "POST", f"/api/projects/{project_id}/images", files=parts, headers=headers
                ) as response:
                    if response.headers.get("content-type", "").split(";")[0] != NDJSON:
                        body = await response.aread()
                        raise _refusal(response.status_code, body)
                    async for line in response.aiter_lines():
                        if line.strip():
                            yield json.loads(line)
            except httpx.TransportError as lost:
                raise ServerUnreachableError(f"the upload to {self.url} broke off: {lost}") from lost

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


class _Counted:
    """A file as httpx reads it for a multipart body, telling ``on_sent`` how many bytes went out."""

    def __init__(self, file: BinaryIO, on_sent: Callable[[int], None] | None) -> None:
        self._file = file
        self._on_sent = on_sent

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(size)
        if chunk and self._on_sent is not None:
            self._on_sent(len(chunk))
        return chunk

    def __getattr__(self, name: str) -> Any:  # seek, tell, name: as the file has them
        return getattr(self._file, name)


def _counted(file: BinaryIO, on_sent: Callable[[int], None] | None) -> BinaryIO:
    # httpx reads a multipart file with read(), and sizes it with fileno()/seek()/tell(): all the file's
    return cast(BinaryIO, _Counted(file, on_sent))


def _refusal(status: int, body: bytes) -> ApiError:
    """A request refused as a whole (no line per file): its ``error``, with the HTTP status as code."""
    try:
        message = str(json.loads(body).get("error") or body[:200])
    except ValueError:
        message = body[:200].decode(errors="replace")
    error_type = NotSignedInError if status == 401 else ForbiddenError if status == 403 else ApiError
    return error_type(message, f"HTTP_{status}")


def _first_error(refused: TransportQueryError) -> Mapping[str, Any]:
    errors = refused.errors or [{"message": str(refused)}]
    first = errors[0]
    return first if isinstance(first, Mapping) else {"message": str(first)}
