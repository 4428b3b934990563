"""Schema extensions: the cost budget, Prometheus metrics, masking of unexpected errors, and a parser cache
whose refusals reach that masking."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from graphql import ExecutionResult, FragmentDefinitionNode, GraphQLError, OperationDefinitionNode
from strawberry.extensions import FieldExtension, ParserCache, SchemaExtension

from server.api.context import Context, Info
from server.api.cost import MAX_LIST_SIZE, CostAccount, list_overrun, query_cost
from server.api.errors import code_of
from server.domain.errors import DomainError
from server.exceptions import ClientError, InternalError, QueryLimitError

__all__ = ["CachedParser", "CostLimit", "CountedList", "ErrorMasking", "OperationMetrics"]

logger = logging.getLogger("server.api")


class CostLimit(SchemaExtension):
    """Refuse an operation whose cost (see :mod:`server.api.cost`) is over the budget, before executing it."""

    max_cost = 5_000
    max_list_size = MAX_LIST_SIZE
    cost: int | None = None

    @classmethod
    def with_budget(cls, max_cost: int, max_list_size: int = MAX_LIST_SIZE) -> type[CostLimit]:
        """A subclass with this budget (strawberry makes one instance per request of a class);
        ``max_list_size`` is the longest list a slicing argument lets through (the largest page)."""
        return type("CostLimit", (cls,), {"max_cost": max_cost, "max_list_size": max_list_size})

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        operation = _operation(document.definitions if document else (), ctx.operation_name)
        if operation is not None:
            fragments = (
                {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
                if document
                else {}
            )
            self.cost = query_cost(
                ctx.schema._schema, operation, fragments, ctx.variables, max_list_size=self.max_list_size
            )
            ctx.context.cost = CostAccount(self.cost, self.max_cost, self.max_list_size)
            if self.cost > self.max_cost:
                ctx.result = ExecutionResult(
                    data=None,
                    errors=[
                        GraphQLError(
                            f"the query costs {self.cost}, over the budget of {self.max_cost}; "
                            "ask for fewer items "
                            "(smaller `first`) or fewer nested lists",
                            extensions={
                                "code": "QUERY_TOO_COMPLEX",
                                "cost": self.cost,
                                "maxCost": self.max_cost,
                            },
                        )
                    ],
                )
        yield

    def get_results(self) -> dict[str, Any]:
        return {"cost": {"requested": self.cost, "maximum": self.max_cost}} if self.cost is not None else {}


class CountedList(FieldExtension):
    """On a list without a slicing argument: once resolved, its items beyond the ``assumedSize`` the
    estimate counted are added to the operation's cost, and the operation is refused (before those items
    are resolved) if that takes it over the budget. The estimate can then never be beaten by a list that
    turns out long, such as the spheroids of a crowded image asked for under thirty aliases."""

    async def resolve_async(self, next_: Any, source: Any, info: Info, **kwargs: Any) -> Any:
        items = await next_(source, info, **kwargs)
        account = info.context.cost
        if account is None or items is None:
            return items
        account.spent += list_overrun(info._raw_info, len(items), max_list_size=account.max_list_size)
        if account.spent > account.maximum:
            raise QueryLimitError(
                f"the query costs at least {account.spent} with the lists as long as they are, over the "
                f"budget of {account.maximum}; ask for fewer fields or fewer aliases of {info.field_name}",
                cost=account.spent,
                maxCost=account.maximum,
            )
        return items


def _operation(definitions: Any, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name is not None and o.name.value == name), None)


class CachedParser(ParserCache):
    """strawberry's parser cache, except that a document it cannot parse (a syntax error, or more tokens
    than allowed) is left to strawberry to parse again: raised from here, the error would skip every
    extension's ``on_operation`` and reach the client without a ``code``."""

    def on_parse(self) -> Iterator[None]:
        try:
            yield from super().on_parse()
        except GraphQLError:
            self.execution_context.graphql_document = None
            yield


class OperationMetrics(SchemaExtension):
    """Count operations, errors and latency per operation name."""

    def on_operation(self) -> Iterator[None]:
        start = time.perf_counter()
        yield
        ctx = self.execution_context
        context: Context = ctx.context
        name = ctx.operation_name or "anonymous"
        metrics = context.services.metrics
        metrics.requests.labels(name).inc()
        metrics.latency.labels(name).observe(time.perf_counter() - start)
        if ctx.result is not None and ctx.result.errors:
            metrics.errors.labels(name).inc()


class ErrorMasking(SchemaExtension):
    """Show expected errors as they are, with a ``code``; replace unexpected ones by a request id, logged."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None or not result.errors:
            return
        context: Context = self.execution_context.context
        result.errors = [self._shown(error, context.request_id) for error in result.errors]

    @staticmethod
    def _shown(error: GraphQLError, request_id: str) -> GraphQLError:
        original = error.original_error
        if original is None or isinstance(original, GraphQLError):
            # the library refused the document (parsing, validation, variables, a limit)
            extensions = {**(error.extensions or {}), "code": code_of(error)}
            return GraphQLError(
                error.message, error.nodes, error.source, error.positions, error.path, extensions=extensions
            )
        if isinstance(original, ClientError):
            return GraphQLError(
                str(original),
                error.nodes,
                error.source,
                error.positions,
                error.path,
                extensions=original.extensions,
            )
        if isinstance(original, DomainError):
            return GraphQLError(
                str(original),
                error.nodes,
                error.source,
                error.positions,
                error.path,
                extensions={"code": "BAD_USER_INPUT"},
            )
        hidden = unexpected(original, request_id)
        return GraphQLError(
            str(hidden), error.nodes, error.source, error.positions, error.path, extensions=hidden.extensions
        )


def unexpected(error: BaseException, request_id: str) -> InternalError:
    """What the client may see of an unexpected ``error``: the schema's ``process_errors`` has logged it
    under ``request_id`` already (see :mod:`server.api.errors`)."""
    return InternalError(request_id)


@contextlib.contextmanager
def errors_masked(request_id: str) -> Iterator[None]:
    """Around a subscription's generator: unexpected errors leave it masked, as :class:`ErrorMasking`
    masks those of queries. It must be done at the source: ``on_operation`` sees none of a subscription's
    results, and a hook on every result would cost every delivery to every subscriber."""
    try:
        yield
    except (ClientError, DomainError):
        raise
    except Exception as error:
        logger.error("request %s failed", request_id, exc_info=error)
        raise unexpected(error, request_id) from None
