"""Where a worker gets an image's bytes from, given a reference: a local path, an ``s3://`` key or a URL.

Tasks carry references, never pixels, so images travel from storage straight to the worker that segments
them and nothing large passes through the scheduler::

    source = fetch("s3://lab-images/sha256/ab/abcdef")      # a named in-memory file for read_image
    source = fetch("https://cdn.example.org/img/42?sig=…")  # likewise; the name drops the query string
    source = fetch("/shared/plate1/A01.tif")                 # a Path, read in place

- **Local paths** must exist and be files; they are returned as :class:`~pathlib.Path` objects.
- **S3** uses the variables the server reads for its own store (``SPHEROSEG_S3_ENDPOINT_URL``,
  ``SPHEROSEG_S3_REGION``, ``SPHEROSEG_S3_ACCESS_KEY_ID``, ``SPHEROSEG_S3_SECRET_ACCESS_KEY``), so a worker
  started with the server's environment reaches the same bucket; unset ones fall back to boto3's usual
  configuration (environment, profiles, instance roles). Each process keeps one client (boto3 clients are
  thread-safe and pool their connections) with botocore's *standard* retry mode, which retries throttling,
  5xx answers and dropped connections with backoff.
- **HTTP(S)** uses httpx with a timeout; a presigned URL works as it is.

Failures raise :class:`~cluster.exceptions.SourceUnavailableError` naming the reference. Transient ones (a
timeout, a dropped connection, HTTP 429/5xx, S3 throttling) are retried with a short backoff first: by this
module for HTTP and for an S3 body cut short, by botocore for S3 requests.
"""

from __future__ import annotations

import functools
import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cluster.exceptions import SourceUnavailableError

__all__ = [
    "DEFAULT_ATTEMPTS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT",
    "S3_ENDPOINT_ENV",
    "S3_ENV",
    "NamedBytes",
    "display_name",
    "fetch",
]

DEFAULT_TIMEOUT = 30.0
"""Seconds to wait for a remote store before the attempt counts as failed."""
DEFAULT_ATTEMPTS = 3
"""Tries for a transient failure, the first included."""
DEFAULT_MAX_BYTES = 2 * 1024**3
"""Largest download accepted (2 GiB); the image reader then applies its own pixel limit."""
S3_ENDPOINT_ENV = "SPHEROSEG_S3_ENDPOINT_URL"
S3_ENV = {
    "endpoint_url": S3_ENDPOINT_ENV,
    "region_name": "SPHEROSEG_S3_REGION",
    "aws_access_key_id": "SPHEROSEG_S3_ACCESS_KEY_ID",
    "aws_secret_access_key": "SPHEROSEG_S3_SECRET_ACCESS_KEY",
}
"""boto3 client argument -> the variable that sets it (the names of ``server.settings``)."""

_TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504})
_TRANSIENT_S3 = frozenset({"SlowDown", "Throttling", "RequestTimeout", "InternalError", "ServiceUnavailable"})


class NamedBytes(io.BytesIO):
    """An in-memory file that knows the reference it came from (the reader names it in messages)."""

    def __init__(self, data: bytes, name: str) -> None:
        super().__init__(data)
        self.name = name


def display_name(reference: str | Path) -> str:
    """The name results carry for ``reference``: a URL without its query (no presigned signatures)."""
    text = str(reference)
    if text.startswith(("http://", "https://")):
        parts = urlsplit(text)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return text


def fetch(
    reference: str | Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    attempts: int = DEFAULT_ATTEMPTS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    backoff: float = 0.5,
) -> Path | NamedBytes:
    """Return something :func:`cluster.imaging.read_image` can read for ``reference``."""
    text = str(reference)
    if text.startswith("s3://"):
        client = _s3_client(timeout, attempts, **_s3_arguments())
        return _fetch_s3(client, text, max_bytes, attempts, backoff)
    if text.startswith(("http://", "https://")):
        return _retrying(lambda: _fetch_http(text, timeout, max_bytes), text, attempts, backoff)
    if "://" in text and not text.startswith("file://"):
        scheme = text.split("://", 1)[0]
        raise SourceUnavailableError(text, f"unsupported scheme {scheme!r}; use a path, s3:// or https://")
    path = Path(text.removeprefix("file://"))
    if not path.is_file():
        reason = "no such file" if not path.exists() else "not a file"
        raise SourceUnavailableError(text, reason)
    return path


def _retrying(attempt: Callable[[], NamedBytes], reference: str, attempts: int, backoff: float) -> NamedBytes:
    for number in range(1, max(1, attempts) + 1):
        try:
            return attempt()
        except SourceUnavailableError as exc:
            if not exc.transient or number >= attempts:
                raise
        time.sleep(backoff * 2 ** (number - 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _fetch_http(url: str, timeout: float, max_bytes: int) -> NamedBytes:
    import httpx

    name = display_name(url)
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=True) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                transient = response.status_code in _TRANSIENT_HTTP
                raise SourceUnavailableError(name, f"HTTP {response.status_code}", transient=transient)
            data = bytearray()
            for chunk in response.iter_bytes():
                data.extend(chunk)
                if len(data) > max_bytes:
                    raise SourceUnavailableError(name, f"larger than {max_bytes} bytes")
    except httpx.TransportError as exc:  # timeouts, refused or dropped connections
        raise SourceUnavailableError(name, f"{type(exc).__name__}: {exc}", transient=True) from exc
    return NamedBytes(bytes(data), name)


def _s3_arguments() -> dict[str, str]:
    """The client arguments the environment sets now (read per fetch, so a changed environment counts)."""
    return {argument: value for argument, name in S3_ENV.items() if (value := os.environ.get(name))}


@functools.lru_cache(maxsize=4)
def _s3_client(timeout: float, attempts: int, **arguments: str) -> Any:
    """This process's client for these arguments: made once, so its connections are reused image after
    image (a client takes ~50 ms to make and opens a new connection)."""
    import boto3
    from botocore.config import Config

    retries: Any = {"mode": "standard", "total_max_attempts": max(1, attempts)}
    config = Config(connect_timeout=timeout, read_timeout=timeout, retries=retries)
    return boto3.session.Session().client("s3", config=config, **arguments)


def _fetch_s3(client: Any, reference: str, max_bytes: int, attempts: int, backoff: float) -> NamedBytes:
    """The object's bytes. Requests are retried by botocore; a body cut short is asked for again here
    (botocore does not retry reading it)."""
    from botocore.exceptions import BotoCoreError

    bucket, _, key = reference.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise SourceUnavailableError(reference, "an S3 reference reads s3://BUCKET/KEY")
    for number in range(1, max(1, attempts) + 1):
        obj = _get_object(client, reference, bucket, key)
        if int(obj.get("ContentLength", 0)) > max_bytes:
            obj["Body"].close()
            raise SourceUnavailableError(reference, f"larger than {max_bytes} bytes")
        try:
            with obj["Body"] as body:
                data: bytes = body.read()
            return NamedBytes(data, reference)
        except BotoCoreError as exc:  # the connection dropped or stalled mid-body
            if number >= attempts:
                reason = f"{type(exc).__name__}: {exc}"
                raise SourceUnavailableError(reference, reason, transient=True) from exc
        time.sleep(backoff * 2 ** (number - 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _get_object(client: Any, reference: str, bucket: str, key: str) -> Any:
    """``get_object``'s answer, its failures (after botocore's retries) as :class:`SourceUnavailableError`."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        return client.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        reason = {"NoSuchKey": "no such key", "NoSuchBucket": "no such bucket"}.get(code, f"S3 error {code}")
        transient = code in _TRANSIENT_S3 or status >= 500
        raise SourceUnavailableError(reference, reason, transient=transient) from exc
    except NoCredentialsError as exc:
        raise SourceUnavailableError(reference, "no S3 credentials configured on this worker") from exc
    except BotoCoreError as exc:  # endpoint unreachable, timeouts
        raise SourceUnavailableError(reference, f"{type(exc).__name__}: {exc}", transient=True) from exc
