"""``server/schema.graphql`` is what the code serves: clients (the desktop's operations) are checked
against that file, so it must never fall behind the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from server.api.schema import schema_text

SCHEMA_FILE = Path(__file__).resolve().parents[3] / "server" / "schema.graphql"


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
