"""A version's outlines as binary: ``Segmentation.geometryUrl`` (signed, immutable, cacheable) and the token
route, both read with ``cluster.decode_outlines`` into what the JSON field says (SQLite and PostgreSQL)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from cluster import OutlinesFormatError, decode_outlines
from server.delivery.signing import ImagePath
from tests.server.api.test_projects import SAVE
from tests.server.conftest import Api, app_with, png_bytes
from tests.server.records import rewrite_records

pytestmark = pytest.mark.anyio

RING = [[10.25, 10.5], [40.75, 12.0], [38.0, 35.125], [12.0, 33.0]]
HOLE = [[20.0, 20.0], [20.0, 25.0], [25.0, 25.0], [25.0, 20.0]]
OTHER = [[50.0, 5.0], [60.0, 5.0], [60.0, 15.0], [50.0, 15.0]]
IMAGE = """query($i: Int!) { image(id: $i) { segmentation { version geometryUrl
  spheroids { id exterior holes metrics { areaPx perimeterPx centroidX holeCount areaUm2 } } } } }"""
HISTORY = "query($i: Int!) { image(id: $i) { segmentationHistory { version geometryUrl } } }"


async def _saved(api: Api) -> tuple[str, int, int]:
    owner = await api.user("owner")
    project = await api.project(owner)
    upload = await api.upload(owner, project, [("well.png", png_bytes(80, 48))])
    image_id = upload.json()["files"][0]["imageId"]
    spheroids = [{"exterior": RING, "holes": [HOLE]}, {"exterior": OTHER}]
    saved = await api.ok(SAVE, owner, id=image_id, base=0, sph=spheroids)
    assert saved["saveSegmentation"]["__typename"] == "SegmentationSaveSuccess"
    return owner, project, image_id


async def test_the_geometry_url_serves_what_the_json_field_says_cacheable_for_a_year(api: Api) -> None:
    owner, project, image_id = await _saved(api)
    segmentation = (await api.ok(IMAGE, owner, i=image_id))["image"]["segmentation"]
    url = segmentation["geometryUrl"]
    assert url.startswith(f"http://testserver/img/{project}/{image_id}/")  # absolute, as every URL
    assert url.endswith("/outlines-v1.bin")

    response = await api.client.get(url)  # no token: the signature is the permission
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.spheroseg.outlines"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["cache-tag"] == f"project-{project},image-{image_id}"
    outlines = decode_outlines(response.content)
    assert (outlines.width, outlines.height, outlines.version) == (80, 48, 1)
    as_json = segmentation["spheroids"]
    assert outlines.ids.tolist() == [s["id"] for s in as_json]
    for index, spheroid in enumerate(as_json):
        exterior, *holes = outlines.rings(index)
        assert exterior.tolist() == spheroid["exterior"]  # quarter and eighth pixels: exact
        assert [h.tolist() for h in holes] == spheroid["holes"]
        metrics = spheroid["metrics"]
        assert outlines.metrics["area_px"][index] == metrics["areaPx"]
        assert outlines.metrics["perimeter_px"][index] == metrics["perimeterPx"]
        assert outlines.metrics["centroid_x"][index] == metrics["centroidX"]
        assert outlines.metrics["hole_count"][index] == metrics["holeCount"]
        assert metrics["areaUm2"] is None and math.isnan(outlines.metrics["area_um2"][index])  # no pixel size

    again = await api.client.get(url, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert api.services.delivery.outlines.encodings == 1  # encoded once, served from the cache since


async def test_each_version_has_its_own_url_and_an_old_one_keeps_its_outlines(api: Api) -> None:
    owner, _, image_id = await _saved(api)
    saved = await api.ok(SAVE, owner, id=image_id, base=1, sph=[{"exterior": OTHER}])
    assert saved["saveSegmentation"]["segmentation"]["version"] == 2
    history = (await api.ok(HISTORY, owner, i=image_id))["image"]["segmentationHistory"]
    urls = {entry["version"]: entry["geometryUrl"] for entry in history}
    assert urls[2].endswith("/outlines-v2.bin") and urls[1].endswith("/outlines-v1.bin")
    newest = decode_outlines((await api.client.get(urls[2])).content)
    oldest = decode_outlines((await api.client.get(urls[1])).content)
    assert newest.spheroid_count == 1 and oldest.spheroid_count == 2


async def test_a_version_the_image_does_not_have_is_not_found(api: Api) -> None:
    owner, _, image_id = await _saved(api)
    url = (await api.ok(IMAGE, owner, i=image_id))["image"]["segmentation"]["geometryUrl"]
    parts = url.removeprefix("http://testserver").split("/")  # ['', 'img', project, image, kid, exp, sig, …
    signer = api.services.delivery.signer
    missing = signer.sign(ImagePath(int(parts[2]), image_id, parts[7], "outlines-v9.bin")).path()
    response = await api.client.get(missing)
    assert response.status_code == 404 and response.headers["cache-control"] == "private, no-store"


async def test_forged_and_expired_geometry_urls_are_refused(api: Api) -> None:
    owner, project, image_id = await _saved(api)
    url = (await api.ok(IMAGE, owner, i=image_id))["image"]["segmentation"]["geometryUrl"]
    url = url.removeprefix("http://testserver")
    parts = url.split("/")
    forged = "/".join([*parts[:6], "A" * 22, *parts[7:]])
    assert (await api.client.get(forged)).status_code == 403
    other_version = url.replace("outlines-v1.bin", "outlines-v2.bin")  # signed for version 1 only
    assert (await api.client.get(other_version)).status_code == 403
    stale = api.services.delivery.signer.sign(ImagePath(project, image_id, parts[7], parts[8]), now=0).path()
    expired = await api.client.get(stale)
    assert expired.status_code == 403 and "expired" in expired.text


async def test_nobody_who_may_not_see_the_image_is_given_the_url(api: Api) -> None:
    _, _, image_id = await _saved(api)
    stranger = await api.user("stranger")
    body = await api.gql(IMAGE, stranger, i=image_id)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN" and "/img/" not in str(body)


def _route(image_id: int, version: int) -> str:
    return f"/api/images/{image_id}/segmentations/{version}/geometry"


async def _get(api: Api, path: str, token: str | None, **headers: str) -> Any:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return await api.client.get(path, headers=headers)


async def test_the_token_route_serves_the_same_bytes_to_a_viewer_and_refuses_a_stranger(api: Api) -> None:
    owner, project, image_id = await _saved(api)
    url = (await api.ok(IMAGE, owner, i=image_id))["image"]["segmentation"]["geometryUrl"]
    signed = (await api.client.get(url)).content
    viewer = await api.user("viewer")
    await api.share(owner, project, "viewer", "VIEWER")

    response = await _get(api, _route(image_id, 1), viewer)
    assert response.status_code == 200 and response.content == signed
    assert response.headers["cache-control"] == "private, no-cache"
    assert decode_outlines(response.content).spheroid_count == 2
    cached = await _get(api, _route(image_id, 1), viewer, **{"If-None-Match": response.headers["etag"]})
    assert cached.status_code == 304

    stranger = await api.user("stranger")
    refused = await _get(api, _route(image_id, 1), stranger)
    assert refused.status_code == 403 and refused.content != signed
    nothing = await _get(api, _route(image_id + 100, 1), stranger)
    assert nothing.status_code == 403 and nothing.json() == refused.json()  # strangers learn nothing
    assert (await _get(api, _route(image_id, 1), None)).status_code == 401
    assert (await _get(api, _route(image_id, 1), "not-a-token")).status_code == 401
    missing = await _get(api, _route(image_id, 5), owner)
    assert missing.status_code == 404 and "no segmentation version 5" in missing.json()["error"]


async def test_a_record_stored_without_metrics_is_measured_for_the_geometry(api: Api) -> None:
    owner, _, image_id = await _saved(api)
    async with api.services.db.begin() as db:  # as an older server stored them
        await rewrite_records(db, image_id, lambda record: {**record, "metrics": {}})
    response = await _get(api, _route(image_id, 1), owner)
    outlines = decode_outlines(response.content)
    assert outlines.metrics["area_px"][1] == 100.0  # OTHER is a 10 x 10 square
    assert outlines.metrics["hole_count"].tolist() == [1.0, 0.0]


async def test_a_truncated_download_is_refused_by_the_reader(api: Api) -> None:
    owner, _, image_id = await _saved(api)
    data = (await _get(api, _route(image_id, 1), owner)).content
    with pytest.raises(OutlinesFormatError, match="truncated"):
        decode_outlines(data[: len(data) // 2])


async def test_behind_a_transforming_cdn_the_origin_still_serves_outlines(settings: Any) -> None:
    """With Cloudflare transforming images, the origin serves only the display master of each image; the
    outlines are no image and pass through the zone to the origin, which must answer them."""
    settings.delivery_url_builder = "cloudflare"
    settings.delivery_base_url = "https://images.lab.example"
    settings.delivery_purge = "none"
    async with app_with(settings) as api:
        owner, _, image_id = await _saved(api)
        url = (await api.ok(IMAGE, owner, i=image_id))["image"]["segmentation"]["geometryUrl"]
        assert url.startswith("https://images.lab.example/img/") and "/cdn-cgi/" not in url
        response = await api.client.get(url.removeprefix("https://images.lab.example"))
        assert response.status_code == 200 and decode_outlines(response.content).spheroid_count == 2
