"""What the errors of an operation say (their ``code``) and how they reach the log.

Every error of an operation passes :meth:`LabSchema.process_errors <server.api.schema.LabSchema>` once,
before it is masked, so this is the one place that logs them:

- a refusal the server expects (bad token, no permission, a limit, an invalid document) is one line at
  INFO with the request id and the code, never with the operation's text or variables: a failed
  ``login`` would otherwise put its password in the log, and anyone could fill the log with tracebacks;
- anything else is unexpected: logged at ERROR with its traceback under the request id that the client
  is shown instead (see :class:`~server.api.extensions.ErrorMasking`).

Where introspection is off, "Did you mean …" suggestions are cut from messages too: they would name the
fields, arguments, types and enum values that introspection hides. The message still says what is wrong.
"""

from __future__ import annotations

import logging
import re

from graphql import GraphQLError, GraphQLSyntaxError

from server.domain.errors import DomainError
from server.exceptions import ClientError, InternalError, QueryLimitError

__all__ = ["PARSE_FAILED", "VALIDATION_FAILED", "code_of", "log_error", "without_suggestions"]

logger = logging.getLogger("server.api")

PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"

_LIMIT_MESSAGES = (
    "exceeds maximum operation depth",  # strawberry's QueryDepthLimiter
    "aliases found. Allowed:",  # strawberry's MaxAliasesLimiter
    "tokens. Parsing aborted.",  # graphql-core's parser, with max_tokens
)
"""How the limits that the libraries check say so; their errors carry no code of their own."""

_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")


def code_of(error: GraphQLError) -> str:
    """The ``code`` of a refusal the GraphQL library made (parsing, validation, variable coercion)."""
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code
    if any(text in error.message for text in _LIMIT_MESSAGES):
        return QueryLimitError.code
    return PARSE_FAILED if isinstance(error, GraphQLSyntaxError) else VALIDATION_FAILED


def without_suggestions(message: str) -> str:
    """``message`` without graphql-core's "Did you mean 'x' or 'y'?" hints."""
    return _SUGGESTION.sub("", message)


def log_error(error: GraphQLError, request_id: str, operation: str | None) -> None:
    """Log ``error`` of the operation ``operation`` (its name) as the module docstring says."""
    original = error.original_error
    # The name is the client's: only a GraphQL name is logged, so it cannot forge or flood log lines.
    where = operation if operation and _NAME.fullmatch(operation) else "an unnamed operation"
    if original is None or isinstance(original, GraphQLError):
        # The library's own messages may quote the literal or variable that was wrong (a password too).
        at = ", ".join(f"{place.line}:{place.column}" for place in error.locations or ())
        logger.info("request %s refused: %s in %s at %s", request_id, code_of(error), where, at or "-")
    elif isinstance(original, InternalError):
        pass  # masked where it happened (a subscription), and logged there with its traceback
    elif isinstance(original, ClientError):
        logger.info("request %s refused: %s in %s: %s", request_id, original.code, where, original)
    elif isinstance(original, DomainError):
        logger.info("request %s refused: BAD_USER_INPUT in %s: %s", request_id, where, original)
    else:
        logger.error("request %s failed in %s", request_id, where, exc_info=original)
