"""Real services on 127.0.0.1 for the tests and the benchmarks, started and stopped by the caller.

One home for them, so that benchmarks import no test modules:

- :mod:`~spheroseg_testing.ports`: a free port;
- :mod:`~spheroseg_testing.postgres`: a PostgreSQL 15 cluster (initdb + pg_ctl, fsync off);
- :mod:`~spheroseg_testing.moto`: moto's S3 server;
- :mod:`~spheroseg_testing.nginx`: nginx as a caching reverse proxy in front of an origin, and the one
  way nginx is run here (``packaging/lab/local.py``'s edge too);
- :mod:`~spheroseg_testing.dask_cluster`: a Dask scheduler and workers as processes (a running cluster);
- :mod:`~spheroseg_testing.serving`: an ASGI app in uvicorn in the caller's event loop;
- :mod:`~spheroseg_testing.server`: the server as a user starts it (``spheroseg server serve``), with the
  two GraphQL calls every caller needs.

A missing program raises :class:`FileNotFoundError` saying what to install; tests turn that into a skip or,
with ``SPHEROSEG_REQUIRE_SERVICES`` set (CI), a failure. Nothing here imports pytest.
"""

from __future__ import annotations

from spheroseg_testing.moto import MotoS3, start_moto
from spheroseg_testing.nginx import Nginx, find_nginx, nginx_command, start_nginx
from spheroseg_testing.ports import free_port
from spheroseg_testing.postgres import Postgres, find_pg_bin, start_postgres
from spheroseg_testing.server import SPHEROSEG, ServerProcess, graphql, login, start_server
from spheroseg_testing.serving import serve

__all__ = [
    "SPHEROSEG",
    "MotoS3",
    "Nginx",
    "Postgres",
    "ServerProcess",
    "find_nginx",
    "find_pg_bin",
    "free_port",
    "graphql",
    "login",
    "nginx_command",
    "serve",
    "start_moto",
    "start_nginx",
    "start_postgres",
    "start_server",
]
