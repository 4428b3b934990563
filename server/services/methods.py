"""The segmentation methods a job may use, with their parameters and models, for anyone logged in.

What :func:`cluster.describe_methods` says, read once per process (the model card and the classical
method's version are files and code that do not change while the server runs) in a worker thread, so the
first caller does not hold up the event loop while the method modules load. No torch is imported.
"""

from __future__ import annotations

import asyncio
import functools

from cluster import MethodInfo, describe_methods
from server.services.permissions import Actor

__all__ = ["segmentation_methods"]

_described = functools.cache(describe_methods)


async def segmentation_methods(actor: Actor) -> list[MethodInfo]:
    """Every method, the default marked; any logged-in ``actor`` may ask (they are the same for all)."""
    del actor
    return await asyncio.to_thread(_described)
