"""Request bodies and WebSocket messages over ``max_request_bytes`` (1 MiB by default) are refused, unread."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from server.app import create_app
from tests.server.conftest import Api, png_bytes
from tests.server.edge import serve
from tests.server.starters import free_port

pytestmark = pytest.mark.anyio

LIMIT = 1024 * 1024  # the default
CHUNK = 64 * 1024
JSON = {"Content-Type": "application/json"}


def _padded_query(size: int) -> bytes:
    """A valid GraphQL request of about ``size`` bytes (a comment pads it)."""
    return json.dumps({"query": "{ __typename }\n#" + "x" * size}).encode()


def _refusal(body: dict[str, Any]) -> dict[str, Any]:
    errors: list[dict[str, Any]] = body["errors"]
    assert len(errors) == 1 and "SPHEROSEG_MAX_REQUEST_BYTES" in errors[0]["message"]
    return errors[0]


async def test_an_anonymous_oversized_graphql_post_gets_413_and_the_server_goes_on(api: Api) -> None:
    response = await api.client.post("/graphql", content=_padded_query(2 * LIMIT), headers=JSON)
    assert response.status_code == 413
    assert _refusal(response.json())["extensions"] == {"code": "REQUEST_TOO_LARGE", "maxBytes": LIMIT}
    assert response.headers["cache-control"] == "private, no-store"
    fine = await api.client.post("/graphql", content=_padded_query(LIMIT // 2), headers=JSON)
    assert fine.status_code == 200 and fine.json()["data"] == {"__typename": "Query"}


async def test_a_chunked_body_without_a_length_is_refused_before_it_is_read_in_full(api: Api) -> None:
    sent = 0
    total_chunks = 64  # 4 MiB

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(total_chunks):
            sent += 1
            yield b" " * CHUNK

    response = await api.client.post("/graphql", content=body(), headers=JSON)
    assert response.status_code == 413
    _refusal(response.json())
    assert sent <= LIMIT // CHUNK + 1 < total_chunks  # the rest was never asked for


async def test_uploads_keep_their_own_larger_limit(api: Api) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    large = png_bytes(1600, 1400, seed=3)
    assert len(large) > LIMIT
    response = await api.upload(owner, project_id, [("large.png", large)])
    assert response.status_code == 200 and response.json()["accepted"] == 1


async def test_an_oversized_websocket_message_closes_the_socket_with_1009(api: Api) -> None:
    token = await api.user("owner")
    async with serve(create_app(services=api.services), free_port()) as url:
        ws_url = url.replace("http", "ws") + "/graphql"
        async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"], max_size=None) as socket:  # type: ignore[list-item]
            await socket.send(
                json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
            )
            assert json.loads(await socket.recv())["type"] == "connection_ack"
            query = "{ __typename }\n#" + "x" * (2 * LIMIT)
            await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
            with pytest.raises(ConnectionClosed) as closed:
                answer = await asyncio.wait_for(socket.recv(), 10)
                pytest.fail(f"the oversized message was answered: {str(answer)[:200]}")
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        assert "message over 1048576 bytes" in closed.value.rcvd.reason
        async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
            await socket.send(
                json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
            )
            assert json.loads(await socket.recv())["type"] == "connection_ack"
