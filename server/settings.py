"""Typed settings: ``SPHEROSEG_…`` environment variables, an optional TOML file, embedded defaults.

With nothing set the server is the embedded one: SQLite and a local folder in the user data directory,
development mode (GraphiQL on). A lab sets, e.g.::

    SPHEROSEG_DATABASE_URL=postgresql+asyncpg://seg:…@db/spheroseg
    SPHEROSEG_STORAGE_URL=s3://lab-images/spheroseg
    SPHEROSEG_S3_ENDPOINT_URL=https://s3.lab.example   SPHEROSEG_S3_REGION=eu-west-1
    SPHEROSEG_S3_ACCESS_KEY_ID=…  SPHEROSEG_S3_SECRET_ACCESS_KEY=…
    SPHEROSEG_SECRET_KEY=…  SPHEROSEG_ENVIRONMENT=production

``SPHEROSEG_CONFIG`` names a TOML file with the same keys in lower case (environment variables win).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Literal

from platformdirs import user_data_path
from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

__all__ = ["Settings", "default_data_dir"]


def default_data_dir() -> Path:
    return user_data_path("spheroseg", appauthor=False)


def _default_database_url() -> str:
    return f"sqlite+aiosqlite:///{default_data_dir() / 'spheroseg.sqlite3'}"


def _default_storage_url() -> str:
    return str(default_data_dir() / "blobs")


class Settings(BaseSettings):
    """Everything the server reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="SPHEROSEG_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    database_url: str = Field(default_factory=_default_database_url)
    storage_url: str = Field(default_factory=_default_storage_url)
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_multipart_threshold_bytes: int = 16 * 1024 * 1024
    secret_key: SecretStr = Field(default_factory=lambda: SecretStr(secrets.token_urlsafe(32)))
    public_url: str = ""
    session_hours: float = 24 * 14
    password_time_cost: int = 2
    password_memory_kib: int = 19_456
    max_upload_bytes: int = 2 * 1024**3
    max_files_per_upload: int = 500
    max_pixels: int = 200_000_000
    introspection: bool | None = None
    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5_000
    max_cost: int = 5_000
    default_page_size: int = 50
    max_page_size: int = 500
    login_attempts_per_minute: int = 10
    expensive_mutations_per_minute: int = 30
    presign_seconds: int = 3600
    dataloader_batching: bool = Field(
        default=True,
        description="False resolves every relation of every object with its own query and no per-request "
        "cache (naive resolvers); only for benchmarks and for debugging a loader.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config = os.environ.get("SPHEROSEG_CONFIG")
        if config:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config)))
        return tuple(sources)

    @property
    def introspection_enabled(self) -> bool:
        return self.environment == "development" if self.introspection is None else self.introspection

    @property
    def graphiql(self) -> bool:
        return self.environment == "development"

    def s3_client_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"region_name": self.s3_region}
        if self.s3_endpoint_url:
            kwargs["endpoint_url"] = self.s3_endpoint_url
        if self.s3_access_key_id and self.s3_secret_access_key:
            kwargs["aws_access_key_id"] = self.s3_access_key_id.get_secret_value()
            kwargs["aws_secret_access_key"] = self.s3_secret_access_key.get_secret_value()
        return kwargs
