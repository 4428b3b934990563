"""The held-out scenes a shipped model does worst on, drawn for docs/model-failures.md.

Segments the held-out synthetic set (``SceneConfig.held_out()``, 512², seeds 900000000..) with a shipped
ResUNet as a job would (through polygons), scores every image as ``spheroseg evaluate`` does, and draws the
six with the lowest IoU: the image stretched as the network sees it, the true outlines in green and the
predicted ones in red. Prints the worst images' scores and writes
``benchmarks/results/model_failures.json`` and ``docs/images/<model>-heldout-worst.jpg``.

Usage: python benchmarks/model_failures.py [--model resunet-v2] [--scenes 150] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image
from scipy import ndimage as ndi

from cluster.evaluation import held_out_cases, score
from cluster.imaging import normalize
from cluster.model.card import SHIPPED_MODELS, SHIPPED_STEM
from cluster.model.segmenter import ResUNetParams, ResUNetSegmenter
from cluster.pipeline import segment_images
from cluster.polygons import spheroids_to_labels

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PICTURES = ROOT / "docs" / "images"
SHOWN = 6
TILE = 384
"""Side of one scene in the picture (px)."""


def outlined(pixels: NDArray[np.generic], truth: NDArray[np.int32], found: NDArray[np.int32]) -> Image.Image:
    """The scene as the network sees it (stretched), true outlines green, predicted red (yellow on both)."""
    gray = np.clip(normalize(pixels), 0.0, 1.0)
    rgb = np.repeat((gray * 255).astype(np.uint8)[..., None], 3, axis=2)
    for labels, colour in ((truth, (40, 220, 40)), (found, (235, 40, 40))):
        edge = (labels > 0) & (ndi.grey_erosion(labels, size=3) != ndi.grey_dilation(labels, size=3))
        edge = ndi.binary_dilation(edge)
        rgb[edge] = np.maximum(rgb[edge] // 3, np.array(colour, dtype=np.uint8))
    return Image.fromarray(rgb).resize((TILE, TILE), Image.Resampling.BILINEAR)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=tuple(SHIPPED_MODELS), default=SHIPPED_STEM)
    parser.add_argument("--scenes", type=int, default=150, help="held-out 512² scenes scored")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    segmenter = ResUNetSegmenter(ResUNetParams(model=args.model, device="cpu"))
    scored = []
    for case in held_out_cases(args.scenes):
        (segmentation,) = segment_images([case.image], segmenter)
        found = spheroids_to_labels(segmentation.spheroids, case.reference.shape)
        scored.append((score(case.name, found, case.reference), case, found))
    scored.sort(key=lambda item: item[0].iou)
    worst = scored[:SHOWN]
    picture = Image.new("RGB", (TILE * 3, TILE * 2), "white")
    for index, (_scores, case, found) in enumerate(worst):
        tile = outlined(case.image.pixels, case.reference, found)
        picture.paste(tile, ((index % 3) * TILE, (index // 3) * TILE))
    PICTURES.mkdir(exist_ok=True)
    drawn = PICTURES / f"{args.model}-heldout-worst.jpg"
    picture.save(drawn, quality=85)
    print(f"{args.model} {segmenter.card.version}: the {SHOWN} worst of {args.scenes} held-out scenes")
    print(f"{'scene':>22}{'IoU':>8}{'instance F1':>13}{'spheroids':>11}{'found':>7}")
    for scores, case, found in worst:
        print(
            f"{case.name:>22}{scores.iou:>8.3f}{scores.instance_f1:>13.3f}"
            f"{int(case.reference.max()):>11}{int(found.max()):>7}"
        )
    print(f"drawn in {drawn.relative_to(ROOT)}")
    report = {
        "model": args.model,
        "version": segmenter.card.version,
        "scenes": args.scenes,
        "worst": [asdict(scores) for scores, _case, _found in worst],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "model_failures.json").write_text(json.dumps(report, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
