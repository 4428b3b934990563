"""Upload progress: with ``Accept: application/x-ndjson`` the upload route answers one JSON line per file
as soon as that file is stored, while the rest of the body is still arriving, then a summary line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from server.app import create_app
from spheroseg_testing.serving import serve
from tests.server.api.test_uploads import BOUNDARY, _app, _count, _multipart
from tests.server.conftest import Api, png_bytes
from tests.server.starters import free_port

pytestmark = pytest.mark.anyio

NDJSON = "application/x-ndjson"


async def _lines(
    api: Api, token: str, project_id: int, files: list[tuple[str, bytes]]
) -> list[dict[str, Any]]:
    response = await api.client.post(
        f"/api/projects/{project_id}/images",
        files=[("files", (name, data, "application/octet-stream")) for name, data in files],
        headers={"Authorization": f"Bearer {token}", "Accept": NDJSON},
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith(NDJSON)
    return [json.loads(line) for line in response.text.splitlines()]


async def test_each_file_gets_its_line_in_order_bad_files_refused_while_others_are_stored(api: Api) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    image = png_bytes(64, 48, seed=1)
    files = [
        ("a.png", image),
        ("notes.txt", b"hello, not an image"),
        ("b.png", png_bytes(40, 30, seed=2)),
        ("again.png", image),
        ("empty.tif", b""),
    ]
    lines = await _lines(api, owner, project_id, files)
    assert [line.get("name") for line in lines] == [
        "a.png",
        "notes.txt",
        "b.png",
        "again.png",
        "empty.tif",
        None,
    ]
    a, text, b, again, empty, summary = lines
    assert a["accepted"] and a["width"] == 64 and b["accepted"] and b["height"] == 30
    assert not text["accepted"] and "text" in text["reason"].lower()
    assert again["duplicateOf"] == a["imageId"] and "already here as 'a.png'" in again["reason"]
    assert not empty["accepted"] and "empty" in empty["reason"]
    assert summary == {"done": True, "accepted": 2, "refused": 3}
    assert await _count(api, owner, project_id) == 2
    plain = await api.upload(owner, project_id, [("c.png", png_bytes(seed=3))])  # JSON stays the default
    assert plain.headers["content-type"] == "application/json" and plain.json()["accepted"] == 1


async def test_a_request_over_its_total_ends_with_the_reason_after_the_files_kept(
    database_url: str, tmp_path: Path
) -> None:
    async with _app(database_url, tmp_path, max_upload_request_bytes=100_000) as api:
        owner = await api.user("owner")
        project_id = await api.project(owner)
        files = [(f"f{i}.png", png_bytes(250, 250, seed=i)) for i in range(3)]  # ~63 kB each

        async def chunks() -> Any:
            body = _multipart(files)
            for start in range(0, len(body), 16_384):
                yield body[start : start + 16_384]

        response = await api.client.post(
            f"/api/projects/{project_id}/images",
            content=chunks(),
            headers={
                "Authorization": f"Bearer {owner}",
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                "Accept": NDJSON,
            },
        )
        lines = [json.loads(line) for line in response.text.splitlines()]
        first, *rest, summary = lines
        assert first["name"] == "f0.png" and first["accepted"]
        assert all(not line["accepted"] for line in rest)
        assert summary["done"] and summary["status"] == 413 and summary["accepted"] == 1
        assert "pass the limit of 100,000 bytes" in summary["error"]
        assert await _count(api, owner, project_id) == 1
        refused = await api.client.post(  # refused before reading: a plain error answer, no lines
            f"/api/projects/{project_id}/images",
            files=[("files", ("a.png", b"x" * 200_000))],
            headers={"Authorization": f"Bearer {owner}", "Accept": NDJSON},
        )
        assert refused.status_code == 413 and "error" in refused.json()


async def _read_chunk(reader: asyncio.StreamReader) -> bytes:
    size = int((await reader.readline()).strip(), 16)
    data = await reader.readexactly(size) if size else b""
    await reader.readexactly(2)
    return data


async def test_a_streaming_client_reads_a_files_line_before_it_sends_the_next_file(api: Api) -> None:
    """Over a real socket to uvicorn: the first file's line arrives, and its image is listed, while the
    request body of the second file has not been sent yet."""
    owner = await api.user("owner")
    project_id = await api.project(owner)
    body = _multipart([("first.png", png_bytes(64, 48, seed=1)), ("second.png", png_bytes(64, 48, seed=2))])
    split = body.index(b"--" + BOUNDARY.encode(), 10) + len(BOUNDARY) + 4  # the first part and its end
    async with serve(create_app(services=api.services), free_port()) as url:
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = (
            f"POST /api/projects/{project_id}/images HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {owner}\r\nAccept: {NDJSON}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        writer.write(head.encode())

        def send(data: bytes) -> None:
            writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

        send(body[:split])
        await writer.drain()
        status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        assert status.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in status.lower()
        pending = b""
        while b"\n" not in pending:
            pending += await asyncio.wait_for(_read_chunk(reader), 20)
        first = json.loads(pending.split(b"\n")[0])
        assert first["name"] == "first.png" and first["accepted"]
        assert await _count(api, owner, project_id) == 1  # stored before the rest was sent
        send(body[split:])
        send(b"")
        await writer.drain()
        while not pending.endswith(b"\n") or pending.count(b"\n") < 3:
            pending += await asyncio.wait_for(_read_chunk(reader), 20)
        writer.close()
        lines = [json.loads(line) for line in pending.splitlines()]
        assert [line.get("name") for line in lines] == ["first.png", "second.png", None]
        assert lines[1]["accepted"] and lines[2] == {"done": True, "accepted": 2, "refused": 0}
        assert await _count(api, owner, project_id) == 2
