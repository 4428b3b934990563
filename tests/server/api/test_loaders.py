"""The project page costs the same few SQL statements for 10 and for 1,000 images (DataLoaders)."""

from __future__ import annotations

import pytest

from server.db.engine import StatementCounter
from tests.server.conftest import Api
from tests.server.seed import seed_images

pytestmark = pytest.mark.anyio

PROJECT_PAGE = """query Page($id: Int!) { project(id: $id) { name myRole
  stats { imageCount spheroidCount meanAreaPx meanDiameterPx
    byStatus { status count } byReview { status count } }
  images(first: 100) { totalCount pageInfo { hasNextPage endCursor }
    edges { node { id name segmentationStatus reviewStatus
      segmentation { version spheroidCount author } } } } } }"""


async def _statements(api: Api, token: str, project_id: int) -> tuple[int, dict[str, object]]:
    counter = StatementCounter(api.services.engine)
    data = await api.ok(PROJECT_PAGE, token, id=project_id)
    return counter.count, data


async def test_project_page_statements_do_not_grow_with_the_project(api: Api) -> None:
    owner = await api.user("owner")
    small, large = await api.project(owner, "small"), await api.project(owner, "large")
    await seed_images(api.services.db, small, 10)
    await seed_images(api.services.db, large, 1000)
    small_count, _ = await _statements(api, owner, small)
    large_count, large_data = await _statements(api, owner, large)
    assert small_count == large_count <= 8, (small_count, large_count)
    stats = large_data["project"]["stats"]  # type: ignore[index]
    assert stats["imageCount"] == 1000 and stats["spheroidCount"] == 1500
    assert stats["meanAreaPx"] == pytest.approx(100.0)
    edges = large_data["project"]["images"]["edges"]  # type: ignore[index]
    assert len(edges) == 100 and edges[1]["node"]["segmentation"]["spheroidCount"] == 3
    assert edges[0]["node"]["segmentation"] is None


async def test_naive_resolvers_answer_the_same_with_statements_per_image(api: Api) -> None:
    """``dataloader_batching = false`` (the benchmark's baseline) is the same page, a query per relation."""
    owner = await api.user("owner")
    project_id = await api.project(owner)
    await seed_images(api.services.db, project_id, 40)
    batched_count, batched = await _statements(api, owner, project_id)
    api.services.settings.dataloader_batching = False
    naive_count, naive = await _statements(api, owner, project_id)
    assert naive == batched
    # each image: the role for its segmentation field's permission, then its segmentation
    assert naive_count >= batched_count + 2 * 40 - 2, (batched_count, naive_count)


REVIEW_PAGE = """query Page($id: Int!, $before: String, $ids: [Int!], $since: DateTime) { project(id: $id) {
  images(last: 50, before: $before, ids: $ids, updatedSince: $since, orderBy: UPDATED_DESC,
    filter: {nameContains: "img"}) { totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { position cursor node { id name reviewedBy updatedAt reviewHistory { status reviewer } } } } } }"""


async def test_a_review_page_with_positions_costs_the_same_for_10_and_1000_images(api: Api) -> None:
    """Backwards from a cursor, narrowed by ids and time, with positions, reviewers and review history."""
    owner = await api.user("owner")
    small, large = await api.project(owner, "small"), await api.project(owner, "large")
    await seed_images(api.services.db, small, 10)
    await seed_images(api.services.db, large, 1000)
    counts = []
    for project_id in (small, large):
        first = (await api.ok(REVIEW_PAGE, owner, id=project_id))["project"]["images"]
        ids = [edge["node"]["id"] for edge in first["edges"]]
        counter = StatementCounter(api.services.engine)
        since = "2000-01-01T00:00:00+00:00"
        data = await api.ok(
            REVIEW_PAGE, owner, id=project_id, before=first["edges"][-1]["cursor"], ids=ids, since=since
        )
        counts.append(counter.count)
        edges = data["project"]["images"]["edges"]
        assert [edge["node"]["id"] for edge in edges] == ids[:-1]
        assert all(edge["position"] is not None for edge in edges)
    assert counts[0] == counts[1] <= 8, counts
