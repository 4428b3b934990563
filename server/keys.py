"""The server's secret key (``SPHEROSEG_SECRET_KEY``): what image URLs and download links are signed with.

Production refuses to start without it: a key made up per process would break every signed URL at each
restart and differ between replicas. In development (the embedded server) a key is made once and kept in
``<data dir>/secret_key`` (mode 0600), so URLs, and the desktop's HTTP cache of what they fetched, survive
restarts. The offline server (``spheroseg server serve --offline``) runs with production's defaults but
keeps its key in the same way. Rotating the image URL key does not change this one (see
:mod:`server.delivery.keyring`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from server.exceptions import ConfigError
from server.settings import Settings

__all__ = ["SECRET_KEY_FILE", "with_secret_key"]

SECRET_KEY_FILE = "secret_key"

_MISSING_IN_PRODUCTION = (
    "SPHEROSEG_SECRET_KEY must be set in production: the same long random value on every replica "
    "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))'), or signed image and download "
    "URLs break at each restart"
)


def with_secret_key(settings: Settings, *, keep: bool = False) -> Settings:
    """``settings`` with ``secret_key`` set: as given, else (in development, or where ``keep`` says so:
    the offline server, one process on the user's machine) the one kept on disk."""
    if settings.secret_key is not None and settings.secret_key.get_secret_value().strip():
        return settings
    if settings.environment == "production" and not keep:
        raise ConfigError(_MISSING_IN_PRODUCTION)
    path = Path(settings.data_dir) / SECRET_KEY_FILE
    try:
        kept = _kept_key(path)
    except OSError as error:  # an unwritable or missing data directory: say which, and the way out
        message = (
            f"cannot keep a secret key in {path} ({error}); set SPHEROSEG_DATA_DIR or SPHEROSEG_SECRET_KEY"
        )
        raise ConfigError(message) from error
    return settings.model_copy(update={"secret_key": SecretStr(kept)})


def _kept_key(path: Path) -> str:
    """The key in ``path``, made there first if missing; two servers starting at once agree on one key."""
    existing = _read(path)
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_urlsafe(32) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(draft, path)  # atomic, and refuses if another process linked its key first
    except FileExistsError:
        pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            draft.unlink()
    kept = _read(path)
    if not kept:
        raise ConfigError(f"{path} holds no secret key; delete it, or set SPHEROSEG_SECRET_KEY")
    return kept


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return ""
    except OSError as error:
        message = f"cannot read the secret key in {path} ({error}); set SPHEROSEG_SECRET_KEY"
        raise ConfigError(message) from error
