"""Telling the event bus what a mutation changed, after its transaction has committed."""

from __future__ import annotations

from server.api.context import Context
from server.events import Event
from server.services import events

__all__ = ["announce"]


async def announce(context: Context, *changes: Event) -> None:
    """Publish ``changes`` (see :func:`server.services.events.announce`: a bus failure is logged)."""
    await events.announce(context.services, *changes)
