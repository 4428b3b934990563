"""The GraphQL schema: queries and mutations merged from the noun modules, with the request limits."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext
from strawberry.types.base import get_object_definition

from server.api.cdn import CdnMutation
from server.api.cluster import ClusterMutation, ClusterQuery
from server.api.edits import SegmentationEditMutation
from server.api.errors import log_error, without_suggestions
from server.api.exports import ExportMutation
from server.api.extensions import CachedParser, CostLimit, ErrorMasking, OperationMetrics
from server.api.images import ImageMutation, ImageQuery
from server.api.jobs import JobMutation, JobQuery
from server.api.live import Subscription
from server.api.methods import MethodQuery
from server.api.projects import ProjectMutation, ProjectQuery
from server.api.segmentations import SegmentationMutation
from server.api.signing import SigningMutation
from server.api.users import UserMutation, UserQuery
from server.settings import Settings

__all__ = ["LabSchema", "Mutation", "Query", "Subscription", "build_schema", "schema_text"]

QUERY_CACHE_SIZE = 256
"""Distinct query texts whose parse and validation are kept (per process)."""


def _described(root: type, description: str) -> type:
    """``root`` with ``description`` (strawberry's ``merge_types`` takes none)."""
    get_object_definition(root, strict=True).description = description
    return root


Query = merge_types("Query", (UserQuery, ProjectQuery, ImageQuery, JobQuery, MethodQuery, ClusterQuery))
_described(
    Query,
    "Reads. Every field needs `Authorization: Bearer <token>` (from `login`); a project's data is visible "
    "to its members and to administrators only.",
)
Mutation = merge_types(
    "Mutation",
    (
        UserMutation,
        ProjectMutation,
        ImageMutation,
        SegmentationMutation,
        SegmentationEditMutation,
        ExportMutation,
        CdnMutation,
        SigningMutation,
        JobMutation,
        ClusterMutation,
    ),
)
_described(
    Mutation,
    "Changes. Expected failures (wrong input, a conflict, a rate limit) come back as members of each field's "
    "`…Result` union; a missing permission is an error.",
)


class LabSchema(strawberry.Schema):
    """The schema, with errors logged as :mod:`server.api.errors` says (never with the operation's text)
    and, where ``hide_suggestions``, without "Did you mean …" hints that would undo disabled introspection.
    """

    def __init__(self, *args: Any, hide_suggestions: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hide_suggestions = hide_suggestions

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        context = execution_context.context if execution_context is not None else None
        request_id = str(getattr(context, "request_id", "-"))
        operation = execution_context.operation_name if execution_context is not None else None
        for error in errors:
            if self.hide_suggestions:
                error.message = without_suggestions(error.message)
            log_error(error, request_id, operation)


def build_schema(settings: Settings) -> LabSchema:
    """The schema with its request limits.

    The depth and alias rules are built once here, not per request: the validation cache is keyed by the
    rule classes, so rules made afresh for each request would make every request miss it. Parsing and
    validation are cached (bounded LRU) by query text, so a client repeating its queries, as the
    workbench does, pays for them once; the token limit is a parser option and so is part of the key.
    """
    limits = (
        QueryDepthLimiter(max_depth=settings.max_depth).validation_rules
        + MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules
    )
    extensions: list[Any] = [
        ErrorMasking,
        OperationMetrics,
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: CachedParser(maxsize=QUERY_CACHE_SIZE),
        lambda: AddValidationRules(limits),
        lambda: ValidationCache(maxsize=QUERY_CACHE_SIZE),
        CostLimit.with_budget(settings.max_cost, settings.max_page_size),
    ]
    if not settings.introspection_enabled:
        extensions.append(DisableIntrospection)
    return LabSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        hide_suggestions=not settings.introspection_enabled,
    )


def schema_text() -> str:
    """The schema in GraphQL's schema language, as ``server/schema.graphql`` keeps it for clients to check
    their operations against (the request limits are not part of it)."""
    return strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription).as_str() + "\n"
