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

from server.exceptions import ConfigError

__all__ = ["Settings", "default_data_dir"]


def default_data_dir() -> Path:
    return user_data_path("spheroseg", appauthor=False)


def _default_database_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir / 'spheroseg.sqlite3'}"


def _default_storage_url(data_dir: Path) -> str:
    return str(data_dir / "blobs")


class Settings(BaseSettings):
    """Everything the server reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="SPHEROSEG_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="The server's own folder: the default SQLite database and blob folder, and the secret "
        "key a development server makes.",
    )
    # Defined after data_dir: their defaults are made from it.
    database_url: str = Field(default_factory=lambda data: _default_database_url(data["data_dir"]))
    storage_url: str = Field(default_factory=lambda data: _default_storage_url(data["data_dir"]))
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_multipart_threshold_bytes: int = 16 * 1024 * 1024
    s3_worker_access: Literal["presigned", "direct"] = Field(
        default="presigned",
        description="How segmentation workers reach images in S3: 'presigned' hands them presigned URLs "
        "(no credentials on the workers); 'direct' hands them s3:// keys, read with the workers' own "
        "SPHEROSEG_S3_ENDPOINT_URL, SPHEROSEG_S3_REGION and credentials (or boto3's).",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs image and download URLs; required in production (the same on every replica). "
        "Unset in development: one is made and kept in data_dir (see server.keys).",
    )
    public_url: str = Field(
        default="",
        description="The server's address as clients reach it (https://seg.lab.example); every URL the API "
        "hands out starts with it. Empty: the scheme and host each request came to (behind a reverse "
        "proxy, see forwarded_allow_ips).",
    )
    forwarded_allow_ips: str = Field(
        default="",
        description="Reverse proxies whose X-Forwarded-Proto and X-Forwarded-For `serve` trusts (uvicorn's "
        "forwarded_allow_ips: addresses or networks, comma separated, * for any). Empty: none.",
    )
    session_hours: float = 24 * 14
    session_recheck_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often an open subscription reads its session again, for an end no event told "
        "(a user disabled from the CLI of a server on SQLite, an event the bus could not send).",
    )
    password_time_cost: int = 2
    password_memory_kib: int = 19_456
    max_upload_bytes: int = 2 * 1024**3
    max_request_bytes: int = Field(
        default=1024 * 1024,
        description="Largest request body (GraphQL and other API calls; not uploads, which have "
        "max_upload_bytes) and WebSocket message: larger ones get 413, or close the socket with 1009.",
    )
    max_files_per_upload: int = 500
    max_upload_request_bytes: int = Field(
        default=8 * 1024**3, description="All files of one upload request together, in bytes."
    )
    upload_temp_dir: str = Field(
        default="", description="Where uploads are spooled as they arrive; empty: the system's temp folder."
    )
    upload_min_free_bytes: int = Field(
        default=2 * 1024**3,
        description="Free space an upload must leave on the disk of upload_temp_dir; below it, uploads are "
        "refused (HTTP 507) until space is freed.",
    )
    max_pixels: int = 200_000_000
    max_decoded_bytes: int = Field(
        default=800_000_000,
        description="The most memory one decoded image plane may take (width x height x samples x bytes "
        "per sample); a file over it is refused at upload, and never decoded.",
    )
    introspection: bool | None = None
    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5_000
    max_cost: int = 5_000
    default_page_size: int = 50
    max_page_size: int = 500
    login_attempts_per_minute: int = Field(
        default=10,
        description="Login attempts a minute for one user name from one client address (5x that from one "
        "address for any names).",
    )
    login_attempts_per_user_per_minute: int = Field(
        default=100,
        description="Login attempts a minute for one user name from all addresses together; much higher than "
        "the per-address limit, so that one attacker's guesses cannot lock the real user out.",
    )
    expensive_mutations_per_minute: int = 30
    presign_seconds: int = 3600
    export_expiry_seconds: int = Field(
        default=3600,
        description="Exports (zips) are deleted this long after they are made; their download URL ends "
        "then too (or after presign_seconds, when that is sooner).",
    )
    export_sweep_seconds: float = Field(
        default=300.0, description="Seconds between sweeps of expired exports."
    )
    # Segmentation jobs (server/jobs): where they run and how the dispatcher feeds the cluster.
    scheduler: str | None = Field(
        default=None,
        description="A Dask scheduler (tcp://host:8786, or 'deployed' for `spheroseg cluster deploy`); "
        "unset: a local cluster the server starts on first use and can scale.",
    )
    cluster_connect_timeout: float = Field(default=10.0, description="Seconds to reach the scheduler.")
    cluster_workers: int | None = Field(
        default=None, description="Workers of the local cluster (default: cores)."
    )
    dispatcher: bool = Field(default=True, description="Run a dispatcher here (replicas elect one).")
    dispatch_max_in_flight: int = 32
    dispatch_wave_size: int = 8
    dispatch_poll_seconds: float = 1.0
    max_images_per_job: int = 100_000
    max_subscriptions_per_connection: int = 20
    max_connections_per_user: int = 10
    dataloader_batching: bool = Field(
        default=True,
        description="False resolves every relation of every object with its own query and no per-request "
        "cache (naive resolvers); only for benchmarks and for debugging a loader.",
    )
    # Image delivery (server/delivery): signed /img URLs, renditions, the CDN URL builder and purge.
    # Secrets and ids of a CDN are only needed for the builder or purge provider that uses them.
    delivery_url_builder: Literal["origin", "cloudfront", "cloudflare", "fastly", "imgproxy", "custom"] = (
        "origin"
    )
    delivery_base_url: str = Field(default="", description="The CDN's URL; empty: public_url (the origin).")
    delivery_signing_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description="Key id -> secret; empty: one key 'k0' derived from secret_key."
    )
    delivery_signing_key_id: str = Field(default="", description="The key that signs new URLs.")
    delivery_signing_key_refresh_seconds: float = Field(
        default=30.0,
        description="How often a replica looks for a signing key rotated elsewhere (it also looks at once "
        "when a URL names a newer key than its own).",
    )
    delivery_url_ttl_seconds: int = 7 * 24 * 3600
    delivery_url_window_seconds: int = 24 * 3600
    delivery_thumbnail_size: int = 256
    delivery_thumbnail_format: Literal["webp", "avif", "png", "jpeg"] = "webp"
    delivery_thumbnail_quality: int = 70
    delivery_preview_quality: int = 80
    delivery_stretch_per_mille: tuple[int, int] = (5, 995)
    delivery_master_format: Literal["png", "webp"] = "png"
    delivery_render_threads: int = 2
    delivery_background_processes: int = Field(
        default=1,
        description="Processes, at low CPU priority, that make thumbnails after uploads (0: threads of the "
        "server, at normal priority), so that segmentation workers on the same machine keep the CPUs.",
    )
    delivery_cloudfront_format: Literal["plain", "dit"] = "plain"
    delivery_cloudfront_key_pair_id: str = ""
    delivery_cloudfront_private_key: SecretStr | None = None
    delivery_cloudfront_distribution_id: str = ""
    delivery_cloudfront_endpoint_url: str | None = None
    delivery_dit_bucket: str = ""
    delivery_imgproxy_key: SecretStr | None = None
    delivery_imgproxy_salt: SecretStr | None = None
    delivery_imgproxy_source_base: str = Field(default="", description="How imgproxy reaches the origin.")
    delivery_custom_template: str = ""
    delivery_purge: Literal["auto", "none", "cloudfront", "cloudflare", "fastly", "nginx"] = "auto"
    delivery_cloudflare_zone_id: str = ""
    delivery_cloudflare_api_token: SecretStr | None = None
    delivery_cloudflare_api_url: str = "https://api.cloudflare.com/client/v4"
    delivery_cloudflare_batch: int = 100
    delivery_fastly_service_id: str = ""
    delivery_fastly_api_token: SecretStr | None = None
    delivery_fastly_api_url: str = "https://api.fastly.com"
    delivery_nginx_cache_path: str = ""

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

    def secret(self) -> str:
        """The secret key's value; :func:`server.keys.with_secret_key` has filled it in for the app."""
        if self.secret_key is None:
            raise ConfigError("SPHEROSEG_SECRET_KEY is not set (server.keys.with_secret_key fills it in)")
        return self.secret_key.get_secret_value()

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
