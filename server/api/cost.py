"""Query cost analysis in the spirit of the GraphQL cost directives (``@cost``, ``@listSize``).

A field costs its ``@cost(weight:)`` (default 1 for an object, 0 for a scalar) plus, for a list, its
size times what its selection costs. The size comes from the ``@listSize(slicingArguments:)`` argument
as execution will see it: a literal (``first: 100``), else the variable sent, else the variable's default
in the operation, else the argument's default in the schema; when none of these gives a number (a
variable that cannot be coerced, an explicit null) the size is ``max_list_size``, the most any list
returns. A list without a slicing argument counts ``assumedSize``. ``sizedFields`` says which child list
the size belongs to (a connection's ``edges``). The cost is computed before execution; a query over the
budget is refused with its cost and the budget in the error's extensions.

A list without a slicing argument may turn out longer than its ``assumedSize`` (an image with 5,000
spheroids). So that the cost is never lower than the real lists allow, such a list is counted again once it
is resolved, before its items are: :func:`list_overrun` is what its extra items cost, and the operation is
refused there if that takes it over the budget (see ``server.api.extensions.CountedList``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import strawberry
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_argument_values,
    get_named_type,
    get_nullable_type,
    get_variable_values,
)
from graphql.execution.values import VariableValues
from strawberry.schema_directive import Location

__all__ = [
    "DEFAULT_LIST_SIZE",
    "MAX_LIST_SIZE",
    "Cost",
    "CostAccount",
    "ListSize",
    "list_overrun",
    "query_cost",
]

DEFAULT_LIST_SIZE = 10
MAX_LIST_SIZE = 500
"""The size of a sliced list whose slicing argument has no value in force (the server's largest page)."""


@dataclass
class CostAccount:
    """An operation's cost so far (the estimate, plus lists found longer than assumed) and its budget."""

    spent: int
    maximum: int
    max_list_size: int = MAX_LIST_SIZE


@strawberry.schema_directive(locations=[Location.FIELD_DEFINITION], name="cost")
class Cost:
    weight: int


@strawberry.schema_directive(locations=[Location.FIELD_DEFINITION], name="listSize")
class ListSize:
    assumed_size: int | None = None
    slicing_arguments: list[str] | None = None
    sized_fields: list[str] | None = None


def _directives(field: GraphQLField) -> tuple[Cost | None, ListSize | None]:
    definition = (field.extensions or {}).get("strawberry-definition")
    cost = size = None
    for directive in getattr(definition, "directives", ()) or ():
        if isinstance(directive, Cost):
            cost = directive
        elif isinstance(directive, ListSize):
            size = directive
    return cost, size


class _Walker:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: VariableValues,
        max_list_size: int,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.max_list_size = max_list_size

    def selection(
        self, parent: GraphQLNamedType, node: SelectionSetNode | None, sized: dict[str, int]
    ) -> int:
        if node is None:
            return 0
        total = 0
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                total += self.field(parent, selection, sized)
            elif isinstance(selection, InlineFragmentNode):
                target = (
                    self._type(selection.type_condition.name.value) if selection.type_condition else parent
                )
                total += self.selection(target, selection.selection_set, sized)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    target = self._type(fragment.type_condition.name.value)
                    total += self.selection(target, fragment.selection_set, sized)
        return total

    def _type(self, name: str) -> GraphQLNamedType:
        found = self.schema.get_type(name)
        assert found is not None
        return found

    def field(self, parent: GraphQLNamedType, node: FieldNode, sized: dict[str, int]) -> int:
        name = node.name.value
        fields = getattr(parent, "fields", {})
        if name.startswith("__") or name not in fields:
            return 0
        definition: GraphQLField = fields[name]
        cost, list_size = _directives(definition)
        named = get_named_type(definition.type)
        weight = cost.weight if cost else (1 if isinstance(named, GraphQLObjectType) else 0)
        is_list = isinstance(get_nullable_type(definition.type), GraphQLList)
        size = sized.get(name, self._size(definition, node, list_size) if is_list else 1)
        child_sized: dict[str, int] = {}
        if list_size is not None and list_size.sized_fields:
            child_sized = {child: self._size(definition, node, list_size) for child in list_size.sized_fields}
            size = 1
        return weight + size * self.selection(named, node.selection_set, child_sized)

    def _size(self, definition: GraphQLField, node: FieldNode, list_size: ListSize | None) -> int:
        if list_size is None:
            return DEFAULT_LIST_SIZE
        if list_size.slicing_arguments:
            arguments = self._arguments(definition, node)
            for name in list_size.slicing_arguments:
                value = arguments.get(name)
                if isinstance(value, int) and not isinstance(value, bool):
                    return max(value, 0)
            return self.max_list_size
        return list_size.assumed_size if list_size.assumed_size is not None else DEFAULT_LIST_SIZE

    def _arguments(self, definition: GraphQLField, node: FieldNode) -> dict[str, Any]:
        """The field's arguments as execution will coerce them (literals, variables, both defaults);
        empty when they cannot be coerced (execution will refuse the operation then)."""
        try:
            return get_argument_values(definition, node, self.variables)
        except GraphQLError:
            return {}


def query_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any] | None,
    *,
    max_list_size: int = MAX_LIST_SIZE,
) -> int:
    """The cost of ``operation`` with the ``variables`` sent (JSON values, before coercion)."""
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    walker = _Walker(schema, fragments, _coerced(schema, operation, variables), max_list_size)
    return walker.selection(root, operation.selection_set, {})


def _coerced(schema: GraphQLSchema, operation: OperationDefinitionNode, variables: Any) -> VariableValues:
    """The variables in force: those sent, coerced, with the operation's defaults for the rest; none when
    they cannot be coerced (a list sliced by a variable then counts at its maximum)."""
    sent = variables if isinstance(variables, dict) else {}
    found = get_variable_values(schema, operation.variable_definitions or (), sent, max_errors=1)
    return VariableValues({}, {}) if isinstance(found, list) else found


def list_overrun(info: GraphQLResolveInfo[Any], length: int, *, max_list_size: int = MAX_LIST_SIZE) -> int:
    """What the items of a resolved list beyond its ``assumedSize`` cost (0 when it is no longer)."""
    definition = info.parent_type.fields[info.field_name]
    _, list_size = _directives(definition)
    assumed = list_size.assumed_size if list_size and list_size.assumed_size is not None else None
    assumed = DEFAULT_LIST_SIZE if assumed is None else assumed
    if length <= assumed:
        return 0
    fragments = dict(info.fragments)
    walker = _Walker(info.schema, fragments, info.variable_values, max_list_size)
    item = walker.selection(get_named_type(definition.type), info.field_nodes[0].selection_set, {})
    return (length - assumed) * item
