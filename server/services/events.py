"""Telling the event bus what a service changed, after its transaction has committed."""

from __future__ import annotations

import logging

from server.events import Event
from server.exceptions import EventBusError
from server.services.runtime import Runtime

__all__ = ["announce"]

log = logging.getLogger(__name__)


async def announce(runtime: Runtime, *events: Event) -> None:
    """Publish ``events``; a bus that cannot take them is logged, not raised: the change is committed
    already, and watchers re-read the database when they learn they missed something."""
    for event in events:
        try:
            await runtime.bus.publish(event)
        except EventBusError as error:
            log.warning("event %s not published: %s", event.kind.value, error)
