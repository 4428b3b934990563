"""What can go wrong talking to a server, in terms a person can act on.

::

    ApiError                    the server answered with an error (``code`` as the server names it)
    ├── NotSignedInError            no session, or it ended: sign in again
    ├── ForbiddenError              signed in, but not allowed (or the thing does not exist for you)
    └── RateLimitedError            too many requests: wait ``retry_after`` seconds
    ServerUnreachableError      no answer at all (server down, network lost, timeout): retry later
    └── ChannelClosedError          the live channel was closed here (the workspace closed or restarted)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "ApiError",
    "ChannelClosedError",
    "ForbiddenError",
    "NotSignedInError",
    "RateLimitedError",
    "ServerUnreachableError",
    "error_of",
]


class ApiError(Exception):
    """The server refused an operation; ``message`` is the server's, safe to show."""

    def __init__(self, message: str, code: str = "BAD_REQUEST", extensions: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.extensions = dict(extensions or {})


class NotSignedInError(ApiError):
    """The session is missing, expired or was ended (logout, revoked, account disabled)."""


class ForbiddenError(ApiError):
    pass


class RateLimitedError(ApiError):
    @property
    def retry_after(self) -> float:
        return float(self.extensions.get("retryAfterSeconds", 1.0))


class ServerUnreachableError(Exception):
    """No answer from the server: it is down, the network is gone, or it did not answer in time."""


class ChannelClosedError(ServerUnreachableError):
    """The live channel a subscription waited on was closed by this program (the workspace closed, or
    the offline server restarted under a new one): nothing more will come through it."""


_BY_CODE: dict[str, type[ApiError]] = {
    "UNAUTHENTICATED": NotSignedInError,
    "FORBIDDEN": ForbiddenError,
    "RATE_LIMITED": RateLimitedError,
}


def error_of(error: Mapping[str, Any]) -> ApiError:
    """The exception for one entry of a GraphQL response's ``errors``."""
    extensions: Mapping[str, Any] = error.get("extensions") or {}
    code = str(extensions.get("code", "BAD_REQUEST"))
    return _BY_CODE.get(code, ApiError)(str(error.get("message", "the server refused")), code, extensions)
