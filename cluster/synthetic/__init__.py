"""Synthetic brightfield and phase-contrast spheroid scenes with exact instance labels.

Used to make the bundled sample images, to tune and test the classical segmenter, to train the ResUNet on
the fly (a 512 x 512 scene takes a few tens of milliseconds on one core) and to build a held-out
evaluation set::

    from cluster.synthetic import SceneConfig, generate_scene, scenes

    scene = generate_scene(7, (512, 512))                    # training ranges
    scene.image, scene.labels, scene.pixel_size_um, scene.description
    held_out = list(scenes(10_000, 200, (768, 768), SceneConfig.held_out()))

A scene is sampled from the ranges of a :class:`SceneConfig`: background (uneven light, vignetting, a
gradient, the curved wall of a round well, debris, single cells, dust), spheroids (darker than the medium,
granular, with dark or translucent necrotic cores, hollow lumens, phase-contrast halos; round, elliptical,
lobed or irregular; one to many, some touching) and optics (pixel size 0.65-5 um, blur, shot and read noise,
8-bit or 12/14-bit-in-uint16). Module map: :mod:`.config` (ranges), :mod:`.layout` (how many, how large,
where), :mod:`.spheroid` (outline, look, drawing), :mod:`.particles`, :mod:`.background`, :mod:`.camera`,
:mod:`.fields` (fast random fields and blur), :mod:`.scene` (assembly).

Same seed, shape and config give bit-identical output on the same platform and library versions.
"""

from __future__ import annotations

from cluster.synthetic.config import TRAINING_SCENES, SceneConfig
from cluster.synthetic.scene import Scene, SceneDescription, generate_scene, scenes

__all__ = ["TRAINING_SCENES", "Scene", "SceneConfig", "SceneDescription", "generate_scene", "scenes"]
