"""Settings to objects: the signer, the URL builder and the purger that ``SPHEROSEG_DELIVERY_…`` describe.

A missing secret or id for the chosen provider is a :class:`~server.exceptions.ConfigError` naming the
variable, raised when the app starts rather than on the first image someone opens.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from server.delivery.purge import (
    CloudflarePurger,
    CloudFrontPurger,
    FastlyPurger,
    NginxCachePurger,
    NullPurger,
    Purger,
)
from server.delivery.service import Delivery
from server.delivery.signing import UrlSigner
from server.delivery.specs import Fit, RenditionFormat, RenditionSpec
from server.delivery.urls import (
    CloudflareBuilder,
    CloudFrontBuilder,
    CustomBuilder,
    FastlyBuilder,
    ImgproxyBuilder,
    OriginBuilder,
    UrlBuilder,
)
from server.exceptions import ConfigError
from server.settings import Settings
from server.storage import BlobStore

MASTER_EDGE = 4096
"""The display master's longest edge: CDNs transform from it, and limit the size of what they read."""

__all__ = [
    "MASTER_EDGE",
    "base_signing_keys",
    "build_builder",
    "build_delivery",
    "build_purger",
    "build_signer",
    "cloudfront_signer",
]


def _secret(value: SecretStr | None, variable: str, why: str) -> str:
    if value is None or not value.get_secret_value():
        raise ConfigError(f"SPHEROSEG_{variable} must be set {why}")
    return value.get_secret_value()


def base_signing_keys(settings: Settings) -> tuple[dict[str, bytes], str]:
    """The configured image URL keys and the one that signs, before any rotation (server.delivery.keyring)."""
    keys = {kid: secret.get_secret_value().encode() for kid, secret in settings.delivery_signing_keys.items()}
    if not keys:
        derived = hmac.new(settings.secret().encode(), b"image urls", hashlib.sha256)
        keys = {"k0": derived.digest()}
    current = settings.delivery_signing_key_id or next(iter(keys))
    if current not in keys:
        raise ConfigError(
            f"SPHEROSEG_DELIVERY_SIGNING_KEY_ID={current!r} names no key of DELIVERY_SIGNING_KEYS"
        )
    return keys, current


def build_signer(settings: Settings) -> UrlSigner:
    keys, current = base_signing_keys(settings)
    return UrlSigner(keys, current, settings.delivery_url_ttl_seconds, settings.delivery_url_window_seconds)


def cloudfront_signer(key_pair_id: str, private_key_pem: str) -> Callable[[str, dt.datetime], str]:
    """CloudFront signed URLs (canned policy) through botocore's ``CloudFrontSigner`` and an RSA key."""
    from botocore.signers import CloudFrontSigner
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError("SPHEROSEG_DELIVERY_CLOUDFRONT_PRIVATE_KEY must be an RSA private key (PEM)")

    def rsa_signer(message: bytes) -> bytes:
        return key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # CloudFront verifies RSA-SHA1

    signer = CloudFrontSigner(key_pair_id, rsa_signer)

    def sign(url: str, expires: dt.datetime) -> str:
        signed: str = signer.generate_presigned_url(url, date_less_than=expires)
        return signed

    return sign


def _s3_location(settings: Settings) -> tuple[str, str]:
    url = settings.storage_url
    if not url.startswith("s3://"):
        return "", ""
    bucket, _, prefix = url[len("s3://") :].partition("/")
    return bucket, prefix.strip("/")


def build_builder(settings: Settings, signer: UrlSigner, master: RenditionSpec) -> UrlBuilder:
    kind = settings.delivery_url_builder
    base = settings.delivery_base_url or settings.public_url
    if kind == "origin":
        return OriginBuilder(signer, base, master)
    if not settings.delivery_base_url:
        raise ConfigError(f"SPHEROSEG_DELIVERY_BASE_URL must name the {kind} endpoint")
    if kind == "cloudflare":
        return CloudflareBuilder(signer, base, master)
    if kind == "fastly":
        return FastlyBuilder(signer, base, master)
    if kind == "imgproxy":
        why = "for the imgproxy URL builder (hex, as IMGPROXY_KEY and IMGPROXY_SALT)"
        key = bytes.fromhex(_secret(settings.delivery_imgproxy_key, "DELIVERY_IMGPROXY_KEY", why))
        salt = bytes.fromhex(_secret(settings.delivery_imgproxy_salt, "DELIVERY_IMGPROXY_SALT", why))
        source = settings.delivery_imgproxy_source_base or settings.public_url
        return ImgproxyBuilder(signer, base, master, key, salt, source)
    if kind == "custom":
        return CustomBuilder(signer, base, master, settings.delivery_custom_template)
    sign = None
    if settings.delivery_cloudfront_key_pair_id:
        pem = _secret(
            settings.delivery_cloudfront_private_key, "DELIVERY_CLOUDFRONT_PRIVATE_KEY", "with a key pair"
        )
        sign = cloudfront_signer(settings.delivery_cloudfront_key_pair_id, pem)
    bucket, prefix = _s3_location(settings)
    return CloudFrontBuilder(
        signer,
        base,
        master,
        settings.delivery_cloudfront_format,
        dit_bucket=settings.delivery_dit_bucket or bucket,
        object_key=lambda key: f"{prefix}/{key}" if prefix else key,
        cloudfront_signer=sign,
        origin_url=settings.public_url,
    )


def build_purger(settings: Settings, **overrides: Any) -> Purger:
    kind = settings.delivery_purge
    if kind == "auto":
        kind = (
            settings.delivery_url_builder
            if settings.delivery_url_builder in {"cloudfront", "cloudflare", "fastly"}
            else "none"
        )
    site = settings.delivery_base_url or settings.public_url
    if kind == "cloudfront":
        import boto3

        if not settings.delivery_cloudfront_distribution_id:
            raise ConfigError("SPHEROSEG_DELIVERY_CLOUDFRONT_DISTRIBUTION_ID must be set to purge CloudFront")
        kwargs = settings.s3_client_kwargs()
        kwargs.pop("endpoint_url", None)
        if settings.delivery_cloudfront_endpoint_url:
            kwargs["endpoint_url"] = settings.delivery_cloudfront_endpoint_url
        client = boto3.client("cloudfront", **kwargs)
        return CloudFrontPurger(settings.delivery_cloudfront_distribution_id, client, **overrides)
    if kind == "cloudflare":
        token = _secret(settings.delivery_cloudflare_api_token, "DELIVERY_CLOUDFLARE_API_TOKEN", "to purge")
        return CloudflarePurger(
            settings.delivery_cloudflare_api_url,
            settings.delivery_cloudflare_zone_id,
            token,
            site,
            batch=settings.delivery_cloudflare_batch,
            **overrides,
        )
    if kind == "fastly":
        token = _secret(settings.delivery_fastly_api_token, "DELIVERY_FASTLY_API_TOKEN", "to purge")
        return FastlyPurger(
            settings.delivery_fastly_api_url, settings.delivery_fastly_service_id, token, site, **overrides
        )
    if kind == "nginx":
        if not settings.delivery_nginx_cache_path:
            raise ConfigError("SPHEROSEG_DELIVERY_NGINX_CACHE_PATH must name the nginx proxy_cache folder")
        return NginxCachePurger(settings.delivery_nginx_cache_path)
    return NullPurger()


def build_delivery(settings: Settings, store: BlobStore, signer: UrlSigner) -> Delivery:
    """The delivery service; ``signer`` (:func:`build_signer`) is the one the store's download links use."""
    per_mille = settings.delivery_stretch_per_mille
    size = settings.delivery_thumbnail_size
    thumbnail = RenditionSpec(
        size,
        size,
        Fit.SCALE_DOWN,
        RenditionFormat(settings.delivery_thumbnail_format),
        settings.delivery_thumbnail_quality,
        per_mille,
    )
    master_format = RenditionFormat(settings.delivery_master_format)
    master = RenditionSpec(MASTER_EDGE, MASTER_EDGE, Fit.SCALE_DOWN, master_format, 90, per_mille)
    return Delivery(
        store,
        signer,
        build_builder(settings, signer, master),
        build_purger(settings),
        max_pixels=settings.max_pixels,
        max_decoded_bytes=settings.max_decoded_bytes,
        thumbnail=thumbnail,
        preview_quality=settings.delivery_preview_quality,
        master=master,
        render_threads=settings.delivery_render_threads,
        background_processes=settings.delivery_background_processes,
    )
