"""Every URL the API hands out is absolute, so a client fetches it as it is.

URL builders give a full URL when they know their base (``SPHEROSEG_PUBLIC_URL``, a CDN's
``SPHEROSEG_DELIVERY_BASE_URL``); otherwise a path on this server, which :func:`absolute_url` completes
with the request's own scheme and host. Behind a reverse proxy those are the proxy's only when uvicorn is
told to trust its forwarded headers (``SPHEROSEG_FORWARDED_ALLOW_IPS``, see :mod:`server.cli`) and the
proxy passes the client's ``Host`` header on; setting ``SPHEROSEG_PUBLIC_URL`` avoids relying on either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from server.api.context import Context

__all__ = ["absolute_url"]


def absolute_url(context: Context, url: str) -> str:
    """``url`` as a client can fetch it: unchanged when absolute, else on the public URL or, without one,
    on the scheme and host the request came to (``url`` stays a path only without either, e.g. on a
    WebSocket)."""
    if not url.startswith("/") or url.startswith("//"):
        return url
    base = context.services.settings.public_url.rstrip("/")
    if not base and context.request is not None:
        base = str(context.request.base_url).rstrip("/")
    return f"{base}{url}"
