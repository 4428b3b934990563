"""Errors nobody caught: logged with their traceback and shown as a notice, and the window goes on.

Two places catch what escapes: ``sys.excepthook`` (an exception raised in a Qt slot or a virtual method:
PySide6 hands it there instead of letting it end the program) and the asyncio loop's exception handler
(a task that failed and that nobody awaited)."""

from __future__ import annotations

import asyncio
import logging
import sys
import traceback
from collections.abc import Callable
from types import TracebackType
from typing import Any

from workbench.tasks import Level, Notice, Notices

__all__ = ["install_error_hooks", "notice_of_fault"]

logger = logging.getLogger(__name__)

ADVICE = (
    "The window goes on working. If it happens again, restart the workbench and send its log to whoever "
    "looks after SpheroSeg."
)


def notice_of_fault(error: BaseException) -> Notice:
    details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return Notice(
        Level.ERROR,
        f"Something went wrong in the workbench: {error or type(error).__name__}",
        ADVICE,
        details,
    )


def install_error_hooks(notices: Notices, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Send uncaught errors to ``notices``; returns the function that puts the previous hooks back."""
    previous_hook = sys.excepthook
    previous_handler = loop.get_exception_handler()

    def excepthook(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            previous_hook(kind, error, trace)
            return
        logger.error("uncaught error", exc_info=(kind, error, trace))
        notices.add(notice_of_fault(error.with_traceback(trace)))

    def handler(event_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if not isinstance(error, BaseException):
            logger.error("asyncio: %s", context.get("message"))
            return
        logger.error("uncaught error in %s", context.get("message"), exc_info=error)
        notices.add(notice_of_fault(error))

    sys.excepthook = excepthook
    loop.set_exception_handler(handler)

    def uninstall() -> None:
        sys.excepthook = previous_hook
        loop.set_exception_handler(previous_handler)

    return uninstall
