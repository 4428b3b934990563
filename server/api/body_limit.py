"""A bound on what one request may make the server hold: request bodies and WebSocket messages.

Starlette and strawberry read a request body whole into memory before parsing it, for anyone, signed in
or not: without a bound, one 96 MB POST to ``/graphql`` grew the server by 660 MB. This middleware answers
413 to a body over ``max_request_bytes`` as soon as that is known, from ``Content-Length`` before reading
anything, or else as the bytes arrive (a chunked body), so no more than the limit is ever read. A WebSocket
message over the same limit closes the connection with 1009 ("message too big") instead of being handed
on. Uploads are exempt: their parser streams parts to disk and stops each at ``max_upload_bytes``.
"""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.exceptions import RequestTooLargeError

__all__ = ["MESSAGE_TOO_BIG", "BodyLimitMiddleware"]

MESSAGE_TOO_BIG = 1009
"""The WebSocket close code for a message over the limit (RFC 6455 7.4.1)."""

_STREAMED = re.compile(r"^/api/projects/[^/]+/images/?$")
"""Paths whose bodies go to disk as they arrive, under limits of their own (uploads)."""


class _OverLimitError(Exception):
    """Raised into the app from ``receive`` when the body passes the limit."""


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] != "http" or _STREAMED.match(scope.get("path", "")):
            await self.app(scope, receive, send)
        elif _declared_length(scope) > self.max_bytes:
            await self._refuse(send)
        else:
            await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _OverLimitError
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except _OverLimitError:
            if started:  # too late to answer 413; the app read the body after starting its answer
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        error = RequestTooLargeError(self.max_bytes)
        body = json.dumps({"errors": [{"message": str(error), "extensions": error.extensions}]}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        # the client may still be sending: tell it the connection ends, rather than read the rest
        headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        closed = False

        async def bounded_receive() -> Message:
            nonlocal closed
            message = await receive()
            if message["type"] == "websocket.receive" and _message_size(message) > self.max_bytes:
                closed = True
                reason = f"message over {self.max_bytes} bytes"
                await send({"type": "websocket.close", "code": MESSAGE_TOO_BIG, "reason": reason})
                return {"type": "websocket.disconnect", "code": MESSAGE_TOO_BIG}
            return message

        async def guarded_send(message: Message) -> None:
            if not closed:  # the app may still answer before it sees the disconnect; the socket is gone
                await send(message)

        await self.app(scope, bounded_receive, guarded_send)


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0  # the server refuses a malformed length itself
    return 0


def _message_size(message: Message) -> int:
    text = message.get("text")
    if text is not None:
        return len(text.encode("utf-8", "surrogatepass"))
    return len(message.get("bytes") or b"")
