"""Image references a worker opens: local paths, HTTP(S) URLs (an HTTP server on loopback) and S3 keys (moto's
S3 server on loopback), with retries for transient failures and clear errors for lasting ones."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from cluster.exceptions import SourceUnavailableError
from cluster.imaging import read_image
from cluster.sources import S3_ENDPOINT_ENV, S3_ENV, NamedBytes, display_name, fetch
from spheroseg_testing import start_moto
from tests.cluster.cluster_fakes import write_disc


def test_local_paths_come_back_as_paths_and_missing_ones_are_named(tmp_path: Path) -> None:
    image = write_disc(tmp_path / "a.png")
    assert fetch(str(image)) == image
    assert fetch(f"file://{image}") == image
    with pytest.raises(SourceUnavailableError, match=r"missing\.png: no such file"):
        fetch(tmp_path / "missing.png")
    with pytest.raises(SourceUnavailableError, match="unsupported scheme 'ftp'"):
        fetch("ftp://host/a.png")


class _Handler(BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}
    failures: ClassVar[dict[str, int]] = {}

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if self.failures.get(path, 0) > 0:
            self.failures[path] -= 1
            self.send_response(503)
            self.end_headers()
            return
        body = self.files.get(path)
        self.send_response(200 if body is not None else 404)
        self.end_headers()
        if body is not None:
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_base(tmp_path: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Handler.files = {"/img/a.png": write_disc(tmp_path / "a.png").read_bytes()}
    _Handler.failures = {}
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_urls_are_fetched_retried_when_busy_and_named_without_their_query(http_base: str) -> None:
    _Handler.failures["/img/a.png"] = 2  # two 503s, then the image
    source = fetch(f"{http_base}/img/a.png?X-Amz-Signature=secret", backoff=0.01)
    assert isinstance(source, NamedBytes)
    assert source.name == f"{http_base}/img/a.png"
    assert read_image(source).pixels.shape == (48, 48)
    with pytest.raises(SourceUnavailableError, match="HTTP 404"):
        fetch(f"{http_base}/img/nothing.png", backoff=0.01)
    _Handler.failures["/img/a.png"] = 5
    with pytest.raises(SourceUnavailableError, match="HTTP 503") as caught:
        fetch(f"{http_base}/img/a.png", attempts=2, backoff=0.01)
    assert caught.value.transient
    assert display_name("https://cdn/x.tif?sig=1") == "https://cdn/x.tif"


def test_s3_keys_are_read_from_an_s3_compatible_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    boto3 = pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        monkeypatch.setenv(S3_ENDPOINT_ENV, endpoint)
        for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="lab-images")
        s3.put_object(
            Bucket="lab-images", Key="plate1/a.png", Body=write_disc(tmp_path / "a.png").read_bytes()
        )
        source = fetch("s3://lab-images/plate1/a.png")
        assert isinstance(source, NamedBytes) and source.name == "s3://lab-images/plate1/a.png"
        assert read_image(source).pixels.shape == (48, 48)
        with pytest.raises(SourceUnavailableError, match="no such key"):
            fetch("s3://lab-images/plate1/missing.png")
        with pytest.raises(SourceUnavailableError, match="s3://BUCKET/KEY"):
            fetch("s3://lab-images")
    finally:
        server.stop()


def _worker_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, endpoint: str) -> None:
    """A worker started with the server's S3 variables and no AWS configuration of its own."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    values = {
        "endpoint_url": endpoint,
        "region_name": "eu-west-1",
        "aws_access_key_id": "k",
        "aws_secret_access_key": "s",
    }
    for argument, name in S3_ENV.items():
        monkeypatch.setenv(name, values[argument])


def test_a_worker_reads_s3_with_the_servers_variables_through_one_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    boto3 = pytest.importorskip("boto3")
    pytest.importorskip("moto.server")
    moto = start_moto()
    try:
        endpoint = moto.endpoint
        _worker_environment(monkeypatch, tmp_path, endpoint)
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="k",
            aws_secret_access_key="s",
        )
        s3.create_bucket(Bucket="lab-images")
        data = write_disc(tmp_path / "a.png").read_bytes()
        for index in range(3):
            s3.put_object(Bucket="lab-images", Key=f"plate1/{index}.png", Body=data)
        made: list[object] = []
        original = boto3.session.Session.client

        def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
            made.append(kwargs.get("config"))
            return original(self, *args, **kwargs)

        monkeypatch.setattr(boto3.session.Session, "client", counted)
        for index in range(3):
            source = fetch(f"s3://lab-images/plate1/{index}.png")
            assert isinstance(source, NamedBytes) and source.getvalue() == data
        assert len(made) == 1, "a worker should keep one S3 client (and its connections) for every image"
    finally:
        moto.stop()


def test_s3_requests_are_retried_by_botocores_standard_mode(
    http_base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("boto3")
    _worker_environment(monkeypatch, tmp_path, http_base)  # the loopback server answers path-style keys
    _Handler.failures["/img/a.png"] = 2  # two 503s (S3's SlowDown/ServiceUnavailable), then the object
    source = fetch("s3://img/a.png", attempts=3)
    assert isinstance(source, NamedBytes) and read_image(source).pixels.shape == (48, 48)
    _Handler.failures["/img/a.png"] = 5
    with pytest.raises(SourceUnavailableError, match="S3 error 503") as caught:
        fetch("s3://img/a.png", attempts=2)
    assert caught.value.transient and _Handler.failures["/img/a.png"] == 3  # two requests, no more
