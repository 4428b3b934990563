"""Queries and mutations by name against the real app: sign-in, refusals a person can act on, and a
server that does not answer."""

from __future__ import annotations

import httpx
import pytest

from server.app import create_app
from spheroseg_testing import free_port
from tests.server.conftest import PASSWORD, Api
from workbench.api import ApiError, LabClient, NotSignedInError, ServerUnreachableError

pytestmark = pytest.mark.anyio


def _client(api: Api, token: str | None = None) -> LabClient:
    transport = httpx.ASGITransport(app=create_app(services=api.services))
    return LabClient("http://testserver", token=token, transport=transport)


async def test_signing_in_creating_a_project_and_listing_it(api: Api) -> None:
    await api.user("alice")
    async with _client(api) as client:
        signed_in = await client.login("alice", PASSWORD)
        created = await client.call("CreateProject", name="Plate 7")
        projects = (await client.call("Projects"))["projects"]

    assert (signed_in.username, signed_in.role) == ("alice", "MEMBER")
    assert created["createProject"]["__typename"] == "ProjectSuccess"
    assert [(p["name"], p["myRole"]) for p in projects] == [("Plate 7", "OWNER")]


async def test_a_wrong_password_and_a_missing_session_are_told_apart(api: Api) -> None:
    await api.user("alice")
    async with _client(api) as client:
        with pytest.raises(ApiError) as wrong:
            await client.login("alice", "not the password")
        with pytest.raises(NotSignedInError):
            await client.call("Projects")
        client.use_token("forged")
        with pytest.raises(NotSignedInError):
            await client.call("Me")

    assert wrong.value.code == "INVALID_CREDENTIALS"
    assert "password" in wrong.value.message.lower()


async def test_a_server_that_does_not_answer_is_reported_as_unreachable() -> None:
    async with LabClient(f"http://127.0.0.1:{free_port()}", timeout=2) as client:
        with pytest.raises(ServerUnreachableError, match=r"no answer from http://127\.0\.0\.1"):
            await client.call("Me")


async def test_a_subscription_is_refused_over_http(api: Api) -> None:
    async with _client(api) as client:
        with pytest.raises(TypeError, match="LiveChannel"):
            await client.call("JobProgress", jobId=1)
