"""Users and sessions: ``me``, ``login``, ``logout``, ``createUser`` (admin)."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
from typing import Annotated

import strawberry

from server.api.announce import announce
from server.api.context import Info
from server.api.permissions import IsAdmin, IsAuthenticated
from server.api.results import InputError, OperationInfo, RateLimited, input_error, rate_limited
from server.db import users
from server.db.models import User
from server.domain.auth import check_username, hash_token, new_token
from server.domain.errors import InvalidInputError
from server.domain.roles import UserRole
from server.events import session_ended

__all__ = ["UserMutation", "UserQuery", "UserType"]


@strawberry.enum(name="UserRole")
class UserRoleEnum(enum.Enum):
    ADMIN = "admin"
    MEMBER = "member"


@strawberry.type(name="User")
class UserType:
    id: int
    username: str
    role: UserRoleEnum
    created_at: dt.datetime

    @classmethod
    def of(cls, row: User) -> UserType:
        return cls(id=row.id, username=row.username, role=UserRoleEnum(row.role), created_at=row.created_at)


@strawberry.type
class LoginSuccess:
    token: str = strawberry.field(description="Send it as `Authorization: Bearer <token>`.")
    expires_at: dt.datetime
    user: UserType


@strawberry.type
class InvalidCredentials:
    message: str = "unknown user name or wrong password"


@strawberry.type
class UserCreateSuccess:
    user: UserType


LoginResult = Annotated[LoginSuccess | InvalidCredentials | RateLimited, strawberry.union("LoginResult")]
UserCreateResult = Annotated[UserCreateSuccess | InputError, strawberry.union("UserCreateResult")]


@strawberry.input
class UserCreateInput:
    username: str
    password: str
    role: UserRoleEnum = UserRoleEnum.MEMBER


@strawberry.type
class UserQuery:
    @strawberry.field(permission_classes=[IsAuthenticated], description="The logged-in user.")
    def me(self, info: Info) -> UserType:
        return UserType.of(info.context.require_user())


@strawberry.type
class UserMutation:
    @strawberry.mutation(description="Exchange a user name and password for a session token.")
    async def login(self, info: Info, username: str, password: str) -> LoginResult:
        context = info.context
        services = context.services
        wait = services.logins.hit(username, context.address)
        if wait:
            return rate_limited("login attempts", wait)
        async with services.db.begin() as db:
            user = await users.user_by_name(db, username)
            # argon2 takes tens of milliseconds of CPU on purpose: off the event loop, so that logins
            # (even refused ones) never hold up other requests
            stored = user.password_hash if user else None
            if not await asyncio.to_thread(services.passwords.verify, stored, password) or user is None:
                return InvalidCredentials()
            token = new_token()
            session = await users.create_session(db, user.id, hash_token(token), services.session_lifetime)
        return LoginSuccess(token=token, expires_at=session.expires_at, user=UserType.of(user))

    @strawberry.mutation(permission_classes=[IsAuthenticated], description="Revoke this request's token.")
    async def logout(self, info: Info) -> OperationInfo:
        session_id = info.context.session_id
        if session_id is not None:
            async with info.context.services.db.begin() as db:
                await users.revoke_session(db, session_id)
            # open WebSocket subscriptions of this session end too, on every replica
            await announce(info.context, session_ended(info.context.require_user().id, [session_id]))
        return OperationInfo(message="logged out")

    @strawberry.mutation(permission_classes=[IsAdmin], description="Create a user (administrators only).")
    async def create_user(self, info: Info, input: UserCreateInput) -> UserCreateResult:
        services = info.context.services
        try:
            username = check_username(input.username)
            password_hash = services.passwords.hash(input.password, username)
        except InvalidInputError as error:
            return input_error(error)
        async with services.db.begin() as db:
            user = await users.create_user(db, username, password_hash, UserRole(input.role.value).value)
        if user is None:
            return InputError(field="username", message=f"{username!r} is taken")
        return UserCreateSuccess(user=UserType.of(user))
