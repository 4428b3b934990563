"""What reaches the server log of a refused operation: one line with a request id, no query text; and
the access log of the server process, which shows no query strings."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import Api
from tests.server.processes import start_server

pytestmark = pytest.mark.anyio

SECRET = "Tr0ub4dor&3-not-for-logs"
REFUSED = re.compile(r"request [0-9a-f]{16} refused: (\w+)")


def _refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [m.group(1) for r in caplog.records if (m := REFUSED.search(r.getMessage()))]


async def test_a_failed_login_leaves_no_password_in_the_log(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    await api.user("owner")
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    invalid = (
        f'mutation {{ login(username: "owner", password: "{SECRET}") {{ ... on LoginSuccess {{ tokn }} }} }}'
    )
    refused = (
        f'mutation {{ login(username: "owner", password: "{SECRET}") {{ __typename }} logout {{ message }} }}'
    )
    as_variable = 'mutation($p: Int!) { login(username: "owner", password: $p) { __typename } }'
    assert (await api.gql(invalid))["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert (await api.gql(refused))["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert (await api.gql(as_variable, p=SECRET))["errors"][0]["extensions"][
        "code"
    ] == "GRAPHQL_VALIDATION_FAILED"
    assert SECRET not in caplog.text
    assert _refusals(caplog) == ["GRAPHQL_VALIDATION_FAILED", "UNAUTHENTICATED", "GRAPHQL_VALIDATION_FAILED"]


async def test_refused_requests_log_one_line_and_no_traceback(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        body = await api.gql("{ me { id } }")
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    many = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(40)) + " }"
    assert (await api.gql(many))["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert _refusals(caplog) == ["UNAUTHENTICATED"] * 3 + ["QUERY_TOO_COMPLEX"]
    graphql_records = [r for r in caplog.records if not r.name.startswith("httpx")]
    assert len(graphql_records) == 4
    assert all(r.levelno <= logging.WARNING and r.exc_info is None for r in graphql_records)


def test_the_server_log_holds_no_query_strings(tmp_path: Path) -> None:
    env = {
        "SPHEROSEG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}",
        "SPHEROSEG_STORAGE_URL": str(tmp_path / "blobs"),
        "SPHEROSEG_DISPATCHER": "false",
    }
    server = start_server(env, tmp_path / "server.log")
    try:
        login = f'mutation {{ login(username: "owner", password: "{SECRET}") {{ __typename }} }}'
        refused = httpx.get(f"{server.url}/graphql", params={"query": login})  # GET refuses mutations
        assert refused.status_code >= 400
        with_variables = {"query": "query($p: String) { me { id } }", "variables": json.dumps({"p": SECRET})}
        assert httpx.get(f"{server.url}/graphql", params=with_variables).status_code == 200
    finally:
        server.stop()
    log = server.log.read_text()
    assert SECRET not in log and SECRET.replace("&", "%26") not in log
    assert log.count('"GET /graphql?… HTTP/1.1"') == 2  # the requests are logged, without what they sent
