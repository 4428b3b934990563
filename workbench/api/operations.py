"""The GraphQL operations the workbench sends, read from the ``.graphql`` files beside this module.

Every operation has a name, and the client sends operations only by name, so each one the desktop uses is
written once, in a file a test checks against the server's exported schema (``server/schema.graphql``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from graphql import DocumentNode, OperationDefinitionNode, OperationType, parse, print_ast

__all__ = ["Operation", "operation", "operations"]


@dataclass(frozen=True)
class Operation:
    name: str
    kind: OperationType
    text: str
    """The operation alone (with the fragments it needs, if any), as sent to the server."""
    source: str
    """The file it is written in."""


def operation(name: str) -> Operation:
    """The operation called ``name``; :class:`KeyError` names the known ones when there is none."""
    known = operations()
    if name not in known:
        raise KeyError(f"no GraphQL operation {name!r}; known: {', '.join(sorted(known))}")
    return known[name]


@cache
def operations() -> dict[str, Operation]:
    """Every operation of every ``.graphql`` file here, by name (read once)."""
    found: dict[str, Operation] = {}
    for entry in sorted(resources.files(__package__).joinpath("operations").iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".graphql"):
            continue
        document: DocumentNode = parse(entry.read_text(encoding="utf-8"))
        for definition in document.definitions:
            if not isinstance(definition, OperationDefinitionNode) or definition.name is None:
                raise ValueError(f"{entry.name}: every definition must be a named operation")
            name = definition.name.value
            if name in found:
                raise ValueError(f"{entry.name}: operation {name} is also in {found[name].source}")
            found[name] = Operation(name, definition.operation, print_ast(definition), entry.name)
    return found
