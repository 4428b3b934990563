"""Login, logout, tokens (forged, expired, revoked), admin-only user creation, login rate limits."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import update

from server.db import users
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


async def test_a_disabled_account_answers_like_a_wrong_password_and_as_slowly(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disabled account must not answer faster than a live one: a quick "no" would tell an attacker
    which accounts exist and are disabled. Every refusal runs a full argon2 verification."""
    await api.user("alice")
    async with api.services.db.begin() as db:
        await users.set_disabled(db, "alice", True)
    verified: list[str] = []
    real_verify = PasswordHasher.verify

    def recording_verify(self: PasswordHasher, stored: str, password: str) -> bool:
        verified.append(stored)
        return real_verify(self, stored, password)

    monkeypatch.setattr(PasswordHasher, "verify", recording_verify)
    disabled = await api.ok(LOGIN, u="alice", p=PASSWORD)
    assert disabled["login"]["__typename"] == "InvalidCredentials"
    assert len(verified) == 1 and verified[0].startswith("$argon2id$")  # a real hash, really verified


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


async def test_an_attacker_guessing_cannot_lock_the_real_user_out(api: Api) -> None:
    """Wrong logins for alice from one address are refused after the limit, while alice at her own desk
    still logs in; only very many attempts from many addresses reach the per-user-name limit."""
    from server.app import create_app

    await api.user("alice")
    settings = api.services.settings
    app = create_app(services=api.services)

    def client_at(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://testserver")

    async def login(client: httpx.AsyncClient, password: str) -> str:
        query = {"query": LOGIN, "variables": {"u": "alice", "p": password}}
        typename: str = (await client.post("/graphql", json=query)).json()["data"]["login"]["__typename"]
        return typename

    async with client_at("10.0.0.66") as attacker, client_at("10.0.0.7") as alice:
        tries = [await login(attacker, "guess") for _ in range(settings.login_attempts_per_minute + 5)]
        assert tries[-1] == "RateLimited"
        assert await login(alice, PASSWORD) == "LoginSuccess"
        assert tries.count("InvalidCredentials") == settings.login_attempts_per_minute
        assert await login(alice, "one typo") == "InvalidCredentials"
    # the per-user-name limit counts every address, but not the attempts refused above
    per_user = settings.login_attempts_per_user_per_minute
    used = 1 + settings.login_attempts_per_minute + 2  # the fixture's login, the attacker's, alice's
    for index in range((per_user - used) // settings.login_attempts_per_minute + 1):
        async with client_at(f"10.0.1.{index}") as botnet:
            for _ in range(settings.login_attempts_per_minute):
                await login(botnet, "guess")
    async with client_at("10.0.0.7") as alice:
        assert await login(alice, PASSWORD) == "RateLimited"
