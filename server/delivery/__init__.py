"""Image delivery: display renditions, signed cacheable ``/img/…`` URLs, CDN URL builders and purges.

Review means scrolling through thousands of images, so the desktop fetches pixels through plain, signed,
immutable URLs that any HTTP cache or CDN can keep, never through the GraphQL API. Modules:

- :mod:`~server.delivery.specs`: what a rendition is, its URL name and storage key;
- :mod:`~server.delivery.renditions`: original → 8-bit stretched WebP/AVIF/PNG/JPEG (Pillow);
- :mod:`~server.delivery.signing`: HMAC-signed paths with key ids and rounded expiry;
- :mod:`~server.delivery.keyring`: the signing keys, rotated for every replica through the database;
- :mod:`~server.delivery.urls`: one URL builder per provider (origin, CloudFront, Cloudflare, Fastly,
  imgproxy, a custom template); :mod:`~server.delivery.responsive`: width ladder, DPR-aware quality;
- :mod:`~server.delivery.headers`: Cache-Control classes, ETags, ranges, purge tags;
- :mod:`~server.delivery.endpoint`: the ``/img/…`` origin endpoint;
- :mod:`~server.delivery.outlines`: a segmentation version's outlines in the binary format of
  ``cluster.outlines``, encoded once and served at signed ``/img/…/outlines-v<version>.bin`` paths;
- :mod:`~server.delivery.purge`: CloudFront, Cloudflare, Fastly and nginx-cache purges;
- :mod:`~server.delivery.service` and :mod:`~server.delivery.assembly`: the long-lived service and how
  settings make it.
"""

from __future__ import annotations

from server.delivery.assembly import base_signing_keys, build_delivery, build_signer
from server.delivery.endpoint import ImageEndpoint
from server.delivery.headers import CacheControlMiddleware
from server.delivery.keyring import Keyring
from server.delivery.purge import PurgeReport, PurgeRequest
from server.delivery.service import Delivery
from server.delivery.specs import Fit, RenditionFormat, RenditionSpec
from server.delivery.urls import ImageRef

__all__ = [
    "CacheControlMiddleware",
    "Delivery",
    "Fit",
    "ImageEndpoint",
    "ImageRef",
    "Keyring",
    "PurgeReport",
    "PurgeRequest",
    "RenditionFormat",
    "RenditionSpec",
    "base_signing_keys",
    "build_delivery",
    "build_signer",
]
