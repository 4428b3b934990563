"""Every operation the workbench sends is valid against the schema the server exports, so a change of the
API that breaks the desktop fails here, not in a biologist's hands."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import GraphQLSchema, build_schema, parse, validate

from workbench.api import operation, operations

SCHEMA_FILE = Path(__file__).resolve().parents[3] / "server" / "schema.graphql"


@pytest.fixture(scope="module")
def schema() -> GraphQLSchema:
    return build_schema(SCHEMA_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(operations()))
def test_each_operation_is_valid_against_the_exported_schema(schema: GraphQLSchema, name: str) -> None:
    problems = validate(schema, parse(operation(name).text))
    assert problems == [], f"{operation(name).source}: {name}: {[p.message for p in problems]}"


def test_the_check_catches_a_field_the_server_does_not_have(schema: GraphQLSchema) -> None:
    problems = validate(schema, parse("query Broken { me { id shoeSize } }"))
    assert [p.message for p in problems] == ["Cannot query field 'shoeSize' on type 'User'."]


def test_an_unknown_operation_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"known: .*Login"):
        operation("Lgoin")
