"""Errors the server raises on purpose.

Expected failures of a GraphQL operation are typed results (``…Result`` unions), not exceptions; these
classes cover the rest: configuration, storage and the request-level refusals that become GraphQL errors
with a ``code`` extension::

    ServerError
    ├── ConfigError               a setting is missing or invalid (names the ``SPHEROSEG_…`` variable)
    ├── StorageError              the blob store could not be reached or refused an operation
    │   ├── BlobNotFoundError         no blob under that key
    │   └── InvalidKeyError           a key that is no content hash or export name (never a client name)
    ├── EventBusError             an event could not be published (bus closed, database unreachable)
    ├── ClusterUnavailableError   the Dask cluster cannot be started, reached, or changed from here
    └── ClientError               the request is refused; the message is safe to show (code in ``code``)
        ├── AuthenticationError       no, forged, expired or revoked bearer token   (UNAUTHENTICATED)
        ├── PermissionDeniedError     the user may not do this, or it does not exist (FORBIDDEN)
        ├── QueryLimitError           depth, alias, token or cost limit exceeded     (QUERY_TOO_COMPLEX)
        ├── RequestTooLargeError      a body or WebSocket message over the size limit (REQUEST_TOO_LARGE)
        └── RateLimitedError          too many requests; ``retry_after`` in seconds  (RATE_LIMITED)

Refusals made by the GraphQL library itself carry a code too (:mod:`server.api.errors`): a document that
does not parse ``GRAPHQL_PARSE_FAILED``, one that is invalid for the schema or has invalid variables
``GRAPHQL_VALIDATION_FAILED``, and the depth, alias and token limits ``QUERY_TOO_COMPLEX``.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "BlobNotFoundError",
    "ClientError",
    "ClusterUnavailableError",
    "ConfigError",
    "EventBusError",
    "InvalidKeyError",
    "PermissionDeniedError",
    "QueryLimitError",
    "RateLimitedError",
    "RequestTooLargeError",
    "ServerError",
    "StorageError",
]


class ServerError(Exception):
    """Base class of every error the server raises on purpose."""


class ConfigError(ServerError):
    """A setting is missing or invalid."""


class StorageError(ServerError):
    """The blob store could not be reached or refused an operation."""


class BlobNotFoundError(StorageError):
    """No blob is stored under the key."""


class InvalidKeyError(StorageError):
    """A key that the store does not accept (keys are content hashes or server-made export names)."""


class EventBusError(ServerError):
    """The event bus could not publish or connect (it is closed, or its database did not answer in time)."""


class ClusterUnavailableError(ServerError):
    """The Dask cluster could not be started or reached, or may not be changed from here."""


class ClientError(ServerError):
    """A refusal whose message is safe to show to the client; ``code`` goes into the error's extensions."""

    code = "BAD_REQUEST"

    def __init__(self, message: str, **extensions: object) -> None:
        super().__init__(message)
        self.extensions: dict[str, object] = {"code": self.code, **extensions}


class InternalError(ClientError):
    """What the client sees of an unexpected failure: a request id to quote (the details are logged)."""

    code = "INTERNAL"

    def __init__(self, request_id: str) -> None:
        super().__init__(
            f"internal server error; quote request id {request_id} when reporting it", requestId=request_id
        )


class AuthenticationError(ClientError):
    code = "UNAUTHENTICATED"


class PermissionDeniedError(ClientError):
    code = "FORBIDDEN"


class QueryLimitError(ClientError):
    code = "QUERY_TOO_COMPLEX"


class RequestTooLargeError(ClientError):
    """A request body over ``max_request_bytes`` (answered 413 before it is read in full)."""

    code = "REQUEST_TOO_LARGE"

    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            f"the request is larger than this server accepts ({max_bytes} bytes, "
            "SPHEROSEG_MAX_REQUEST_BYTES); send less at a time (fewer items per mutation), "
            "and upload images through /api/projects/<id>/images",
            maxBytes=max_bytes,
        )
        self.max_bytes = max_bytes


class RateLimitedError(ClientError):
    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message, retryAfterSeconds=round(retry_after, 1))
        self.retry_after = retry_after
