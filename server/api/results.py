"""Members shared by the ``…Result`` unions: the expected ways an operation can fail."""

from __future__ import annotations

import strawberry

from server.domain.errors import InvalidInputError
from server.exceptions import RateLimitedError

__all__ = ["InputError", "OperationInfo", "RateLimited", "input_error"]


@strawberry.type(description="An argument was wrong; `field` names it.")
class InputError:
    field: str = strawberry.field(
        description="The argument or input field that was wrong, in the operation's spelling (e.g. `name`, "
        "`imageIds`); show the message next to it."
    )
    message: str = strawberry.field(description="What was wrong and what would be accepted, for the user.")


@strawberry.type(description="Too many requests of this kind; try again after `retryAfterSeconds`.")
class RateLimited:
    message: str = strawberry.field(description="What was refused and when to try again, for the user.")
    retry_after_seconds: float = strawberry.field(
        description="Seconds to wait before sending the same request again (one decimal); nothing was done."
    )


@strawberry.type(description="The operation succeeded and has nothing more to say.")
class OperationInfo:
    message: str = strawberry.field(description="What was done, in words (for a log or a status bar).")


def input_error(error: InvalidInputError) -> InputError:
    return InputError(field=error.field, message=error.message)


def rate_limited(what: str, retry_after: float) -> RateLimited:
    return RateLimited(
        message=f"too many {what}; try again in {retry_after:.0f} s",
        retry_after_seconds=round(retry_after, 1),
    )


def rate_limited_result(error: RateLimitedError) -> RateLimited:
    """A service's refusal as the union member (same message as :func:`rate_limited`)."""
    return RateLimited(message=str(error), retry_after_seconds=round(error.retry_after, 1))


__all__ += ["rate_limited", "rate_limited_result"]
