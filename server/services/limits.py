"""The per-user budget of expensive operations (saves, exports, segmentation runs)."""

from __future__ import annotations

from server.exceptions import RateLimitedError
from server.services.permissions import Actor
from server.services.runtime import Runtime

__all__ = ["spend_expensive"]


def spend_expensive(runtime: Runtime, actor: Actor, kind: str, what: str) -> None:
    """Count one ``kind`` operation of ``actor`` against ``expensive_mutations_per_minute``;
    :class:`RateLimitedError` (saying ``too many <what>`` and when to try again) once it is spent."""
    wait = runtime.expensive.hit(f"{kind}:{actor.user_id}")
    if wait:
        raise RateLimitedError(f"too many {what}; try again in {wait:.0f} s", wait)
