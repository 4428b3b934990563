"""The offline server's local user is named as the operating system's user, where that name is valid."""

from __future__ import annotations

import pytest

from server.services import installation


@pytest.mark.parametrize(
    ("os_user", "expected"),
    [
        ("ana", "ana"),
        ("Ana Lopez", "Ana_Lopez"),
        ("DOMAIN\\ana", "DOMAIN_ana"),
        ("x", "local"),
        ("_ana", "local"),
    ],
)
def test_the_local_user_is_named_after_the_os_user(
    monkeypatch: pytest.MonkeyPatch, os_user: str, expected: str
) -> None:
    monkeypatch.setattr(installation.getpass, "getuser", lambda: os_user)
    assert installation.local_username() == expected


def test_without_an_os_user_name_the_local_user_is_local(monkeypatch: pytest.MonkeyPatch) -> None:
    def unknown() -> str:
        raise OSError("no user name in the environment and no passwd entry")

    monkeypatch.setattr(installation.getpass, "getuser", unknown)
    assert installation.local_username() == installation.FALLBACK_LOCAL_USER
