"""Deep, wide and alias-heavy queries, the cost budget, introspection in production, masked errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from server.app import create_app
from server.composition import Services
from tests.server.conftest import Api, app_with, make_settings, png_bytes
from tests.server.exports import start_export, wait_for_job

pytestmark = pytest.mark.anyio


async def test_cost_is_reported_and_an_expensive_query_is_refused(api: Api) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    cheap = await api.gql(
        "query($id: Int!) { project(id: $id) { images(first: 10) { edges { node { name } } } } }",
        owner,
        id=project_id,
    )
    assert cheap["extensions"]["cost"]["requested"] < 50
    query = (
        "query($id: Int!, $n: Int!) { project(id: $id) { images(first: $n) { edges { node { "
        "segmentationHistory { spheroids { exterior } } } } } } }"
    )
    refused = await api.gql(query, owner, id=project_id, n=500)
    error = refused["errors"][0]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX" and error["extensions"]["cost"] > 5000
    assert refused["data"] is None


async def test_depth_alias_and_token_limits(api: Api, tmp_path: Path, database_url: str) -> None:
    owner = await api.user("owner")
    deep = (
        "{ project(id: 1) { images { edges { node { segmentationHistory "
        "{ spheroids { metrics { areaPx } } } } "
        "} } } }"
    )
    services = Services.create(make_settings(database_url, str(tmp_path / "b"), max_depth=5))
    app = create_app(services=services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.post(
            "/graphql", json={"query": deep}, headers={"Authorization": f"Bearer {owner}"}
        )
        assert "exceeds maximum operation depth" in response.json()["errors"][0]["message"]
    await services.close()
    aliases = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(40)) + " }"
    assert "aliases" in (await api.gql(aliases, owner))["errors"][0]["message"]
    wide = "{ me { " + " ".join(["id"] * 6000) + " } }"
    assert "token" in (await api.gql(wide, owner))["errors"][0]["message"].lower()


async def test_production_hides_introspection_and_graphiql(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(database_url, str(tmp_path / "b"), environment="production")
    services = Services.create(settings)
    app = create_app(services=services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        body = (await client.post("/graphql", json={"query": "{ __schema { types { name } } }"})).json()
        assert "introspection" in body["errors"][0]["message"].lower()
        assert (await client.get("/graphql", headers={"Accept": "text/html"})).status_code != 200
    await services.close()


async def test_unexpected_errors_are_masked_with_a_request_id(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    owner = await api.user("owner")

    async def broken(*args: object) -> None:
        raise RuntimeError("secret internals")

    api.services.store.presigned_url = broken  # type: ignore[method-assign]
    project_id = await api.project(owner)
    started = await start_export(api, owner, project_id, formats=["CSV"])
    await wait_for_job(api, owner, started["job"]["id"], fields="status")
    body = await api.gql("query($id: Int!) { job(id: $id) { downloadUrl } }", owner, id=started["job"]["id"])
    error = body["errors"][0]
    assert "secret" not in error["message"] and error["extensions"]["code"] == "INTERNAL"
    assert error["extensions"]["requestId"] in caplog.text and "secret internals" in caplog.text


async def test_unexpected_errors_in_subscriptions_are_masked_too(
    api: Api, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from server.api.context import authenticate, build_context
    from server.api.schema import build_schema
    from server.services.watches import AccessWatch

    owner = await api.user("owner")
    project_id = await api.project(owner)
    context = await build_context(api.services, None)
    await authenticate(context, owner)

    async def broken(self: AccessWatch) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(AccessWatch, "confirm", broken)
    events = await build_schema(api.services.settings).subscribe(
        "subscription($p: Int!) { projectEvents(projectId: $p) { kind } }",
        variable_values={"p": project_id},
        context_value=context,
    )
    first = await anext(events)  # type: ignore[arg-type]
    (error,) = first.errors or []
    assert "secret" not in error.message and error.extensions is not None
    assert error.extensions["code"] == "INTERNAL" and error.extensions["requestId"] in caplog.text


WIDE = "{ edges { node { name } } }"


def _aliased(project_id: int, first: str, header: str = "") -> str:
    field = f"project(id: {project_id}) {{ images(first: {first}) {WIDE} }}"
    fields = " ".join(f"a{i}: {field}" for i in range(30))
    return f"query{header} {{ {fields} }}"


async def test_the_cost_counts_the_page_sizes_in_force_whatever_says_them(api: Api) -> None:
    owner = await api.user("owner")
    project_id = await api.project(owner)
    literal = await api.gql(_aliased(project_id, "500"), owner)
    assert literal["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    cost = literal["extensions"]["cost"]["requested"]
    # a variable's default, or a variable sent, stands for the page size as much as a literal does
    by_default = await api.gql(_aliased(project_id, "$f", "($f: Int = 500)"), owner)
    sent = await api.gql(_aliased(project_id, "$f", "($f: Int = 1)"), owner, f=500)
    for refused in (by_default, sent):  # each ran before, estimated as if 10 images were asked for
        assert refused["data"] is None and refused["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert refused["extensions"]["cost"]["requested"] == cost
    # a variable neither sent nor defaulted leaves the field's own default (50 images) in force
    unset = await api.gql(_aliased(project_id, "$f", "($f: Int)"), owner)
    no_argument = await api.gql(f"{{ a0: project(id: {project_id}) {{ images {WIDE} }} }}", owner)
    one = no_argument["extensions"]["cost"]["requested"]
    assert unset["extensions"]["cost"]["requested"] == 30 * one


async def test_each_kind_of_refusal_has_its_documented_code(api: Api) -> None:
    owner = await api.user("owner")
    refusals = {
        "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(40)) + " }": "QUERY_TOO_COMPLEX",
        "{ me { " + " ".join(["id"] * 6000) + " } }": "QUERY_TOO_COMPLEX",
        "{ me { id }": "GRAPHQL_PARSE_FAILED",
        "{ me { id nickname } }": "GRAPHQL_VALIDATION_FAILED",
    }
    for query, code in refusals.items():
        body = await api.gql(query, owner)
        assert body["data"] is None and body["errors"][0]["extensions"]["code"] == code, (query[:40], body)


@pytest.fixture
async def production(tmp_path: Path, database_url: str) -> AsyncIterator[Api]:
    async with app_with(make_settings(database_url, str(tmp_path / "b"), environment="production")) as api:
        yield api


SUGGESTING = {
    "{ projekt(id: 1) { id } }": "Cannot query field 'projekt' on type 'Query'.",
    'mutation { login(username: "a", passwort: "b") { __typename } }': "Unknown argument 'passwort'",
    'mutation { addProjectMember(id: 1, username: "a", role: VIEWR) { __typename } }': "VIEWR",
    'mutation($r: ProjectRol!) { addProjectMember(id: 1, username: "a", role: $r) { __typename } }': (
        "Unknown type 'ProjectRol'."
    ),
    'mutation { createProject(input: {name: "x", descripton: "y"}) { __typename } }': (
        "unknown field 'descripton'"
    ),
}


async def test_production_suggests_no_names_of_the_schema(production: Api, api: Api) -> None:
    token = await production.user("owner")
    for query, says in SUGGESTING.items():
        errors = (await production.gql(query, token))["errors"]
        assert all("Did you mean" not in e["message"] for e in errors), (query, errors)
        assert any(says in e["message"] for e in errors), (query, errors)
        assert {e["extensions"]["code"] for e in errors} == {"GRAPHQL_VALIDATION_FAILED"}
    variable = (
        'mutation($r: ProjectRole!) { addProjectMember(id: 1, username: "a", role: $r) { __typename } }'
    )
    create = "mutation($i: ProjectCreateInput!) { createProject(input: $i) { __typename } }"
    for query, values, says in (
        (variable, {"r": "VIEWR"}, "VIEWR"),
        (create, {"i": {"name": "x", "descripton": "y"}}, "descripton"),
    ):
        (error,) = (await production.gql(query, token, **values))["errors"]
        assert says in error["message"] and "Did you mean" not in error["message"], error
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    # in development, where introspection shows the schema anyway, the hints stay
    development = await api.gql("{ projekt(id: 1) { id } }", await api.user("dev"))
    assert "Did you mean 'project'" in development["errors"][0]["message"]


async def test_a_list_longer_than_assumed_counts_at_its_real_length(api: Api) -> None:
    """`spheroids` takes no page size and is estimated at 50 a segmentation; an image with 400 of them,
    asked for under 30 aliases, must not deliver 12,000 spheroids within a budget meant for 1,500."""
    owner = await api.user("owner")
    project_id = await api.project(owner)
    upload = await api.upload(owner, project_id, [("crowded.png", png_bytes(200, 200))])
    image_id = upload.json()["files"][0]["imageId"]
    squares = [
        {"exterior": [[x, y], [x + 4, y], [x + 4, y + 4], [x, y + 4]]}
        for x in range(0, 200, 10)
        for y in range(0, 200, 10)
    ]
    save = (
        "mutation($i: Int!, $s: [SpheroidInput!]!) { saveSegmentation(imageId: $i, baseVersion: 0, "
        "spheroids: $s) { __typename } }"
    )
    assert (await api.ok(save, owner, i=image_id, s=squares))["saveSegmentation"]["__typename"] == (
        "SegmentationSaveSuccess"
    )
    field = f"image(id: {image_id}) {{ segmentation {{ spheroids {{ exterior metrics {{ areaPx }} }} }} }}"
    alone = await api.ok(f"{{ {field} }}", owner)
    assert len(alone["image"]["segmentation"]["spheroids"]) == 400  # one such list is well within budget

    crowded = await api.gql("{ " + " ".join(f"a{i}: {field}" for i in range(30)) + " }", owner)
    assert crowded["extensions"]["cost"]["requested"] < 5_000  # what the estimate alone let through
    codes = {error["extensions"]["code"] for error in crowded["errors"]}
    assert codes == {"QUERY_TOO_COMPLEX"}
    delivered = sum(
        len(image["segmentation"]["spheroids"])
        for image in (crowded["data"] or {}).values()
        if image is not None and image["segmentation"] is not None
    )
    assert delivered <= 5_000  # each spheroid costs at least 1: the budget bounds what is sent
