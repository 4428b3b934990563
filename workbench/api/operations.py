"""The GraphQL operations the workbench sends, read from the ``.graphql`` files beside this module.

Every operation has a name, and the client sends operations only by name, so each one the desktop uses is
written once, in a file a test checks against the server's exported schema (``server/schema.graphql``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    Node,
    OperationDefinitionNode,
    OperationType,
    Visitor,
    parse,
    print_ast,
    visit,
)

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
    """Every operation of every ``.graphql`` file here, by name (read once); each one's text carries the
    fragments it uses, wherever they are written."""
    definitions: list[tuple[str, OperationDefinitionNode]] = []
    fragments: dict[str, FragmentDefinitionNode] = {}
    for entry in sorted(resources.files(__package__).joinpath("operations").iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".graphql"):
            continue
        document: DocumentNode = parse(entry.read_text(encoding="utf-8"))
        for definition in document.definitions:
            if isinstance(definition, FragmentDefinitionNode):
                fragments[definition.name.value] = definition
            elif isinstance(definition, OperationDefinitionNode) and definition.name is not None:
                definitions.append((entry.name, definition))
            else:
                raise ValueError(f"{entry.name}: every operation must have a name")
    found: dict[str, Operation] = {}
    for source, definition in definitions:
        name = definition.name.value if definition.name is not None else ""
        if name in found:
            raise ValueError(f"{source}: operation {name} is also in {found[name].source}")
        used = [print_ast(fragments[f]) for f in sorted(_fragments_used(definition, fragments))]
        text = "\n\n".join([print_ast(definition), *used])
        found[name] = Operation(name, definition.operation, text, source)
    return found


def _fragments_used(node: Node, fragments: dict[str, FragmentDefinitionNode]) -> set[str]:
    """The names of the fragments ``node`` spreads, and those they spread in turn."""
    used: set[str] = set()
    pending = [node]
    while pending:
        current = pending.pop()
        for spread in _spreads(current):
            if spread not in used:
                if spread not in fragments:
                    raise ValueError(f"fragment {spread} is used but written nowhere")
                used.add(spread)
                pending.append(fragments[spread])
    return used


def _spreads(node: Node) -> list[str]:
    names: list[str] = []

    class Spreads(Visitor):
        def enter_fragment_spread(self, spread: FragmentSpreadNode, *_: object) -> None:
            names.append(spread.name.value)

    visit(node, Spreads())
    return names
