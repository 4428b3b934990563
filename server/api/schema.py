"""The GraphQL schema: queries and mutations merged from the noun modules, with the request limits."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.tools import merge_types

from server.api.cdn import CdnMutation
from server.api.exports import ExportMutation
from server.api.extensions import CostLimit, ErrorMasking, OperationMetrics
from server.api.images import ImageMutation, ImageQuery
from server.api.jobs import ClusterMutation, ClusterQuery, JobMutation, JobQuery
from server.api.live import Subscription
from server.api.projects import ProjectMutation, ProjectQuery
from server.api.segmentations import SegmentationMutation
from server.api.signing import SigningMutation
from server.api.users import UserMutation, UserQuery
from server.settings import Settings

__all__ = ["Mutation", "Query", "Subscription", "build_schema"]

QUERY_CACHE_SIZE = 256
"""Distinct query texts whose parse and validation are kept (per process)."""

Query = merge_types("Query", (UserQuery, ProjectQuery, ImageQuery, JobQuery, ClusterQuery))
Mutation = merge_types(
    "Mutation",
    (
        UserMutation,
        ProjectMutation,
        ImageMutation,
        SegmentationMutation,
        ExportMutation,
        CdnMutation,
        SigningMutation,
        JobMutation,
        ClusterMutation,
    ),
)


def build_schema(settings: Settings) -> strawberry.Schema:
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
        lambda: ParserCache(maxsize=QUERY_CACHE_SIZE),
        lambda: AddValidationRules(limits),
        lambda: ValidationCache(maxsize=QUERY_CACHE_SIZE),
        CostLimit.with_budget(settings.max_cost),
    ]
    if not settings.introspection_enabled:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription, extensions=extensions)
