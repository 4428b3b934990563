"""URL formats of every provider, exactly as their documentation writes them, and the origin's signatures."""

from __future__ import annotations

import base64
import datetime as dt
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from server.delivery.assembly import build_builder, build_signer, cloudfront_signer
from server.delivery.responsive import quality_for, responsive_widths, snap_width
from server.delivery.signing import ImagePath, PathProblem, UrlSigner
from server.delivery.specs import Fit, RenditionFormat, RenditionSpec, SpecError, rendition_key
from server.delivery.urls import (
    CloudflareBuilder,
    CloudFrontBuilder,
    CustomBuilder,
    FastlyBuilder,
    ImageRef,
    ImgproxyBuilder,
    OriginBuilder,
    imgproxy_signature,
)
from server.exceptions import ConfigError, InvalidKeyError
from server.settings import Settings
from server.storage import check_key, download_message

NOW = 1_800_000_000.0
SHA = "ab" * 32
REF = ImageRef(12, 345, SHA)
MASTER = RenditionSpec(4096, 4096, Fit.SCALE_DOWN, RenditionFormat.PNG, 90)
THUMB = RenditionSpec(256, 256, Fit.COVER, RenditionFormat.WEBP, 70)


def _signer(**keys: bytes) -> UrlSigner:
    return UrlSigner(
        keys or {"k1": b"secret-one"}, next(iter(keys or {"k1": b""})), 7 * 86400, 86400, lambda: NOW
    )


def _signed(signer: UrlSigner, name: str) -> str:
    return signer.sign(ImagePath(12, 345, SHA, name)).path()


def test_imgproxy_signature_matches_the_documented_vector() -> None:
    # docs.imgproxy.net, "Signing a URL": key "secret", salt "hello".
    path = "/rs:fill:300:400:0/g:sm/aHR0cDovL2V4YW1w/bGUuY29tL2ltYWdl/cy9jdXJpb3NpdHku/anBn.png"
    assert imgproxy_signature(b"secret", b"hello", path) == "oKfUtW34Dvo2BGQehJFR4Nr0_rIjOtdtzJ3QFsUcXH8"


def test_imgproxy_url_is_signature_options_plain_source_and_extension() -> None:
    signer = _signer()
    builder = ImgproxyBuilder(
        signer, "https://imgproxy.lab.example/", MASTER, b"secret", b"hello", "http://origin:8000"
    )
    url = builder.rendition(REF, THUMB)
    master = _signed(signer, MASTER.segment())
    rest = f"/rs:fill:256:256:1/q:70/plain/http://origin:8000{master}@webp"
    assert url == f"https://imgproxy.lab.example/{imgproxy_signature(b'secret', b'hello', rest)}{rest}"
    scale_down = builder.rendition(REF, RenditionSpec(512, 0, Fit.SCALE_DOWN, RenditionFormat.AVIF, 60))
    assert "/rs:fit:512:0:0/q:60/plain/" in scale_down and scale_down.endswith("@avif")


def test_cloudflare_url_puts_options_at_the_zone_root_and_the_prefix_once() -> None:
    signer = _signer()
    builder = CloudflareBuilder(signer, "https://images.lab.example/spheroseg/", MASTER)
    url = builder.rendition(REF, THUMB)
    master = _signed(signer, MASTER.segment())
    assert url == (
        "https://images.lab.example/cdn-cgi/image/width=256,height=256,quality=70,format=webp,fit=cover"
        f"/spheroseg{master}"
    )
    assert url.count("/spheroseg/") == 1 and "//img" not in url
    plain = CloudflareBuilder(signer, "https://images.lab.example", MASTER).rendition(
        REF, RenditionSpec(1024, 0, Fit.SCALE_DOWN, RenditionFormat.AVIF, 80)
    )
    assert (
        plain
        == f"https://images.lab.example/cdn-cgi/image/width=1024,quality=80,format=avif,fit=scale-down{master}"
    )


def test_fastly_url_is_the_master_with_image_optimizer_parameters() -> None:
    signer = _signer()
    builder = FastlyBuilder(signer, "https://img.lab.example", MASTER)
    url = builder.rendition(REF, THUMB)
    parts = urlsplit(url)
    assert parts.path == _signed(signer, MASTER.segment())
    assert parse_qs(parts.query) == {
        "width": ["256"],
        "height": ["256"],
        "fit": ["cover"],
        "format": ["webp"],
        "quality": ["70"],
    }
    contain = parse_qs(urlsplit(builder.rendition(REF, RenditionSpec(300, 200, Fit.CONTAIN))).query)
    assert contain["fit"] == ["bounds"] and contain["enable"] == ["upscale"]


def test_origin_urls_are_signed_paths_under_the_public_url_once() -> None:
    signer = _signer()
    builder = OriginBuilder(signer, "https://lab.example/seg/", MASTER)
    assert builder.rendition(REF, THUMB) == "https://lab.example/seg" + _signed(signer, THUMB.segment())
    assert builder.original(REF) == "https://lab.example/seg" + _signed(signer, "original")
    assert OriginBuilder(signer, "", MASTER).original(REF).startswith("/img/12/345/k1/")


def _verify_cloudfront(url: str, public_key: rsa.RSAPublicKey) -> tuple[str, int]:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    expires = int(query["Expires"][0])
    resource = url.split("?")[0]
    policy = json.dumps(
        {"Statement": [{"Resource": resource, "Condition": {"DateLessThan": {"AWS:EpochTime": expires}}}]},
        separators=(",", ":"),
    ).encode()
    signature = base64.b64decode(query["Signature"][0].replace("-", "+").replace("_", "=").replace("~", "/"))
    public_key.verify(signature, policy, padding.PKCS1v15(), hashes.SHA1())  # raises when it does not verify
    return query["Key-Pair-Id"][0], expires


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_cloudfront_signed_url_verifies_with_the_public_key(rsa_key: rsa.RSAPrivateKey) -> None:
    signer = _signer()
    builder = CloudFrontBuilder(
        signer,
        "https://d111111abcdef8.cloudfront.net",
        MASTER,
        cloudfront_signer=cloudfront_signer("K2JCJMDEHXQW5F", _pem(rsa_key)),
    )
    url = builder.rendition(REF, THUMB)
    assert url.startswith(
        "https://d111111abcdef8.cloudfront.net" + _signed(signer, THUMB.segment()) + "?Expires="
    )
    key_pair, expires = _verify_cloudfront(url, rsa_key.public_key())
    assert key_pair == "K2JCJMDEHXQW5F" and expires == signer.expiry()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(InvalidSignature):
        _verify_cloudfront(url, other.public_key())


def test_cloudfront_dit_request_is_base64_json_of_bucket_key_and_edits() -> None:
    signer = _signer()
    builder = CloudFrontBuilder(
        signer,
        "https://d111111abcdef8.cloudfront.net",
        MASTER,
        request_format="dit",
        dit_bucket="lab-images",
        object_key=lambda key: f"spheroseg/{key}",
    )
    assert builder.transforms_at_edge
    url = builder.rendition(REF, THUMB)
    encoded = url.removeprefix("https://d111111abcdef8.cloudfront.net/")
    request = json.loads(base64.b64decode(encoded))
    assert request == {
        "bucket": "lab-images",
        "key": f"spheroseg/{rendition_key(SHA, MASTER)}",
        "edits": {"resize": {"fit": "cover", "width": 256, "height": 256}, "webp": {"quality": 70}},
    }
    original = json.loads(base64.b64decode(builder.original(REF).rsplit("/", 1)[1]))
    assert original == {"bucket": "lab-images", "key": f"spheroseg/images/{SHA}"}
    scale_down = json.loads(base64.b64decode(builder.rendition(REF, RenditionSpec(800, 0)).rsplit("/", 1)[1]))
    assert scale_down["edits"]["resize"] == {"fit": "inside", "width": 800, "withoutEnlargement": True}


def test_custom_template_fills_in_the_fields_and_refuses_unknown_ones() -> None:
    signer = _signer()
    builder = CustomBuilder(
        signer, "https://cdn.lab.example/", MASTER, "{base}{master_path}?w={width}&f={format}&q={quality}"
    )
    assert builder.rendition(REF, THUMB) == (
        f"https://cdn.lab.example{_signed(signer, MASTER.segment())}?w=256&f=webp&q=70"
    )
    with pytest.raises(ConfigError, match="CUSTOM_TEMPLATE"):
        CustomBuilder(signer, "", MASTER, "{base}{secret_key}")


def test_settings_select_the_builder_and_name_what_is_missing() -> None:
    settings = Settings(
        secret_key="s", delivery_url_builder="cloudflare", delivery_base_url="https://z.example"
    )
    signer = build_signer(settings)
    assert build_builder(settings, signer, MASTER).name == "cloudflare"
    assert build_builder(Settings(secret_key="s"), signer, MASTER).name == "origin"
    with pytest.raises(ConfigError, match="DELIVERY_IMGPROXY_KEY"):
        build_builder(
            Settings(secret_key="s", delivery_url_builder="imgproxy", delivery_base_url="https://i"),
            signer,
            MASTER,
        )
    with pytest.raises(ConfigError, match="DELIVERY_BASE_URL"):
        build_builder(Settings(secret_key="s", delivery_url_builder="fastly"), signer, MASTER)


def test_signatures_verify_rotate_and_refuse_tampering_and_expiry() -> None:
    old = UrlSigner({"k1": b"one"}, "k1", 3600, 600, lambda: NOW)
    rotated = UrlSigner({"k1": b"one", "k2": b"two"}, "k2", 3600, 600, lambda: NOW)
    path = old.sign(ImagePath(1, 2, SHA, "original")).path()
    assert isinstance(rotated.verify(path), ImagePath)  # URLs of the old key still work after rotation
    assert "/k2/" in rotated.sign(ImagePath(1, 2, SHA, "original")).path()
    assert rotated.verify(path.replace("/1/2/", "/1/3/")) is PathProblem.BAD_SIGNATURE
    assert rotated.verify(path.replace("/k1/", "/k9/")) is PathProblem.UNKNOWN_KEY
    assert rotated.verify(path, now=NOW + 3600 + 601) is PathProblem.EXPIRED
    assert rotated.verify("/img/../etc/passwd") is PathProblem.MALFORMED
    # Expiry is rounded up to the window: URLs issued a minute apart are the same string (cache hits).
    first = old.sign(ImagePath(1, 2, SHA, "original"), now=NOW + 1).path()
    assert old.sign(ImagePath(1, 2, SHA, "original"), now=NOW + 61).path() == first


def test_rendition_names_are_canonical_and_keys_pass_the_store_check() -> None:
    assert RenditionSpec.parse(THUMB.segment()) == THUMB
    with pytest.raises(SpecError):
        RenditionSpec.parse(THUMB.segment().replace("w256", "w0256"))
    with pytest.raises(SpecError):
        RenditionSpec(100, 0, Fit.COVER)
    assert check_key(rendition_key(SHA, THUMB)) == rendition_key(SHA, THUMB)
    assert rendition_key(SHA, THUMB) != rendition_key(SHA, RenditionSpec(256, 256, Fit.COVER, quality=71))


def test_responsive_widths_snap_and_quality_drops_with_device_pixel_ratio() -> None:
    assert snap_width(300, 2048) == 384 and snap_width(5000, 2048) == 2048 and snap_width(100, 64) == 64
    assert responsive_widths(1000) == [256, 384, 512, 768, 1000]
    assert quality_for(80, 1.0) == 80 and quality_for(80, 2.0) == 65 and quality_for(80, 3.0) == 55
    assert quality_for(45, 3.0) == 40


def test_cloudfront_expiry_is_the_origin_expiry() -> None:
    signer = _signer()
    assert dt.datetime.fromtimestamp(signer.expiry(), dt.UTC) > dt.datetime.fromtimestamp(NOW, dt.UTC)


def test_download_links_are_signed_for_one_blob_until_their_own_expiry() -> None:
    signer = UrlSigner({"k1": b"one"}, "k1", 3600, 600, lambda: NOW)
    message = download_message(f"exports/{'a' * 32}/plate.zip")
    expires = int(NOW) + 60  # the caller's lifetime, not rounded to the image URL window
    key_id, signature = signer.sign_message(message, expires)
    assert key_id == "k1" and signer.verify_message(message, key_id, expires, signature) is None
    other = download_message(f"exports/{'b' * 32}/plate.zip")
    assert signer.verify_message(other, key_id, expires, signature) is PathProblem.BAD_SIGNATURE
    assert signer.verify_message(message, key_id, expires + 3600, signature) is PathProblem.BAD_SIGNATURE
    assert signer.verify_message(message, key_id, expires, signature, now=expires + 1) is PathProblem.EXPIRED
    with pytest.raises(InvalidKeyError):  # only keys the server makes are ever signed
        download_message("../secret")


def test_outlines_urls_are_plain_signed_paths_where_the_origin_answers_them() -> None:
    """Outlines are served by the origin as they are: through a CDN that forwards paths, and around the
    image transformers (imgproxy, CloudFront's DIT), which would read them as images."""
    signer = _signer()
    name = "outlines-v3.bin"
    path = _signed(signer, name)
    assert OriginBuilder(signer, "https://lab.example/seg/", MASTER).plain(REF, name) == (
        "https://lab.example/seg" + path
    )
    assert CloudflareBuilder(signer, "https://images.lab.example", MASTER).plain(REF, name) == (
        "https://images.lab.example" + path
    )
    assert FastlyBuilder(signer, "https://img.lab.example", MASTER).plain(REF, name) == (
        "https://img.lab.example" + path
    )
    imgproxy = ImgproxyBuilder(signer, "https://imgproxy.example", MASTER, b"k", b"s", "http://origin:8000")
    assert imgproxy.plain(REF, name) == "http://origin:8000" + path
    dit = CloudFrontBuilder(
        signer, "https://d1.cloudfront.net", MASTER, request_format="dit", origin_url="https://lab.example"
    )
    assert dit.plain(REF, name) == "https://lab.example" + path
    plain = CloudFrontBuilder(signer, "https://d1.cloudfront.net", MASTER)
    assert plain.plain(REF, name) == "https://d1.cloudfront.net" + path
    assert signer.verify(path) == ImagePath(12, 345, SHA, name, "k1", signer.expiry(), path.split("/")[6])
