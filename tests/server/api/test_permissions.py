"""Who may run which operation: anonymous, stranger, viewer, editor, owner and admin over every root field.

The list of operations is checked against the schema, so a new query or mutation fails this test until
someone decides who may use it.
"""

from __future__ import annotations

from typing import Any

import pytest

from server.api.schema import build_schema
from server.db import jobs, projects, users
from server.domain.auth import hash_token, new_token
from tests.server.conftest import Api
from tests.server.seed import seed_images

pytestmark = pytest.mark.anyio

ROLES = ("anonymous", "stranger", "viewer", "editor", "owner", "admin")
LEAST = {"public": 0, "user": 1, "viewer": 2, "editor": 3, "owner": 4, "admin": 5}
SQUARE = [[1, 1], [9, 1], [9, 9], [1, 9]]

# field: (who may, document, variables from the world's project `p`, image `i` and job `j` ids)
OPERATIONS: dict[str, tuple[str, str, Any]] = {
    "me": ("user", "{ me { id } }", lambda p, i, j: {}),
    "projects": ("user", "{ projects { id } }", lambda p, i, j: {}),
    "project": ("viewer", "query($p: Int!) { project(id: $p) { id } }", lambda p, i, j: {"p": p}),
    "image": ("viewer", "query($i: Int!) { image(id: $i) { id } }", lambda p, i, j: {"i": i}),
    "login": (
        "public",
        'mutation { login(username: "x", password: "y") { __typename } }',
        lambda p, i, j: {},
    ),
    "logout": ("user", "mutation { logout { message } }", lambda p, i, j: {}),
    "sessions": ("user", "{ sessions { id current } }", lambda p, i, j: {}),
    "renewSession": ("user", "mutation { renewSession { expiresAt } }", lambda p, i, j: {}),
    # a session nobody has: anyone else is refused as for another's session; an administrator is told
    "revokeSession": (
        "admin",
        "mutation { revokeSession(id: 2000000000) { __typename } }",
        lambda p, i, j: {},
    ),
    "exchangeBootstrapToken": (
        "public",
        'mutation { exchangeBootstrapToken(token: "unknown") { __typename } }',
        lambda p, i, j: {},
    ),
    "createUser": (
        "admin",
        'mutation($u: String!) { createUser(input: {username: $u, password: "long enough"}) { __typename } }',
        lambda p, i, j: {"u": f"new{p}"},
    ),
    "createProject": (
        "user",
        'mutation { createProject(input: {name: "x"}) { __typename } }',
        lambda p, i, j: {},
    ),
    "updateProject": (
        "owner",
        'mutation($p: Int!) { updateProject(id: $p, input: {name: "y"}) { __typename } }',
        lambda p, i, j: {"p": p},
    ),
    "deleteProject": (
        "owner",
        "mutation($p: Int!) { deleteProject(id: $p) { message } }",
        lambda p, i, j: {"p": p},
    ),
    "addProjectMember": (
        "owner",
        'mutation($p: Int!) { addProjectMember(id: $p, username: "stranger", role: VIEWER) { __typename } }',
        lambda p, i, j: {"p": p},
    ),
    "removeProjectMember": (
        "owner",
        'mutation($p: Int!) { removeProjectMember(id: $p, username: "viewer") { __typename } }',
        lambda p, i, j: {"p": p},
    ),
    "deleteImages": (
        "editor",
        "mutation($i: Int!) { deleteImages(imageIds: [$i]) { __typename } }",
        lambda p, i, j: {"i": i},
    ),
    "setReview": (
        "editor",
        "mutation($i: Int!) { setReview(images: [{imageId: $i, version: 0}], status: UNREVIEWED) "
        "{ __typename } }",
        lambda p, i, j: {"i": i},
    ),
    "updateImage": (
        "editor",
        'mutation($i: Int!) { updateImage(id: $i, name: "renamed.png", pixelSizeUm: 0.5) { __typename } }',
        lambda p, i, j: {"i": i},
    ),
    "imagesByHash": (
        "viewer",
        "query($p: Int!) { imagesByHash(projectId: $p, sha256s: []) { id } }",
        lambda p, i, j: {"p": p},
    ),
    "saveSegmentation": (
        "editor",
        "mutation($i: Int!, $s: [[Float!]!]!) { saveSegmentation(imageId: $i, "
        "baseVersion: 0, spheroids: [{exterior: $s}]) { __typename } }",
        lambda p, i, j: {"i": i, "s": SQUARE},
    ),
    "editSegmentation": (
        "editor",
        "mutation($i: Int!, $s: [[Float!]!]!) { editSegmentation(imageId: $i, baseVersion: 0, "
        "changes: {upsert: [{exterior: $s}]}) { __typename } }",
        lambda p, i, j: {"i": i, "s": SQUARE},
    ),
    "revertSegmentation": (
        "editor",
        "mutation($i: Int!) { revertSegmentation(imageId: $i, version: 1, baseVersion: 0) { __typename } }",
        lambda p, i, j: {"i": i},
    ),
    "exportProject": (
        "viewer",
        "mutation($p: Int!) { exportProject(projectId: $p, formats: [CSV]) { __typename } }",
        lambda p, i, j: {"p": p},
    ),
    "job": ("viewer", "query($j: Int!) { job(id: $j) { id status } }", lambda p, i, j: {"j": j}),
    "segmentImages": (
        "editor",
        'mutation($i: Int!) { segmentImages(input: {imageIds: [$i], method: "classical"}) { __typename } }',
        lambda p, i, j: {"i": i},
    ),
    "cancelJob": (
        "editor",
        "mutation($j: Int!) { cancelJob(id: $j) { __typename } }",
        lambda p, i, j: {"j": j},
    ),
    "methods": ("user", "{ methods { name default } }", lambda p, i, j: {}),
    "clusterStatus": ("user", "{ clusterStatus { state workerCount } }", lambda p, i, j: {}),
    "startCluster": ("admin", "mutation { startCluster(workers: 0) { __typename } }", lambda p, i, j: {}),
    "stopCluster": ("admin", "mutation { stopCluster { __typename } }", lambda p, i, j: {}),
    "scaleCluster": ("admin", "mutation { scaleCluster(workers: 1) { __typename } }", lambda p, i, j: {}),
    "rotateSigningKey": ("admin", "mutation { rotateSigningKey { message } }", lambda p, i, j: {}),
    "purgeCdn": (
        "admin",
        "mutation($p: Int!) { purgeCdn(projectId: $p) { __typename } }",
        lambda p, i, j: {"p": p},
    ),
}


def test_every_root_field_is_in_the_matrix(settings: Any) -> None:
    schema = build_schema(settings)._schema
    fields = set(schema.query_type.fields) | set(schema.mutation_type.fields)  # type: ignore[union-attr]
    assert fields == set(OPERATIONS), f"decide who may use: {fields ^ set(OPERATIONS)}"


async def _token(api: Api, user_id: int) -> str:
    token = new_token()
    async with api.services.db.begin() as db:
        await users.create_session(db, user_id, hash_token(token), api.services.session_lifetime)
    return token


async def test_permission_matrix(api: Api) -> None:
    ids: dict[str, int] = {}
    async with api.services.db.begin() as db:
        for role in ROLES[1:]:
            user = await users.create_user(db, role, "x", "admin" if role == "admin" else "member")
            assert user is not None
            ids[role] = user.id
    failures = []
    for field, (least, document, variables) in OPERATIONS.items():
        for role in ROLES:
            async with api.services.db.begin() as db:
                project = await projects.create_project(db, "p", "", ids["owner"])
                await projects.set_member(db, project.id, ids["viewer"], "viewer")
                await projects.set_member(db, project.id, ids["editor"], "editor")
            await seed_images(api.services.db, project.id, 2)
            edges = (
                await api.ok(
                    "query($p: Int!) { project(id: $p) { images { edges { node { id } } } } }",
                    await _token(api, ids["owner"]),
                    p=project.id,
                )
            )["project"]["images"]["edges"]
            image_id, other_image = edges[1]["node"]["id"], edges[0]["node"]["id"]
            async with api.services.db.begin() as db:
                job, _ = await jobs.create_job(db, project.id, ids["owner"], "classical", {}, [other_image])
            token = None if role == "anonymous" else await _token(api, ids[role])
            body = await api.gql(document, token, **variables(project.id, image_id, job.id))
            codes = {e.get("extensions", {}).get("code") for e in body.get("errors") or []}
            allowed = ROLES.index(role) >= LEAST[least]
            denied = bool(codes & {"FORBIDDEN", "UNAUTHENTICATED"})
            if allowed == denied or (allowed and codes):
                failures.append(
                    f"{field} as {role}: expected {'allowed' if allowed else 'denied'}, got {body}"
                )
    assert not failures, "\n".join(failures)
