"""Purges: CloudFront invalidations on moto's server, Cloudflare and Fastly against a local HTTP fake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from server.delivery.purge import CloudflarePurger, CloudFrontPurger, FastlyPurger, PurgeRequest
from tests.server.conftest import app_with, make_settings, png_bytes
from tests.server.edge import ApiFake, api_fake

pytestmark = pytest.mark.anyio


def _cloudfront(endpoint: str) -> Any:
    return boto3.client(
        "cloudfront",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
    )


def _distribution(client: Any) -> str:
    config = {
        "CallerReference": "spheroseg-test",
        "Comment": "",
        "Enabled": True,
        "Origins": {
            "Quantity": 1,
            "Items": [
                {
                    "Id": "origin",
                    "DomainName": "origin.lab.example",
                    "CustomOriginConfig": {
                        "HTTPPort": 80,
                        "HTTPSPort": 443,
                        "OriginProtocolPolicy": "https-only",
                    },
                }
            ],
        },
        "DefaultCacheBehavior": {"TargetOriginId": "origin", "ViewerProtocolPolicy": "https-only"},
    }
    distribution_id: str = client.create_distribution(DistributionConfig=config)["Distribution"]["Id"]
    return distribution_id


async def test_cloudfront_invalidations_are_batched_and_prefixes_become_wildcards(moto_endpoint: str) -> None:
    client = _cloudfront(moto_endpoint)
    distribution = _distribution(client)
    purger = CloudFrontPurger(distribution, client, batch=2)
    paths = ("/img/1/2/", "/img/1/3/", "/img/4/")
    report = await purger.purge(PurgeRequest(tags=("project-9", "image-5"), paths=paths))
    assert report.requests == 2 and report.paths == 4
    assert report.errors == ["CloudFront purges by path only; tag 'image-5' has no path"]
    sent = []
    for summary in client.list_invalidations(DistributionId=distribution)["InvalidationList"]["Items"]:
        batch = client.get_invalidation(DistributionId=distribution, Id=summary["Id"])["Invalidation"]
        sent.append(sorted(batch["InvalidationBatch"]["Paths"]["Items"]))
    assert sorted(p for batch in sent for p in batch) == ["/img/1/2/*", "/img/1/3/*", "/img/4/*", "/img/9/*"]
    assert all(len(batch) <= 2 for batch in sent)


async def test_cloudfront_errors_are_reported(moto_endpoint: str) -> None:
    report = await CloudFrontPurger("NO-SUCH-DISTRIBUTION", _cloudfront(moto_endpoint)).purge(
        PurgeRequest(paths=("/img/1/",))
    )
    assert report.requests == 1 and report.paths == 0 and "NoSuchDistribution" in report.errors[0]


async def test_cloudflare_purges_tags_prefixes_and_files_in_batches() -> None:
    with api_fake() as fake:
        purger = CloudflarePurger(
            f"{fake.url}/client/v4", "zone1", "token-1", "https://img.lab.example/seg", batch=2
        )
        tags = ("image-1", "image-2", "image-3")
        report = await purger.purge(PurgeRequest(tags=tags, paths=("/img/7/", "/img/7/8/k/1/s/h/original")))
    assert report.ok and report.requests == 4 and report.tags == 3 and report.paths == 2
    assert {r.path for r in fake.requests} == {"/client/v4/zones/zone1/purge_cache"}
    assert all(r.headers["authorization"] == "Bearer token-1" for r in fake.requests)
    assert all(r.headers["content-type"] == "application/json" for r in fake.requests)
    assert [r.body for r in fake.requests] == [
        {"tags": ["image-1", "image-2"]},
        {"tags": ["image-3"]},
        {"prefixes": ["img.lab.example/seg/img/7/"]},
        {"files": ["https://img.lab.example/seg/img/7/8/k/1/s/h/original"]},
    ]


@pytest.mark.parametrize(
    ("status", "body"), [(403, {"success": False}), (200, {"success": False, "errors": ["no"]})]
)
async def test_cloudflare_refusals_are_reported_not_swallowed(status: int, body: dict[str, Any]) -> None:
    with api_fake() as fake:
        fake.status, fake.body = status, body
        report = await CloudflarePurger(fake.url, "z", "t", "https://x.example").purge(
            PurgeRequest(tags=("a",))
        )
    assert not report.ok and report.tags == 0 and "cloudflare" in report.errors[0]


async def test_fastly_purges_surrogate_keys_in_batches_of_256_and_exact_urls() -> None:
    with api_fake() as fake:
        purger = FastlyPurger(fake.url, "svc1", "fastly-token", "https://img.lab.example")
        tags = tuple(f"image-{i}" for i in range(300))
        report = await purger.purge(PurgeRequest(tags=tags, paths=("/img/3/", "/img/1/2/k/9/s/h/original")))
    assert report.ok and report.tags == 301 and report.paths == 1
    batches = [r for r in fake.requests if r.path == "/service/svc1/purge"]
    assert [len(r.headers["surrogate-key"].split()) for r in batches] == [256, 45]
    keys = {k for r in batches for k in r.headers["surrogate-key"].split()}
    assert "project-3" in keys and "image-299" in keys
    assert all(r.headers["fastly-key"] == "fastly-token" for r in fake.requests)
    assert fake.requests[-1].path == "/purge/img.lab.example/img/1/2/k/9/s/h/original"


async def test_fastly_errors_and_unreachable_apis_are_reported() -> None:
    with api_fake() as fake:
        fake.status = 500
        report = await FastlyPurger(fake.url, "s", "t", "https://x.example").purge(PurgeRequest(tags=("a",)))
    assert "refused (500)" in report.errors[0]
    gone = await FastlyPurger("http://127.0.0.1:9", "s", "t", "https://x").purge(PurgeRequest(tags=("a",)))
    assert "failed" in gone.errors[0]


def _cloudflare(fake: ApiFake) -> dict[str, Any]:
    return {
        "delivery_url_builder": "cloudflare",
        "delivery_base_url": "https://img.lab.example",
        "delivery_cloudflare_api_url": fake.url,
        "delivery_cloudflare_zone_id": "zone9",
        "delivery_cloudflare_api_token": "tok",
    }


async def test_deleting_images_purges_them_and_reports_failures(database_url: str, tmp_path: Path) -> None:
    with api_fake() as fake:
        async with app_with(make_settings(database_url, str(tmp_path / "b"), **_cloudflare(fake))) as api:
            token = await api.user("owner")
            project = await api.project(token)
            uploaded = await api.upload(
                token, project, [("a.png", png_bytes(seed=1)), ("b.png", png_bytes(seed=2))]
            )
            ids = [f["imageId"] for f in uploaded.json()["files"]]
            thumbnail = await api.ok("query($i: Int!) { image(id: $i) { thumbnailUrl } }", token, i=ids[0])
            assert thumbnail["image"]["thumbnailUrl"].startswith("https://img.lab.example/cdn-cgi/image/")
            delete = (
                "mutation($i: [Int!]!) { deleteImages(imageIds: $i) "
                "{ ... on ImagesDeleteSuccess { cdnPurgeErrors } } }"
            )
            assert (await api.ok(delete, token, i=[ids[0]]))["deleteImages"]["cdnPurgeErrors"] == []
            assert fake.requests[-1].body == {"tags": [f"image-{ids[0]}"]}
            fake.status = 500
            errors = (await api.ok(delete, token, i=[ids[1]]))["deleteImages"]["cdnPurgeErrors"]
            assert len(errors) == 1 and "refused (500)" in errors[0]


PURGE = """mutation($p: Int, $i: [Int!], $paths: [String!], $tags: [String!]) {
  purgeCdn(projectId: $p, imageIds: $i, paths: $paths, tags: $tags) { __typename
    ... on CdnPurgeSuccess { provider requests tags paths }
    ... on CdnPurgeFailed { provider errors }
    ... on InputError { field message } } }"""


async def test_admins_purge_a_project_images_paths_and_tags(database_url: str, tmp_path: Path) -> None:
    with api_fake() as fake:
        async with app_with(make_settings(database_url, str(tmp_path / "b"), **_cloudflare(fake))) as api:
            admin = await api.user("admin", admin=True)
            project = await api.project(admin)
            uploaded = await api.upload(admin, project, [("a.png", png_bytes(seed=3))])
            image_id = uploaded.json()["files"][0]["imageId"]
            done = (await api.ok(PURGE, admin, p=project, i=[image_id], paths=["/img/1/"], tags=["x-1"]))[
                "purgeCdn"
            ]
            assert done == {
                "__typename": "CdnPurgeSuccess",
                "provider": "cloudflare",
                "requests": 2,
                "tags": 3,
                "paths": 1,
            }
            assert fake.requests[0].body == {"tags": [f"project-{project}", f"image-{image_id}", "x-1"]}
            bad = (await api.ok(PURGE, admin, paths=["/etc/passwd"]))["purgeCdn"]
            assert bad["__typename"] == "InputError" and bad["field"] == "paths"
            assert (await api.ok(PURGE, admin))["purgeCdn"]["field"] == "projectId"
            fake.status = 403
            failed = (await api.ok(PURGE, admin, tags=["x-2"]))["purgeCdn"]
            assert failed["__typename"] == "CdnPurgeFailed" and "refused (403)" in failed["errors"][0]
