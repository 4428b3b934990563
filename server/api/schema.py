"""The GraphQL schema: queries and mutations merged from the noun modules, with the request limits."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.extensions import DisableIntrospection, MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.tools import merge_types

from server.api.exports import ExportMutation
from server.api.extensions import CostLimit, ErrorMasking, OperationMetrics
from server.api.images import ImageMutation, ImageQuery
from server.api.projects import ProjectMutation, ProjectQuery
from server.api.segmentations import SegmentationMutation
from server.api.users import UserMutation, UserQuery
from server.settings import Settings

__all__ = ["Mutation", "Query", "build_schema"]

Query = merge_types("Query", (UserQuery, ProjectQuery, ImageQuery))
Mutation = merge_types(
    "Mutation", (UserMutation, ProjectMutation, ImageMutation, SegmentationMutation, ExportMutation)
)


def build_schema(settings: Settings) -> strawberry.Schema:
    extensions: list[Any] = [
        ErrorMasking,
        OperationMetrics,
        lambda: QueryDepthLimiter(max_depth=settings.max_depth),
        lambda: MaxAliasesLimiter(max_alias_count=settings.max_aliases),
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        CostLimit.with_budget(settings.max_cost),
    ]
    if not settings.introspection_enabled:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(query=Query, mutation=Mutation, extensions=extensions)
