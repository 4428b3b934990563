"""Expected failures of domain rules; the API layer turns each into a typed ``…Result`` member.

DomainError
├── InvalidInputError     a field is wrong (``field`` names it)
│   ├── LastOwnerError    a role change or removal would leave a project without an owner
│   ├── UsernameTakenError  a new user's name belongs to someone already
│   └── UnknownUserError  no user has that name
├── InvalidCredentialsError  an unknown user name or a wrong password (the two are not told apart)
├── ReviewRuleError       a review state may not be set (no segmentation, no comment)
│   └── StaleReviewError  the version reviewed is not the current one (``current_version``)
├── VersionConflictError  a save based on a version that is no longer current (``current_version``)
├── EditConflictError     an edit touched spheroids someone else changed or deleted since its base
├── InvalidSpheroidsError rings that are not closed, degenerate, outside the image or too many vertices
└── JobStateError         a job or task change the state machine does not allow (cancel a finished job)
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from cluster import Spheroid

__all__ = [
    "ConflictReason",
    "DomainError",
    "EditConflictError",
    "InvalidCredentialsError",
    "InvalidInputError",
    "InvalidSpheroidsError",
    "JobStateError",
    "LastOwnerError",
    "ReviewRuleError",
    "SpheroidConflict",
    "StaleReviewError",
    "UnknownUserError",
    "UsernameTakenError",
    "VersionConflictError",
]


class DomainError(Exception):
    """An expected failure whose message is meant for the user."""


class InvalidInputError(DomainError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class LastOwnerError(InvalidInputError):
    def __init__(self) -> None:
        super().__init__("username", "a project keeps at least one owner; make another member owner first")


class UsernameTakenError(InvalidInputError):
    def __init__(self, username: str) -> None:
        super().__init__("username", f"{username!r} is taken")
        self.username = username


class UnknownUserError(InvalidInputError):
    def __init__(self, username: str) -> None:
        super().__init__("username", f"no user {username!r}")
        self.username = username


class InvalidCredentialsError(DomainError):
    def __init__(self) -> None:
        super().__init__("unknown user name or wrong password")


class ReviewRuleError(DomainError):
    pass


class StaleReviewError(ReviewRuleError):
    def __init__(self, image_id: int, image_name: str, reviewed_version: int, current_version: int) -> None:
        super().__init__(
            f"{image_name}: you reviewed version {reviewed_version} of its segmentation, but version "
            f"{current_version} is the current one; look at version {current_version} and review it"
        )
        self.image_id = image_id
        self.reviewed_version = reviewed_version
        self.current_version = current_version


class VersionConflictError(DomainError):
    def __init__(self, base_version: int, current_version: int) -> None:
        super().__init__(
            f"the segmentation was saved by someone else meanwhile: you edited version {base_version}, the "
            f"current one is {current_version}; reload it, merge your edits and save again"
        )
        self.base_version = base_version
        self.current_version = current_version


class ConflictReason(enum.StrEnum):
    """Why a spheroid an edit touches collides with a save made since the edit's base version."""

    CHANGED = "changed"
    """Someone else changed its rings."""
    DELETED = "deleted"
    """Someone else deleted it (a job's result replaces every spheroid)."""


@dataclass(frozen=True)
class SpheroidConflict:
    """One spheroid in question: what the edit makes of it (``mine``, ``None`` for a deletion) and what is
    stored now (``theirs``, ``None`` when deleted), so that a person can choose."""

    id: int
    reason: ConflictReason
    mine: Spheroid | None
    theirs: Spheroid | None


class EditConflictError(DomainError):
    def __init__(
        self, base_version: int, current_version: int, conflicts: Sequence[SpheroidConflict]
    ) -> None:
        ids = ", ".join(str(conflict.id) for conflict in conflicts)
        super().__init__(
            f"spheroids {ids} were changed or deleted by someone else since version {base_version} (the "
            f"current one is {current_version}); choose which shape to keep and save again from version "
            f"{current_version}; nothing was saved"
        )
        self.base_version = base_version
        self.current_version = current_version
        self.conflicts = list(conflicts)


class InvalidSpheroidsError(DomainError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class JobStateError(DomainError):
    pass
