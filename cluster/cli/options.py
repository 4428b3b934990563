"""Options that several ``spheroseg`` commands share, declared once so that they read and check alike.

``--scheduler`` and the TLS files of a ``tls://`` scheduler are taken by ``segment``, ``cluster deploy``
and the commands that talk to a running cluster (``scale``, ``status``, ``metrics``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from cluster.launch.spec import TlsFiles

__all__ = ["scheduler_option", "tls_files", "tls_options"]

F = TypeVar("F", bound=Callable[..., Any])


def scheduler_option(meaning: str) -> Callable[[F], F]:
    """``--scheduler ADDR`` (or ``$SPHEROSEG_SCHEDULER``), its help text ``meaning``."""
    return click.option(
        "--scheduler", "scheduler", metavar="ADDR", default=None, envvar="SPHEROSEG_SCHEDULER", help=meaning
    )


def tls_options(command: F) -> F:
    """``--tls-ca-file``, ``--tls-cert`` and ``--tls-key``: read them with :func:`tls_files`."""
    existing_file = click.Path(exists=True, dir_okay=False)
    for option in (
        click.option(
            "--tls-key", type=existing_file, default=None, help="Client key (PEM), unless in --tls-cert."
        ),
        click.option("--tls-cert", type=existing_file, default=None, help="Client certificate (PEM)."),
        click.option(
            "--tls-ca-file",
            type=existing_file,
            default=None,
            help="CA certificate (PEM) for a tls:// scheduler.",
        ),
    ):
        command = option(command)
    return command


def tls_files(ca_file: str | None, cert: str | None, key: str | None) -> TlsFiles | None:
    """The TLS files given, ``None`` for none; half of them is a usage error rather than plain TCP."""
    if ca_file is None and cert is None and key is None:
        return None
    if ca_file is None or cert is None:
        raise click.UsageError(
            "TLS needs both --tls-ca-file and --tls-cert (and --tls-key unless in the cert)"
        )
    return TlsFiles(ca_file, cert, key)
