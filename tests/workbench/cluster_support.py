"""For the desktop's cluster tests: waiting for a cluster model to show something."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from workbench.clusters import ClusterModel, ClusterView

NO_POLL = 3600.0
"""``poll_seconds`` for a model that only events may move."""


async def until(
    model: ClusterModel, wanted: Callable[[ClusterView], bool], timeout: float = 60.0
) -> ClusterView:
    """The model's view once ``wanted`` holds, waiting for its listeners to be told."""
    changed = asyncio.Event()
    disconnect = model.changed.connect(lambda _view: changed.set())
    try:
        async with asyncio.timeout(timeout):
            while not wanted(model.view):
                changed.clear()
                await changed.wait()
    finally:
        disconnect()
    return model.view
