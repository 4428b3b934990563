"""Segmenting one napari image layer's pixels, on this computer or on a Dask cluster, without Qt.

Both places run the core's :func:`cluster.segment_pixels` (the path files take once decoded, so outlines
and metrics are those ``spheroseg segment`` gives): here in the calling thread, the model loaded once per
process; on a cluster as one task submitted to the scheduler at ``address``, the pixels travelling with it
(a layer's pixels are in memory, not in a store the workers could read). The "Segment spheroids" widget
calls these from a worker thread, so napari never waits; ``on_stage`` tells it what is happening.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from numpy.typing import NDArray

from cluster import (
    ImageOutcome,
    Segmentation,
    SegmentationError,
    SegmenterSpec,
    close_client,
    connect_client,
    segment_pixels,
)

__all__ = ["CONNECT_TIMEOUT", "SegmentRequest", "segment_layer_pixels"]

CONNECT_TIMEOUT = 10.0
"""Seconds to reach a scheduler before saying it cannot be reached."""

StageCallback = Callable[[str], None]


@dataclass(frozen=True)
class SegmentRequest:
    """What the widget asks for: the method (``resunet``, ``classical``) and its options (e.g. which shipped
    model), where to run (``None``: this computer, else a scheduler address such as
    ``tcp://10.0.0.5:8786``) and the pixel size to measure with (µm, ``None``: metrics in pixels only)."""

    method: str
    scheduler: str | None = None
    pixel_size_um: float | None = None
    connect_timeout: float = CONNECT_TIMEOUT
    options: Mapping[str, Any] = field(default_factory=dict)


def segment_layer_pixels(
    pixels: NDArray[Any], name: str, request: SegmentRequest, on_stage: StageCallback | None = None
) -> Segmentation:
    """The segmentation of ``pixels``; raises :class:`cluster.SegmentationError` saying what went wrong
    (a method that does not exist, an image it cannot use, a scheduler that does not answer)."""
    stage = on_stage or (lambda _text: None)
    spec = SegmenterSpec.of(request.method, **request.options)
    if request.scheduler:
        stage(f"Sending the image to {request.scheduler}")
        outcome = asyncio.run(_on_cluster(request, pixels, name, spec))
    else:
        stage(f"Segmenting with {request.method} on this computer")
        outcome = segment_pixels(pixels, name, spec, request.pixel_size_um)
    if outcome.segmentation is None:
        raise SegmentationError(outcome.error or f"{name}: no outlines came back")
    stage(f"{len(outcome.segmentation.spheroids)} spheroids in {outcome.seconds:.1f} s")
    return outcome.segmentation


async def _on_cluster(
    request: SegmentRequest, pixels: NDArray[Any], name: str, spec: SegmenterSpec
) -> ImageOutcome:
    address = request.scheduler
    try:
        client = await connect_client(str(address), timeout=request.connect_timeout)
    except ValueError as problem:
        raise SegmentationError(
            f"{address!r} is not a scheduler address ({problem}); it looks like tcp://host:8786"
        ) from problem
    except (OSError, TimeoutError) as problem:
        raise SegmentationError(
            f"the Dask scheduler at {address} does not answer ({problem}); check the address, or leave "
            "it empty to segment on this computer"
        ) from problem
    try:
        future = client.submit(segment_pixels, pixels, name, spec, request.pixel_size_um, pure=False)
        outcome: ImageOutcome = await future
        return outcome
    finally:
        await close_client(client)
