"""Sliding-window rate limits kept in memory (one server process; a lab with replicas shares per replica).

``RateLimiter(limit=5, window=60.0).hit("login:alice")`` returns 0 while fewer than ``limit`` hits fell in
the last ``window`` seconds, else the seconds to wait until the oldest leaves the window.

:class:`LoginLimits` applies three to logins, narrowest first: per user name *and* client address (low, so
one client cannot guess much), per client address (any user names), per user name from every address
(much higher, so one attacker's refused guesses cannot lock the real user out from their own desk). An
attempt refused by a narrower limit is not counted by the wider ones.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["LoginLimits", "RateLimiter"]


class RateLimiter:
    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str) -> float:
        """Record a hit on ``key`` unless over the limit; return 0, or the seconds until one is allowed."""
        now = self._clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(hits[0] + self.window - now, 0.001)
        hits.append(now)
        if len(self._hits) > 100_000:
            self._forget_idle(now)
        return 0.0

    def reset(self, key: str) -> None:
        self._hits.pop(key, None)

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, hits in self._hits.items() if not hits or hits[-1] <= now - self.window]:
            del self._hits[key]


class LoginLimits:
    """The three login limits, per minute: ``per_user_and_address``, ``per_address``, ``per_user``."""

    def __init__(
        self,
        per_user_and_address: int,
        per_address: int,
        per_user: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limiters = (
            RateLimiter(per_user_and_address, 60.0, clock),
            RateLimiter(per_address, 60.0, clock),
            RateLimiter(per_user, 60.0, clock),
        )

    def hit(self, username: str, address: str) -> float:
        """Count a login attempt; 0, or the seconds until one is allowed (nothing counted then)."""
        name = username.casefold()
        keys = (f"{name}\x00{address}", address, name)
        for limiter, key in zip(self._limiters, keys, strict=True):
            wait = limiter.hit(key)
            if wait:
                return wait
        return 0.0
