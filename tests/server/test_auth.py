"""Login, logout, tokens (forged, expired, revoked), admin-only user creation, login rate limits."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from server.db.models import Session
from tests.server.conftest import PASSWORD, Api

pytestmark = pytest.mark.anyio

LOGIN = (
    "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { __typename "
    "... on LoginSuccess { token user { username role } } "
    "... on RateLimited { retryAfterSeconds message } } }"
)
ME = "{ me { username role } }"


async def test_login_me_logout(api: Api) -> None:
    token = await api.user("alice")
    assert (await api.ok(ME, token))["me"] == {"username": "alice", "role": "MEMBER"}
    await api.ok("mutation { logout { message } }", token)
    body = await api.gql(ME, token)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "revoked" in body["errors"][0]["message"]


async def test_wrong_password_and_unknown_user_look_the_same(api: Api) -> None:
    await api.user("alice")
    wrong = await api.ok(LOGIN, u="alice", p="not the password")
    unknown = await api.ok(LOGIN, u="nobody", p="not the password")
    assert wrong["login"]["__typename"] == unknown["login"]["__typename"] == "InvalidCredentials"


async def test_passwords_are_stored_as_argon2id_and_tokens_hashed(api: Api) -> None:
    token = await api.user("alice")
    async with api.services.db() as db:
        from sqlalchemy import select

        from server.db.models import User

        user = await db.scalar(select(User).where(User.username == "alice"))
        stored = list(await db.scalars(select(Session.token_hash)))
    assert user is not None and user.password_hash.startswith("$argon2id$")
    assert token not in stored and len(stored[0]) == 64


@pytest.mark.parametrize("header", ["Bearer forged-token", "Basic abc", "Bearer "])
async def test_forged_or_malformed_tokens_are_refused(api: Api, header: str) -> None:
    response = await api.client.post("/graphql", json={"query": ME}, headers={"Authorization": header})
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_expired_tokens_are_refused(api: Api) -> None:
    token = await api.user("alice")
    async with api.services.db.begin() as db:
        await db.execute(update(Session).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    body = await api.gql(ME, token)
    assert "expired" in body["errors"][0]["message"]


async def test_only_admins_create_users(api: Api) -> None:
    admin = await api.user("root", admin=True)
    member = await api.user("bob")
    create = (
        'mutation($u: String!) { createUser(input: {username: $u, password: "long enough pw"}) '
        "{ __typename ... on InputError { field message } } }"
    )
    refused = await api.gql(create, member, u="carol")
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await api.ok(create, admin, u="carol"))["createUser"]["__typename"] == "UserCreateSuccess"
    taken = (await api.ok(create, admin, u="carol"))["createUser"]
    assert taken == {"__typename": "InputError", "field": "username", "message": "'carol' is taken"}
    assert (await api.ok(LOGIN, u="carol", p="long enough pw"))["login"]["__typename"] == "LoginSuccess"


async def test_login_attempts_are_rate_limited_per_username(api: Api) -> None:
    await api.user("alice")  # one attempt used by the fixture's login
    limit = api.services.settings.login_attempts_per_minute
    for _ in range(limit - 1):
        await api.ok(LOGIN, u="alice", p="guess")
    blocked = (await api.ok(LOGIN, u="alice", p=PASSWORD))["login"]
    assert blocked["__typename"] == "RateLimited" and 0 < blocked["retryAfterSeconds"] <= 60
    assert "try again in" in blocked["message"]


@pytest.mark.parametrize(
    ("username", "password", "rule"),
    [
        ("carol", " " * 10, "only spaces"),
        ("carol", "\t \n" * 4, "only spaces"),
        ("carol", "short", "at least 10 characters"),
        ("jonathan.smith", "Jonathan.Smith", "not be the user name"),
    ],
)
async def test_create_user_says_which_password_rule_failed(
    api: Api, username: str, password: str, rule: str
) -> None:
    admin = await api.user("root", admin=True)
    create = (
        "mutation($u: String!, $p: String!) { createUser(input: {username: $u, password: $p}) "
        "{ __typename ... on InputError { field message } } }"
    )
    refused = (await api.ok(create, admin, u=username, p=password))["createUser"]
    assert refused["__typename"] == "InputError" and refused["field"] == "password"
    assert rule in refused["message"]
    assert (await api.ok(LOGIN, u=username, p=password))["login"]["__typename"] == "InvalidCredentials"
