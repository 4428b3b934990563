"""Spheroids keep their ids across versions: a job's result gets new ones, a revert brings back the ids of
the version it restores, and no id of an image is ever given out twice. Records stored before ids existed
are numbered by migration 0006 (SQLite and PostgreSQL).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from cluster.segmentation import Spheroid, as_ring
from server.db.engine import create_engine
from server.db.migrate import upgrade
from server.db.models import Image, SegmentationVersion
from server.db.segmentations import save_segmentation
from server.domain.errors import InvalidSpheroidsError
from server.domain.versions import SaveOrigin, SegmentationSave
from tests.server.api.test_segmentations import REVERT, _image
from tests.server.conftest import Api

pytestmark = pytest.mark.anyio

IDS = """query($id: Int!) { image(id: $id) { segmentation { version origin spheroids { id } }
  segmentationHistory { version origin } } }"""


def _squares(count: int, *, first_id: int | None = None) -> list[Spheroid]:
    return [
        Spheroid(
            as_ring([(2 + 6 * k, 2), (6 + 6 * k, 2), (6 + 6 * k, 6), (2 + 6 * k, 6)]),
            id=None if first_id is None else first_id + k,
        )
        for k in range(count)
    ]


async def _save(api: Api, image_id: int, base: int, spheroids: list[Spheroid], origin: SaveOrigin) -> None:
    async with api.services.db.begin() as db:
        await save_segmentation(db, SegmentationSave(image_id, base, spheroids, origin))


async def _ids(api: Api, token: str, image_id: int) -> tuple[int, list[int]]:
    segmentation = (await api.ok(IDS, token, id=image_id))["image"]["segmentation"]
    return segmentation["version"], [s["id"] for s in segmentation["spheroids"]]


async def test_job_results_get_new_ids_and_a_revert_brings_back_the_old_ones(api: Api) -> None:
    owner, _, image_id = await _image(api)
    await _save(api, image_id, 0, _squares(3), SaveOrigin.JOB)
    assert await _ids(api, owner, image_id) == (1, [1, 2, 3])

    await _save(api, image_id, 1, _squares(2), SaveOrigin.JOB)
    assert await _ids(api, owner, image_id) == (2, [4, 5])

    reverted = await api.ok(REVERT, owner, id=image_id, v=1, base=2)
    assert reverted["revertSegmentation"]["__typename"] == "SegmentationSaveSuccess"
    assert await _ids(api, owner, image_id) == (3, [1, 2, 3])

    await _save(api, image_id, 3, _squares(1), SaveOrigin.JOB)  # 4 and 5 were given out already
    assert await _ids(api, owner, image_id) == (4, [6])
    history = (await api.ok(IDS, owner, id=image_id))["image"]["segmentationHistory"]
    assert [(h["version"], h["origin"]) for h in history] == [
        (4, "JOB"),
        (3, "REVERT"),
        (2, "JOB"),
        (1, "JOB"),
    ]


async def test_an_edit_keeps_the_ids_it_was_given_and_numbers_the_new_spheroids(api: Api) -> None:
    owner, _, image_id = await _image(api)
    await _save(api, image_id, 0, _squares(3), SaveOrigin.JOB)

    kept = _squares(2, first_id=2)  # spheroids 2 and 3 kept, 1 deleted, one drawn anew
    await _save(api, image_id, 1, [*kept, *_squares(1)], SaveOrigin.EDIT)

    assert await _ids(api, owner, image_id) == (2, [2, 3, 4])


async def test_an_id_given_twice_in_one_save_is_refused_and_nothing_is_stored(api: Api) -> None:
    _, _, image_id = await _image(api)
    twice = [*_squares(1, first_id=7), *_squares(1, first_id=7)]

    with pytest.raises(InvalidSpheroidsError, match="id 7"):
        await _save(api, image_id, 0, twice, SaveOrigin.EDIT)

    async with api.services.db() as db:
        assert await db.scalar(select(Image.current_version).where(Image.id == image_id)) == 0
        assert list(await db.scalars(select(SegmentationVersion))) == []


async def test_migration_0006_numbers_spheroids_stored_before_ids(tmp_path: Path) -> None:
    """Each version's records get ids of their own, in version order; the image keeps the last one; a
    version with a model name was a job's."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.sqlite3'}")
    record = {"exterior": [[1, 1], [5, 1], [5, 5]], "holes": [], "metrics": {}}
    try:
        await upgrade(engine, "0005")
        async with engine.begin() as connection:
            for statement, values in _older_rows(record):
                await connection.execute(text(statement), values)
        await upgrade(engine, "0006")  # 0011 moves the records to rows of their own (test_shared_records)
        async with engine.connect() as connection:
            versions = (
                await connection.execute(
                    text("SELECT version, origin, spheroids FROM segmentations ORDER BY version")
                )
            ).all()
            last = await connection.scalar(text("SELECT last_spheroid_id FROM images"))
    finally:
        await engine.dispose()

    numbered = [
        (version, origin, [r["id"] for r in json.loads(records)]) for version, origin, records in versions
    ]
    assert numbered == [(1, "job", [1, 2]), (2, "edit", [3])]
    assert last == 3


def _older_rows(record: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "INSERT INTO users (id, username, password_hash, role, created_at) VALUES (1, 'u', 'x', 'admin', "
            "'2026-01-01')",
            {},
        ),
        (
            "INSERT INTO projects (id, name, description, created_at, updated_at) VALUES (1, 'p', '', "
            "'2026-01-01', '2026-01-01')",
            {},
        ),
        (
            "INSERT INTO images (id, project_id, name, content_hash, format, width, height, bit_depth, "
            "byte_size, segmentation_status, review_status, current_version, created_at, updated_at) VALUES "
            "(1, 1, 'a.png', 'h', 'png', 64, 48, 8, 10, 'done', 'unreviewed', 2, '2026-01-01', '2026-01-01')",
            {},
        ),
        (
            "INSERT INTO segmentations (image_id, version, model_name, model_version, parameters, spheroids, "
            "spheroid_count, area_sum_px, diameter_sum_px, created_at) VALUES (1, 1, 'classical', '1', '{}', "
            ":two, 2, 0, 0, '2026-01-01')",
            {"two": json.dumps([record, record])},
        ),
        (
            "INSERT INTO segmentations (image_id, version, model_name, model_version, parameters, spheroids, "
            "spheroid_count, area_sum_px, diameter_sum_px, created_at) "
            "VALUES (1, 2, '', '', '{}', :one, 1, 0, 0, '2026-01-01')",
            {"one": json.dumps([record])},
        ),
    ]
