"""``rotateSigningKey``: an administrator retires every image URL handed out so far (after removing a member,
say); clients then ask for fresh URLs. See :mod:`server.delivery.keyring`."""

from __future__ import annotations

import strawberry

from server.api.context import Info
from server.api.permissions import IsAdmin
from server.api.results import OperationInfo

__all__ = ["SigningMutation"]


@strawberry.type
class SigningMutation:
    @strawberry.mutation(
        permission_classes=[IsAdmin],
        description="Sign image URLs with a new key on every replica; URLs signed before are refused from "
        "then on (403), and clients fetch new ones. Administrators only.",
    )
    async def rotate_signing_key(self, info: Info) -> OperationInfo:
        key_id = await info.context.services.keyring.rotate()
        return OperationInfo(
            message=f"image URLs are now signed with key {key_id}; earlier URLs are refused, and other "
            "replicas take the key up within "
            f"{info.context.services.settings.delivery_signing_key_refresh_seconds:.0f} s"
        )
