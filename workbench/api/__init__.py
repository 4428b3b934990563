"""The only code of the workbench that speaks to a server: queries and mutations over HTTP
(:class:`LabClient`), subscriptions over one WebSocket (:class:`LiveChannel`), operations by name from the
``.graphql`` files in ``operations/`` (checked against the server's exported schema by a test)."""

from workbench.api.client import LabClient, SignedIn
from workbench.api.errors import (
    ApiError,
    ChannelClosedError,
    ForbiddenError,
    NotSignedInError,
    RateLimitedError,
    ServerUnreachableError,
)
from workbench.api.live import Backoff, ChannelState, LiveChannel, Resumed, StateChange
from workbench.api.operations import Operation, operation, operations

__all__ = [
    "ApiError",
    "Backoff",
    "ChannelClosedError",
    "ChannelState",
    "ForbiddenError",
    "LabClient",
    "LiveChannel",
    "NotSignedInError",
    "Operation",
    "RateLimitedError",
    "Resumed",
    "ServerUnreachableError",
    "SignedIn",
    "StateChange",
    "operation",
    "operations",
]
