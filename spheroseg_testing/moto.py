"""moto's S3 server on 127.0.0.1: the S3 HTTP API with presigned URLs and multipart uploads.

It does not check credentials (any key id and secret pass), so credential handling is tested apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spheroseg_testing.ports import free_port

__all__ = ["MotoS3", "start_moto"]


@dataclass
class MotoS3:
    server: Any
    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop()


def start_moto() -> MotoS3:
    """A running server; :class:`FileNotFoundError` when moto is not installed."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as error:
        raise FileNotFoundError("moto's server is not installed (pip install 'moto[server,s3]')") from error
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return MotoS3(server, port)
