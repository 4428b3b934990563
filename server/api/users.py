"""Users and sessions: ``me``, ``sessions``, ``login``, ``exchangeBootstrapToken``, ``renewSession``,
``revokeSession``, ``logout``, ``createUser`` (admin)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated

import strawberry

from server.api.context import Info
from server.api.cost import ListSize
from server.api.extensions import CountedList
from server.api.permissions import IsAdmin, IsAuthenticated
from server.api.results import InputError, OperationInfo, RateLimited, input_error, rate_limited_result
from server.db.models import Session, User
from server.domain.errors import InvalidCredentialsError, InvalidInputError
from server.domain.roles import UserRole
from server.exceptions import RateLimitedError
from server.services import sessions
from server.services import users as service

__all__ = ["UserMutation", "UserQuery", "UserType"]


@strawberry.enum(
    name="UserRole",
    description="ADMIN manages users and may do everything in every project; MEMBER sees only the projects "
    "shared with them, with the ProjectRole given there.",
)
class UserRoleEnum(enum.Enum):
    ADMIN = "admin"
    MEMBER = "member"


@strawberry.type(name="User", description="An account that can log in.")
class UserType:
    id: int = strawberry.field(description="The user's id (as `sessions(userId:)` takes it).")
    username: str = strawberry.field(description="The name they log in with; unique on the server.")
    role: UserRoleEnum = strawberry.field(description="Administrator or member of the server.")
    created_at: dt.datetime = strawberry.field(description="When the account was created.")

    @classmethod
    def of(cls, row: User) -> UserType:
        return cls(id=row.id, username=row.username, role=UserRoleEnum(row.role), created_at=row.created_at)


@strawberry.type(description="Logged in: a new session began; keep `token` for every request.")
class LoginSuccess:
    token: str = strawberry.field(description="Send it as `Authorization: Bearer <token>`.")
    expires_at: dt.datetime = strawberry.field(
        description="When the token stops working; call `renewSession` before then to keep it."
    )
    user: UserType = strawberry.field(description="Who is now logged in.")


@strawberry.type(
    description="The user name, password or bootstrap token was not accepted; no session was started. "
    "Which one was wrong is not said, on purpose."
)
class InvalidCredentials:
    message: str = strawberry.field(
        default="unknown user name or wrong password", description="What to tell the user."
    )


@strawberry.type(
    name="Session", description="A signed-in device or client: one token, from login until it ends."
)
class SessionType:
    id: int = strawberry.field(description="Pass it to `revokeSession`.")
    created_at: dt.datetime = strawberry.field(description="When the session began (login).")
    last_used_at: dt.datetime | None = strawberry.field(
        description="When a request last came with it, to within five minutes; null: none since login."
    )
    expires_at: dt.datetime = strawberry.field(description="When it ends unless renewed (`renewSession`).")
    current: bool = strawberry.field(description="Whether this is the session of the request asking.")

    @classmethod
    def of(cls, row: Session, current_id: int | None) -> SessionType:
        return cls(
            id=row.id,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            expires_at=row.expires_at,
            current=row.id == current_id,
        )


@strawberry.type(description="The account was created; the user can log in now.")
class UserCreateSuccess:
    user: UserType = strawberry.field(description="The new account.")


SessionStartResult = Annotated[
    LoginSuccess | InvalidCredentials | RateLimited,
    strawberry.union(
        "SessionStartResult",
        description="A new session, or why none was started (wrong credentials, too many attempts).",
    ),
]
UserCreateResult = Annotated[
    UserCreateSuccess | InputError,
    strawberry.union(
        "UserCreateResult", description="The new account, or which input was wrong (e.g. a taken name)."
    ),
]
SessionRevokeResult = Annotated[
    OperationInfo | InputError,
    strawberry.union("SessionRevokeResult", description="The session ended, or no live session had that id."),
]


@strawberry.input(description="A new account.")
class UserCreateInput:
    username: str = strawberry.field(description="The name to log in with; must not be taken.")
    password: str = strawberry.field(
        description="Their password (stored only as a hash); the server's password rules apply."
    )
    role: UserRoleEnum = strawberry.field(
        default=UserRoleEnum.MEMBER, description="MEMBER (default) or ADMIN."
    )


@strawberry.type
class UserQuery:
    @strawberry.field(permission_classes=[IsAuthenticated], description="The logged-in user.")
    def me(self, info: Info) -> UserType:
        return UserType.of(info.context.require_user())

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="The live sessions (not ended, not expired) of a user, newest first.",
        directives=[ListSize(assumed_size=20)],
        extensions=[CountedList()],
    )
    async def sessions(
        self,
        info: Info,
        user_id: Annotated[
            int | None,
            strawberry.argument(description="Whose sessions (administrators only); default: your own."),
        ] = None,
    ) -> list[SessionType]:
        context = info.context
        rows = await sessions.user_sessions(context.services, context.require_actor(), user_id)
        return [SessionType.of(row, context.session_id) for row in rows]


@strawberry.type
class UserMutation:
    @strawberry.mutation(description="Exchange a user name and password for a session token.")
    async def login(
        self,
        info: Info,
        username: Annotated[str, strawberry.argument(description="The account's user name.")],
        password: Annotated[str, strawberry.argument(description="The account's password.")],
    ) -> SessionStartResult:
        context = info.context
        try:
            login = await service.log_in(context.services, username, password, context.address)
        except RateLimitedError as error:
            return rate_limited_result(error)
        except InvalidCredentialsError:
            return InvalidCredentials()
        return LoginSuccess(token=login.token, expires_at=login.expires_at, user=UserType.of(login.user))

    @strawberry.mutation(
        description="Exchange a one-time bootstrap token (printed by `spheroseg server serve --offline` or "
        "`spheroseg server bootstrap-token`) for a session token, as `login` answers."
    )
    async def exchange_bootstrap_token(
        self,
        info: Info,
        token: Annotated[str, strawberry.argument(description="The bootstrap token; it works once.")],
    ) -> SessionStartResult:
        context = info.context
        try:
            login = await sessions.exchange_bootstrap_token(context.services, token, context.address)
        except RateLimitedError as error:
            return rate_limited_result(error)
        except InvalidCredentialsError:
            return InvalidCredentials(message="the bootstrap token is unknown, used or expired")
        return LoginSuccess(token=login.token, expires_at=login.expires_at, user=UserType.of(login.user))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Renew this request's session before it expires: it then lasts a full session lifetime "
        "from now, with the same token.",
    )
    async def renew_session(self, info: Info) -> SessionType:
        context = info.context
        assert context.session_id is not None  # IsAuthenticated: a session token came
        session = await sessions.renew_session(context.services, context.require_actor(), context.session_id)
        return SessionType.of(session, context.session_id)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="End a session (yours; an administrator's: anyone's); its open subscriptions end too.",
    )
    async def revoke_session(
        self, info: Info, id: Annotated[int, strawberry.argument(description="The session's id.")]
    ) -> SessionRevokeResult:
        context = info.context
        if not await sessions.revoke_session(context.services, context.require_actor(), id):
            return InputError(field="id", message="no live session has this id")
        return OperationInfo(message="session ended")

    @strawberry.mutation(permission_classes=[IsAuthenticated], description="Revoke this request's token.")
    async def logout(self, info: Info) -> OperationInfo:
        context = info.context
        if context.session_id is not None:
            await service.log_out(context.services, context.require_actor(), context.session_id)
        return OperationInfo(message="logged out")

    @strawberry.mutation(permission_classes=[IsAdmin], description="Create a user (administrators only).")
    async def create_user(
        self,
        info: Info,
        input: Annotated[UserCreateInput, strawberry.argument(description="The account to create.")],
    ) -> UserCreateResult:
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
