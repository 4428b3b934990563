"""Passwords (argon2id) and session tokens (opaque, random, stored only as a SHA-256 hash).

A token is 32 random bytes, URL-safe; the database keeps ``sha256(token)`` so a stolen database holds no
usable token, and looking a token up costs one indexed query (the token's entropy makes a slow hash
unnecessary; passwords, chosen by people, get argon2id).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import Type

from server.domain.accounts import is_disabled
from server.domain.errors import InvalidInputError

__all__ = ["PasswordPolicy", "Passwords", "check_password", "check_username", "hash_token", "new_token"]

_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")


@dataclass(frozen=True)
class PasswordPolicy:
    """argon2id cost (OWASP's second recommendation by default) and the shortest password accepted."""

    time_cost: int = 2
    memory_kib: int = 19_456
    parallelism: int = 1
    min_length: int = 10


class Passwords:
    """Hash and verify passwords with argon2id."""

    def __init__(self, policy: PasswordPolicy = PasswordPolicy()) -> None:
        self.policy = policy
        self._hasher = PasswordHasher(
            time_cost=policy.time_cost,
            memory_cost=policy.memory_kib,
            parallelism=policy.parallelism,
            type=Type.ID,
        )
        self._dummy = self._hasher.hash(secrets.token_hex(16))

    def hash(self, password: str, username: str = "") -> str:
        """The argon2id hash of an acceptable password (see :func:`check_password`) for ``username``."""
        check_password(password, username, self.policy.min_length)
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches; with no hash (unknown user) or a disabled account's it spends the
        same time and says no, so the answer's time tells nobody which user names exist or are disabled."""
        if password_hash is not None and is_disabled(password_hash):
            password_hash = None
        try:
            return self._hasher.verify(password_hash or self._dummy, password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False


def check_password(password: str, username: str = "", min_length: int = 10) -> str:
    """The rules most labs expect (NIST SP 800-63B): long enough, not blank, not the user name; no rules on
    character classes, which push people to predictable patterns. The error names the rule that failed."""
    if not password.strip():
        raise InvalidInputError("password", "it is empty or only spaces; choose a passphrase")
    if len(password) < min_length:
        raise InvalidInputError("password", f"at least {min_length} characters are needed")
    if username and password.strip().casefold() == username.casefold():
        raise InvalidInputError("password", "it may not be the user name")
    return password


def check_username(username: str) -> str:
    if not _USERNAME.match(username):
        raise InvalidInputError(
            "username", "2-64 characters: letters, digits and . _ @ -, starting with a letter or digit"
        )
    return username


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
