"""Users and sessions: ``me``, ``login``, ``logout``, ``createUser`` (admin)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated

import strawberry

from server.api.context import Info
from server.api.permissions import IsAdmin, IsAuthenticated
from server.api.results import InputError, OperationInfo, RateLimited, input_error, rate_limited_result
from server.db.models import User
from server.domain.errors import InvalidCredentialsError, InvalidInputError
from server.domain.roles import UserRole
from server.exceptions import RateLimitedError
from server.services import users as service

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


SessionStartResult = Annotated[
    LoginSuccess | InvalidCredentials | RateLimited, strawberry.union("SessionStartResult")
]
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
    async def login(self, info: Info, username: str, password: str) -> SessionStartResult:
        context = info.context
        try:
            login = await service.log_in(context.services, username, password, context.address)
        except RateLimitedError as error:
            return rate_limited_result(error)
        except InvalidCredentialsError:
            return InvalidCredentials()
        return LoginSuccess(token=login.token, expires_at=login.expires_at, user=UserType.of(login.user))

    @strawberry.mutation(permission_classes=[IsAuthenticated], description="Revoke this request's token.")
    async def logout(self, info: Info) -> OperationInfo:
        context = info.context
        if context.session_id is not None:
            await service.log_out(context.services, context.require_actor(), context.session_id)
        return OperationInfo(message="logged out")

    @strawberry.mutation(permission_classes=[IsAdmin], description="Create a user (administrators only).")
    async def create_user(self, info: Info, input: UserCreateInput) -> UserCreateResult:
        context = info.context
        services = context.services
        role = UserRole(input.role.value)
        try:
            user = await service.create_user(
                services.db, services.passwords, context.require_actor(), input.username, input.password, role
            )
        except InvalidInputError as error:
            return input_error(error)
        return UserCreateSuccess(user=UserType.of(user))
