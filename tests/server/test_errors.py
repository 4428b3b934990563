"""What reaches the server log of a refused operation: one line with a request id, no query text."""

from __future__ import annotations

import logging
import re

import pytest

from tests.server.conftest import Api

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
