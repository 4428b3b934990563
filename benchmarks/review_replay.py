"""Saving that never loses work: edits a killed workbench left in its journal, replayed by the next start.

On a real offline server (started here, in a temporary folder): ``--edits`` journalled edits of one image
replayed by a new saver, three ways: reshapes of stored spheroids, the same reshapes already stored (the
answer was lost before the kill: recognised, not saved twice), and new spheroids. Medians of ``--repeats``.
Prints a table and writes benchmarks/results/review-replay.json; the load average is recorded, since the
machine may be shared.

Usage: python benchmarks/review_replay.py [--edits N] [--repeats N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

from PIL import Image  # noqa: E402

from workbench.journal import JournalEntry  # noqa: E402
from workbench.saving import Saver, journals_of, upsert  # noqa: E402
from workbench.uploads import import_files  # noqa: E402
from workbench.workspace import open_offline  # noqa: E402


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _replay_square(index: int, size: float) -> list[list[float]]:
    x, y = 10.0 + 25.0 * (index % 20), 10.0 + 25.0 * (index // 20)
    return [[x, y], [x + size, y], [x + size, y + size], [x, y + size]]


async def _replay_case(workspace: Any, folder: Path, image_id: int, changes: list[Any]) -> float:
    """Journal ``changes`` as a killed workbench leaves them, then time a new saver's replay (ms)."""
    journals = journals_of(workspace, folder)
    segmentation = (await workspace.client.call("ImageSpheroids", imageId=image_id))["image"]["segmentation"]
    version = 0 if segmentation is None else int(segmentation["version"])
    for change in changes:
        journals.of(image_id).append(JournalEntry(image_id, version, change))
    saver = Saver(workspace.client, journals)
    started = time.perf_counter()
    await saver.replay()
    elapsed = _ms(started)
    assert saver.pending == 0 and not saver.conflicts, "the replay left edits behind"
    await saver.close()
    return elapsed


async def _replay_image(workspace: Any, project_id: int, folder: Path, shade: int) -> int:
    path = folder / f"plate-{shade}.png"
    Image.new("L", (520, 520), shade).save(path)
    (image,) = await import_files(workspace.client, project_id, [path])
    assert image.image_id is not None
    return image.image_id


async def _replay_run(edits: int, repeats: int, folder: Path) -> dict[str, float | int]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SPHEROSEG_")}
    environment["SPHEROSEG_CLUSTER_WORKERS"] = "1"
    workspace = await open_offline(folder / "data", cache_dir=folder / "cache", environment=environment)
    journal = folder / "journal"
    reshaped, stored, new = [], [], []
    try:
        created = await workspace.client.call("CreateProject", name="Replay")
        project_id = int(created["createProject"]["project"]["id"])
        image_id = await _replay_image(workspace, project_id, folder, 200)
        await _replay_case(
            workspace, journal, image_id, [upsert(_replay_square(i, 15)) for i in range(edits)]
        )
        answer = await workspace.client.call("ImageSpheroids", imageId=image_id)
        ids = [s["id"] for s in answer["image"]["segmentation"]["spheroids"]]
        for repeat in range(repeats):
            size = 12.0 + repeat % 3
            changes = [upsert(_replay_square(i, size), spheroid_id=sid) for i, sid in enumerate(ids)]
            reshaped.append(await _replay_case(workspace, journal, image_id, changes))
            # the same edits journalled again, as if the server had stored them just before the kill:
            # recognised as stored (each comes back as a "conflict" with its own shape), not saved twice
            stored.append(await _replay_case(workspace, journal, image_id, changes))
            fresh = await _replay_image(workspace, project_id, folder, 100 + repeat)
            drawn = [upsert(_replay_square(i, 15)) for i in range(edits)]
            new.append(await _replay_case(workspace, journal, fresh, drawn))
    finally:
        await workspace.close()
    return {
        "edits": edits,
        "repeats": repeats,
        "replay_reshaped_ms_median": statistics.median(reshaped),
        "replay_already_stored_ms_median": statistics.median(stored),
        "replay_new_spheroids_ms_median": statistics.median(new),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result = asyncio.run(_replay_run(args.edits, args.repeats, Path(folder)))
    print(
        f"replay of {args.edits} journalled edits after a restart, offline server (median of {args.repeats})"
    )
    for label, key in [
        ("reshapes of stored spheroids", "replay_reshaped_ms_median"),
        ("already stored (answer lost)", "replay_already_stored_ms_median"),
        ("new spheroids", "replay_new_spheroids_ms_median"),
    ]:
        print(f"{label:>30} {result[key]:>9.1f} ms")
    RESULTS.mkdir(exist_ok=True)
    report = {**result, "load_average_1min": os.getloadavg()[0]}
    (RESULTS / "review-replay.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
