"""Query cost analysis in the spirit of the GraphQL cost directives (``@cost``, ``@listSize``).

A field costs its ``@cost(weight:)`` (default 1 for an object, 0 for a scalar) plus, for a list, its
size times what its selection costs. The size comes from the ``@listSize(slicingArguments:)`` argument
the query passes (``first: 100``), or the argument's default, else ``assumedSize``; ``sizedFields`` says
which child list the size belongs to (a connection's ``edges``). The cost is computed before execution;
a query over the budget is refused with its cost and the budget in the error's extensions.
"""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    get_nullable_type,
    value_from_ast,
)
from strawberry.schema_directive import Location

__all__ = ["DEFAULT_LIST_SIZE", "Cost", "ListSize", "query_cost"]

DEFAULT_LIST_SIZE = 10


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
        self, schema: GraphQLSchema, fragments: dict[str, FragmentDefinitionNode], variables: dict[str, Any]
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

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
        for argument in list_size.slicing_arguments or ():
            value = self._argument(definition, node, argument)
            if isinstance(value, int):
                return max(value, 0)
        return list_size.assumed_size if list_size.assumed_size is not None else DEFAULT_LIST_SIZE

    def _argument(self, definition: GraphQLField, node: FieldNode, name: str) -> Any:
        for argument in node.arguments or ():
            if argument.name.value == name and name in definition.args:
                return value_from_ast(argument.value, definition.args[name].type, self.variables)
        arg = definition.args.get(name)
        return arg.default_value if arg is not None else None


def query_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any] | None,
) -> int:
    """The cost of ``operation`` with these variables."""
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    return _Walker(schema, fragments, variables or {}).selection(root, operation.selection_set, {})
