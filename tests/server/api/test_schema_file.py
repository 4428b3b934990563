"""``server/schema.graphql`` is what the code serves: clients (the desktop's operations) are checked
against that file, so it must never fall behind the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import graphql

from server.api.schema import schema_text

SCHEMA_FILE = Path(__file__).resolve().parents[3] / "server" / "schema.graphql"

BUILT_IN_SCALARS = frozenset({"String", "Int", "Float", "Boolean", "ID"})
"""GraphQL's own scalars, described by the specification; custom ones (DateTime, JSON) are not exempt."""


def test_the_schema_file_is_the_schema_the_code_serves() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), (
        "server/schema.graphql is out of date: run `spheroseg server schema --out server/schema.graphql`"
    )


def test_the_schema_command_writes_the_file_clients_check_against(tmp_path: Path) -> None:
    out = tmp_path / "schema.graphql"
    command = [str(Path(sys.executable).parent / "spheroseg"), "server", "schema", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)

    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8") == schema_text()
    assert "type Query" in out.read_text(encoding="utf-8")


def _undescribed(schema: graphql.GraphQLSchema) -> list[str]:
    """Every type, field and argument of ``schema`` without a description (enum values may go without)."""
    missing: list[str] = []
    for name, named in sorted(schema.type_map.items()):
        if name.startswith("__") or name in BUILT_IN_SCALARS:
            continue
        if not (named.description or "").strip():
            missing.append(f"type {name}")
        fields = getattr(named, "fields", {})  # object, interface and input types
        for field_name, field in fields.items():
            if not (field.description or "").strip():
                missing.append(f"field {name}.{field_name}")
            for argument_name, argument in getattr(field, "args", {}).items():
                if not (argument.description or "").strip():
                    missing.append(f"argument {name}.{field_name}({argument_name})")
    return missing


def test_every_type_field_and_argument_is_described() -> None:
    """The schema is the desktop developer's manual: what each thing is, its units, who may use it."""
    missing = _undescribed(graphql.build_schema(schema_text()))

    assert missing == [], f"{len(missing)} without a description:\n" + "\n".join(missing)


def test_an_undescribed_field_or_argument_is_found() -> None:
    schema = graphql.build_schema(
        '''"""Reads."""
        type Query {
          """Described."""
          one(
            """Described."""
            a: Int
            b: Int
          ): Int
          two: Thing
        }

        type Thing {
          """Described."""
          x: Int
        }
        '''
    )

    assert _undescribed(schema) == ["argument Query.one(b)", "field Query.two", "type Thing"]
