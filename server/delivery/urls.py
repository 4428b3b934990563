"""URL builders: one interface, one implementation per way of delivering images, chosen by settings.

``origin`` (default)
    ``<public_url>/img/…`` on this server; it renders and caches renditions itself.
``cloudfront``
    plain paths on the distribution (CloudFront caches what the origin renders), or, with
    ``delivery_cloudfront_format = "dit"``, the *Dynamic Image Transformation for Amazon CloudFront*
    request: the base64 JSON ``{"bucket", "key", "edits"}`` of the display master in S3. Either is signed
    with a CloudFront key pair (botocore's ``CloudFrontSigner``, canned policy, RSA-SHA1) when one is set.
``cloudflare``
    ``<zone>/cdn-cgi/image/width=…,height=…,quality=…,format=…,fit=…/<origin path of the master>``.
``fastly``
    ``<service>/<origin path of the master>?width=…&height=…&fit=…&format=…&quality=…`` (Image Optimizer).
``imgproxy``
    ``<imgproxy>/<signature>/rs:<type>:<w>:<h>:<enlarge>/q:<quality>/plain/<master URL>@<ext>``, the
    signature being HMAC-SHA256(key, salt + path) in URL-safe base64, as imgproxy documents.
``custom``
    a ``str.format`` template with ``{base}``, ``{path}`` (the origin's rendition path), ``{master_path}``,
    ``{width}``, ``{height}``, ``{fit}``, ``{format}`` and ``{quality}``.

Every URL carries the origin's own signature in its path, so a CDN that forwards it needs no secret of
ours. CDNs cannot transform TIFF, so the providers that transform at the edge start from the display
master: an 8-bit, contrast-stretched PNG (or WebP) of the whole image, made by the origin.

Joining is done in one place (:func:`join_url`): a base URL with a path prefix (``https://lab.example/seg``)
gets the prefix once, and Cloudflare's ``/cdn-cgi/image/`` sits at the zone's root, before that prefix.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote, urlencode, urlsplit

from server.delivery.signing import ImagePath, UrlSigner
from server.delivery.specs import Fit, RenditionFormat, RenditionSpec
from server.exceptions import ConfigError

__all__ = [
    "CloudFrontBuilder",
    "CloudflareBuilder",
    "CustomBuilder",
    "FastlyBuilder",
    "ImageRef",
    "ImgproxyBuilder",
    "OriginBuilder",
    "UrlBuilder",
    "imgproxy_signature",
    "join_url",
]


@dataclass(frozen=True)
class ImageRef:
    project_id: int
    image_id: int
    content_hash: str


def join_url(base: str, path: str) -> str:
    """``base`` (scheme, host, optional path prefix) + an absolute ``path``, with exactly one slash."""
    return base.rstrip("/") + "/" + path.lstrip("/")


class UrlBuilder(Protocol):
    """Makes the URL of an image's original or of one of its renditions."""

    name: str
    transforms_at_edge: bool
    """True when the CDN makes renditions from the display master (the origin only serves masters)."""

    def original(self, ref: ImageRef) -> str: ...

    def rendition(self, ref: ImageRef, spec: RenditionSpec) -> str: ...

    def plain(self, ref: ImageRef, name: str) -> str:
        """The URL of a signed path the origin serves as it is (a version's outlines)."""
        ...


class _Signed:
    """What every builder shares: the origin's signer, the base URL and the display master's spec."""

    name = "origin"
    transforms_at_edge = False

    def __init__(self, signer: UrlSigner, base_url: str, master: RenditionSpec) -> None:
        self.signer = signer
        self.base_url = base_url
        self.master = master

    def path(self, ref: ImageRef, name: str) -> ImagePath:
        return self.signer.sign(ImagePath(ref.project_id, ref.image_id, ref.content_hash, name))

    def original(self, ref: ImageRef) -> str:
        return join_url(self.base_url, self.path(ref, "original").path())

    def master_path(self, ref: ImageRef) -> ImagePath:
        return self.path(ref, self.master.segment())

    def plain(self, ref: ImageRef, name: str) -> str:
        """A signed path served by the origin as it is (outlines), on the base that passes it there
        unchanged: the CDN's, or where an image transformer sits there, the origin's own."""
        return join_url(self.plain_base, self.path(ref, name).path())

    @property
    def plain_base(self) -> str:
        return self.base_url


class OriginBuilder(_Signed):
    def rendition(self, ref: ImageRef, spec: RenditionSpec) -> str:
        return join_url(self.base_url, self.path(ref, spec.segment()).path())


class CloudflareBuilder(_Signed):
    name = "cloudflare"
    transforms_at_edge = True

    def rendition(self, ref: ImageRef, spec: RenditionSpec) -> str:
        parts = urlsplit(self.base_url)
        zone = f"{parts.scheme}://{parts.netloc}"
        source = join_url(parts.path or "/", self.master_path(ref).path())
        options = [f"width={spec.width}"] if spec.width else []
        options += [f"height={spec.height}"] if spec.height else []
        options += [f"quality={spec.quality}", f"format={spec.format.value}", f"fit={spec.fit.value}"]
        return f"{zone}/cdn-cgi/image/{','.join(options)}{source}"


_FASTLY_FORMATS = {
    RenditionFormat.WEBP: "webp",
    RenditionFormat.AVIF: "avif",
    RenditionFormat.PNG: "png",
    RenditionFormat.JPEG: "pjpg",
}


class FastlyBuilder(_Signed):
    name = "fastly"
    transforms_at_edge = True

    def rendition(self, ref: ImageRef, spec: RenditionSpec) -> str:
        query: list[tuple[str, str | int]] = []
        if spec.width:
            query.append(("width", spec.width))
        if spec.height:
            query.append(("height", spec.height))
        query.append(("fit", "cover" if spec.fit is Fit.COVER else "bounds"))
        if spec.fit is Fit.CONTAIN:
            query.append(("enable", "upscale"))
        query += [("format", _FASTLY_FORMATS[spec.format]), ("quality", spec.quality)]
        return join_url(self.base_url, self.master_path(ref).path()) + "?" + urlencode(query)


def imgproxy_signature(key: bytes, salt: bytes, path: str) -> str:
    digest = hmac.new(key, salt + path.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class ImgproxyBuilder(_Signed):
    name = "imgproxy"
    transforms_at_edge = True

    def __init__(
        self,
        signer: UrlSigner,
        base_url: str,
        master: RenditionSpec,
        key: bytes,
        salt: bytes,
        source_base: str,
    ) -> None:
        super().__init__(signer, base_url, master)
        self.key = key
        self.salt = salt
        self.source_base = source_base

    @property
    def plain_base(self) -> str:
        return self.source_base

    def rendition(self, ref: ImageRef, spec: RenditionSpec) -> str:
        kind = "fill" if spec.fit is Fit.COVER else "fit"
        enlarge = 0 if spec.fit is Fit.SCALE_DOWN else 1
        source = quote(join_url(self.source_base, self.master_path(ref).path()), safe=":/")
        options = f"rs:{kind}:{spec.width}:{spec.height}:{enlarge}/q:{spec.quality}"
        path = f"/{options}/plain/{source}@{spec.extension}"
        return join_url(self.base_url, f"/{imgproxy_signature(self.key, self.salt, path)}{path}")


_DIT_FIT = {Fit.SCALE_DOWN: "inside", Fit.CONTAIN: "inside", Fit.COVER: "cover"}


class CloudFrontBuilder(_Signed):
    """Plain paths or DIT requests on a CloudFront distribution, signed with its key pair when given."""

    name = "cloudfront"

    def __init__(
        self,
        signer: UrlSigner,
        base_url: str,
        master: RenditionSpec,
        request_format: str = "plain",
        dit_bucket: str = "",
        object_key: Callable[[str], str] = lambda key: key,
        cloudfront_signer: Callable[[str, dt.datetime], str] | None = None,
        origin_url: str = "",
    ) -> None:
        super().__init__(signer, base_url, master)
        self.origin_url = origin_url
        self.request_format = request_format
        self.transforms_at_edge = request_format == "dit"
        self.dit_bucket = dit_bucket
        self.object_key = object_key
        self.cloudfront_signer = cloudfront_signer

    def _finish(self, url: str) -> str:
        if self.cloudfront_signer is None:
            return url
        expires = dt.datetime.fromtimestamp(self.signer.expiry(), dt.UTC)
        return self.cloudfront_signer(url, expires)

    def _dit(self, key: str, edits: dict[str, object] | None) -> str:
        request: dict[str, object] = {"bucket": self.dit_bucket, "key": self.object_key(key)}
        if edits:
            request["edits"] = edits
        encoded = base64.b64encode(json.dumps(request, separators=(",", ":")).encode()).decode()
        return join_url(self.base_url, "/" + encoded)

    def plain(self, ref: ImageRef, name: str) -> str:
        if self.request_format == "dit":  # the distribution transforms images: the origin serves these
            return join_url(self.origin_url or self.base_url, self.path(ref, name).path())
        return self._finish(super().plain(ref, name))

    def original(self, ref: ImageRef) -> str:
        if self.request_format == "dit":
            return self._finish(self._dit(f"images/{ref.content_hash}", None))
        return self._finish(super().original(ref))

    def rendition(self, ref: ImageRef, spec: RenditionSpec) -> str:
        if self.request_format != "dit":
            return self._finish(join_url(self.base_url, self.path(ref, spec.segment()).path()))
        resize: dict[str, object] = {"fit": _DIT_FIT[spec.fit]}
        if spec.width:
            resize["width"] = spec.width
        if spec.height:
            resize["height"] = spec.height
        if spec.fit is Fit.SCALE_DOWN:
            resize["withoutEnlargement"] = True
        edits = {"resize": resize, spec.format.value: {"quality": spec.quality}}
        master_key = f"renditions/{ref.content_hash}/{self.master.digest()}.{self.master.extension}"
        return self._finish(self._dit(master_key, edits))


_TEMPLATE_FIELDS = frozenset({"base", "path", "master_path", "width", "height", "fit", "format", "quality"})


class CustomBuilder(_Signed):
    name = "custom"

    def __init__(self, signer: UrlSigner, base_url: str, master: RenditionSpec, template: str) -> None:
        super().__init__(signer, base_url, master)
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        unknown = fields - _TEMPLATE_FIELDS
        if not template or unknown:
            raise ConfigError(
                "SPHEROSEG_DELIVERY_CUSTOM_TEMPLATE must be a template using only "
                f"{{{'}, {'.join(sorted(_TEMPLATE_FIELDS))}}}; unknown: {sorted(unknown)}"
            )
        self.template = template

    def rendition(self, ref: ImageRef, spec: RenditionSpec) -> str:
        return self.template.format(
            base=self.base_url.rstrip("/"),
            path=self.path(ref, spec.segment()).path(),
            master_path=self.master_path(ref).path(),
            width=spec.width,
            height=spec.height,
            fit=spec.fit.value,
            format=spec.format.value,
            quality=spec.quality,
        )
