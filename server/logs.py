"""The server process's logging: uvicorn's, with an access log that shows paths but no query strings.

A query string may hold what must not be logged: a GraphQL operation sent with GET, with its literal
arguments and variables (a ``login``'s password, even when GET refuses the mutation), or the signature of
an ``/img`` or ``/api/blobs`` URL, which lets whoever reads it fetch the image until it expires.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from uvicorn.config import LOGGING_CONFIG

__all__ = ["WithoutQueryString", "log_config"]


class WithoutQueryString(logging.Filter):
    """Cut the query string from uvicorn's access log lines (``client - "METHOD path HTTP/x" status``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            path = args[2].partition("?")[0]
            record.args = (args[0], args[1], f"{path}?…", *args[3:])
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's logging configuration, with :class:`WithoutQueryString` on the access log."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["without_query_string"] = {"()": WithoutQueryString}
    config["handlers"]["access"]["filters"] = ["without_query_string"]
    return config
