"""Disabled accounts: the password hash of a disabled user is kept behind a ``!``, as ``/etc/shadow`` does.

No password verifies against a marked hash, so a disabled user cannot log in, and enabling the user gives
the same password back. Sessions of a disabled user are refused as well (see ``server.db.users``).
"""

from __future__ import annotations

__all__ = ["DISABLED_MARK", "disabled_hash", "enabled_hash", "is_disabled"]

DISABLED_MARK = "!"


def is_disabled(password_hash: str) -> bool:
    return password_hash.startswith(DISABLED_MARK)


def disabled_hash(password_hash: str) -> str:
    return password_hash if is_disabled(password_hash) else DISABLED_MARK + password_hash


def enabled_hash(password_hash: str) -> str:
    return password_hash.removeprefix(DISABLED_MARK)
