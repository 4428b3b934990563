"""The synthetic scene generator: reproducible, well-formed images and labels that mean what they say."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage as ndi

from cluster.synthetic import Scene, SceneConfig, generate_scene, scenes

SHAPE = (256, 256)


def _digest(scene: Scene) -> str:
    return hashlib.sha256(scene.image.tobytes() + scene.labels.tobytes()).hexdigest()


def _first(config: SceneConfig, wanted: str, shape: tuple[int, int] = SHAPE) -> Scene:
    """The first scene (by seed) whose description has a non-zero ``wanted`` count."""
    for seed in range(50):
        scene = generate_scene(seed, shape, config)
        if scene.description[wanted]:  # type: ignore[literal-required]
            return scene
    raise AssertionError(f"no scene with {wanted} in 50 seeds")


# -- reproducibility ------------------------------------------------------------------------------------


def test_same_seed_shape_and_config_give_identical_scenes() -> None:
    for config in (SceneConfig(), SceneConfig.held_out()):
        a, b = generate_scene(11, SHAPE, config), generate_scene(11, SHAPE, config)
        assert np.array_equal(a.image, b.image)
        assert np.array_equal(a.labels, b.labels)
        assert a.image.dtype == b.image.dtype
        assert a.pixel_size_um == b.pixel_size_um
        assert a.description == b.description


def test_different_seeds_give_different_scenes() -> None:
    digests = {_digest(generate_scene(seed, SHAPE)) for seed in range(8)}
    assert len(digests) == 8


def test_scene_is_reproduced_in_a_fresh_process_with_another_hash_seed() -> None:
    code = (
        "import hashlib; from cluster.synthetic import SceneConfig, generate_scene as g;"
        "s = g(5, (256, 256), SceneConfig.held_out());"
        "print(hashlib.sha256(s.image.tobytes() + s.labels.tobytes()).hexdigest())"
    )
    # Another hash seed, and single-threaded BLAS as in a Dask worker (float32 BLAS sums depend on threads).
    env = {**os.environ, "PYTHONHASHSEED": "12345", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == _digest(generate_scene(5, SHAPE, SceneConfig.held_out()))


def test_scenes_iterator_yields_consecutive_seeds() -> None:
    batch = list(scenes(40, 3, SHAPE))
    assert len(batch) == 3
    for i, scene in enumerate(batch):
        assert _digest(scene) == _digest(generate_scene(40 + i, SHAPE))


# -- image format ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(256, 256), (200, 330), (64, 64)])
def test_eight_bit_images_have_the_requested_shape_and_use_the_range(shape: tuple[int, int]) -> None:
    config = dataclasses.replace(SceneConfig(), p_16bit=0.0)
    for seed in range(4):
        scene = generate_scene(seed, shape, config)
        assert scene.image.dtype == np.uint8
        assert scene.image.shape == shape
        assert scene.labels.shape == shape
        assert scene.labels.dtype == np.int32
        assert scene.description["bits"] == 8
        assert int(scene.image.max()) - int(scene.image.min()) > 50  # real contrast, not a flat grey


def test_sixteen_bit_images_hold_camera_data_in_part_of_the_range() -> None:
    config = dataclasses.replace(
        SceneConfig(), p_16bit=1.0, camera_bits=(12,), camera_offset_fraction=(0.02, 0.03)
    )
    for seed in range(4):
        scene = generate_scene(seed, SHAPE, config)
        assert scene.image.dtype == np.uint16
        assert scene.description["bits"] == 12
        assert int(scene.image.max()) <= 4095
        assert int(scene.image.min()) >= 40  # the dark offset lifts even the darkest pixels (with noise)
        assert int(scene.image.max()) - int(scene.image.min()) > 500


def test_msb_aligned_cameras_store_multiples_of_the_shift() -> None:
    config = dataclasses.replace(SceneConfig(), p_16bit=1.0, camera_bits=(12,), p_msb_aligned=1.0)
    scene = generate_scene(3, SHAPE, config)
    assert scene.description["msb_aligned"]
    assert scene.image.dtype == np.uint16
    assert not np.any(scene.image % 16)
    assert int(scene.image.max()) > 4095


def test_pixel_size_comes_from_the_configured_range() -> None:
    for config in (SceneConfig(), SceneConfig.held_out()):
        low, high = config.pixel_size_um
        for seed in range(10):
            assert low <= generate_scene(seed, SHAPE, config).pixel_size_um <= high


# -- labels ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [SceneConfig(), SceneConfig.held_out()], ids=["training", "held_out"])
def test_labels_are_consecutive_connected_instances_that_only_touch_their_partner(
    config: SceneConfig,
) -> None:
    for seed in range(12):
        scene = generate_scene(seed, SHAPE, config)
        labels, description = scene.labels, scene.description
        n = description["n_spheroids"]
        assert n >= 1
        assert set(np.unique(labels)) == set(range(n + 1))
        partners = {frozenset(pair) for pair in description["touching_labels"]}
        for label in range(1, n + 1):
            mask = labels == label
            assert ndi.label(mask, structure=np.ones((3, 3)))[1] == 1
            neighbours = set(np.unique(labels[ndi.binary_dilation(mask, iterations=2)])) - {0, label}
            assert all(frozenset((label, other)) in partners for other in neighbours)


def test_spheroids_are_darker_than_the_background_in_brightfield() -> None:
    config = dataclasses.replace(SceneConfig(), p_phase_contrast=0.0, p_auto_contrast=0.0, p_16bit=0.0)
    for seed in range(6):
        scene = generate_scene(seed, SHAPE, config)
        image = scene.image.astype(np.float64)
        assert image[scene.labels > 0].mean() < 0.85 * np.median(image[scene.labels == 0])


def test_touching_pairs_are_two_instances_that_meet() -> None:
    config = dataclasses.replace(SceneConfig(), p_single=0.0, spheroid_count=(2, 2), p_touching=1.0)
    seen = 0
    for seed in range(6):
        scene = generate_scene(seed, SHAPE, config)
        for a, b in scene.description["touching_labels"]:
            seen += 1
            assert a != b
            assert np.any(scene.labels == a)
            assert np.any(scene.labels == b)
            # they meet: some pixel of one has a 4-neighbour in the other, with no background between
            assert np.any(ndi.binary_dilation(scene.labels == a) & (scene.labels == b))
    assert seen >= 4


def test_hollow_spheroids_have_a_background_like_hole_inside_their_ring() -> None:
    config = dataclasses.replace(SceneConfig(), p_hollow=1.0, radius_px=(40.0, 1e9))
    scene = _first(config, "n_hollow")
    image = scene.image.astype(np.float64)
    for label in scene.description["hollow_labels"]:
        ring = scene.labels == label
        hole = ndi.binary_fill_holes(ring) & ~ring
        assert hole.sum() > 30
        assert np.all(scene.labels[hole] == 0)
        assert image[hole].mean() > image[ring].mean()  # the lumen is lighter than the cell layer


def test_solid_spheroids_have_no_holes() -> None:
    config = dataclasses.replace(SceneConfig(), p_hollow=0.0)
    for seed in range(6):
        labels = generate_scene(seed, SHAPE, config).labels
        for label in range(1, labels.max() + 1):
            mask = labels == label
            assert np.array_equal(ndi.binary_fill_holes(mask), mask)


def test_description_counts_match_the_labels() -> None:
    scene = generate_scene(2, SHAPE, SceneConfig.held_out())
    description = scene.description
    assert description["n_spheroids"] == scene.labels.max()
    assert description["n_hollow"] == len(description["hollow_labels"])
    assert description["n_touching_pairs"] == len(description["touching_labels"])
    assert len(description["radii_px"]) == description["n_spheroids"]


def test_a_field_filling_spheroid_fits_in_the_image() -> None:
    config = dataclasses.replace(SceneConfig(), p_single=1.0, p_hollow=0.0, radius_px=(110.0, 1e9))
    scene = generate_scene(0, SHAPE, config)
    assert scene.labels.max() == 1
    assert (scene.labels == 1).mean() > 0.4
    border = np.concatenate([scene.labels[0], scene.labels[-1], scene.labels[:, 0], scene.labels[:, -1]])
    assert not border.any()


# -- configuration --------------------------------------------------------------------------------------


def test_held_out_config_covers_and_widens_the_training_ranges() -> None:
    training, held_out = SceneConfig.training(), SceneConfig.held_out()
    assert training == SceneConfig()
    assert held_out != training
    wider = 0
    for field in dataclasses.fields(SceneConfig):
        a, b = getattr(training, field.name), getattr(held_out, field.name)
        if isinstance(a, tuple) and len(a) == 2 and field.name != "camera_bits":
            assert b[0] <= a[0] and b[1] >= a[1], field.name
            wider += b != a
    assert wider >= 20
    assert set(training.camera_bits) < set(held_out.camera_bits)
    assert held_out.p_msb_aligned > 0 and training.p_msb_aligned == 0


def test_held_out_scenes_differ_from_training_scenes_with_the_same_seed() -> None:
    for seed in range(4):
        assert _digest(generate_scene(seed, SHAPE)) != _digest(
            generate_scene(seed, SHAPE, SceneConfig.held_out())
        )


@pytest.mark.parametrize(
    "changes",
    [
        {"p_hollow": 1.5},
        {"radius_px": (30.0, 10.0)},
        {"photons": (0.0, 100.0)},
        {"lumen_fraction": (0.5, 1.0)},
        {"camera_bits": (8,)},
        {"spheroid_count": (0, 3)},
        {"max_radius_fraction": 0.7},
        {"elongation": (0.5, 1.0)},
    ],
)
def test_invalid_configs_are_refused_naming_the_field(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(changes))):
        dataclasses.replace(SceneConfig(), **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(("seed", "shape"), [(-1, (256, 256)), (0, (32, 256)), (0, (256,))])
def test_invalid_seed_or_shape_is_refused(seed: int, shape: tuple[int, int]) -> None:
    with pytest.raises(ValueError):
        generate_scene(seed, shape)


# -- held-out extremes ----------------------------------------------------------------------------------


def test_held_out_scenes_hold_spheroids_cut_by_the_border_and_radii_from_ten_pixels() -> None:
    cut = small = 0
    for seed in range(20):
        labels = generate_scene(seed, SHAPE, SceneConfig.held_out()).labels
        edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
        cut += len(set(edge[edge > 0].tolist()))
        radii = np.sqrt(np.bincount(labels.ravel())[1:] / np.pi)
        small += int(((radii >= 10) & (radii < 20)).sum())
    assert cut >= 2 and small >= 2
    assert SceneConfig.held_out().radius_px[0] == 10.0


def test_training_scenes_are_those_the_shipped_weights_were_trained_on() -> None:
    """Fields added later (p_border_cut) leave the seeds' scenes as they were at their training value."""
    from cluster.synthetic.scene import _config_key

    assert _config_key(SceneConfig.training()) == 17219874671291356116
    for seed in range(5):
        scene = generate_scene(seed, SHAPE)
        edge = np.concatenate([scene.labels[0], scene.labels[-1], scene.labels[:, 0], scene.labels[:, -1]])
        assert not edge.any()


# -- the second model's training scenes -----------------------------------------------------------------


def test_fibres_are_long_thin_dark_bands() -> None:
    from scipy import ndimage as ndi

    from cluster.synthetic.particles import add_fibres

    for seed in range(6):
        transmission = np.ones((256, 256), dtype=np.float32)
        add_fibres(transmission, np.random.default_rng(seed), 1, psf=1.0)
        band = transmission < 0.9
        assert band.any() and transmission.min() < 0.85, seed
        widest = 2 * ndi.distance_transform_edt(band).max()
        assert band.sum() > 4 * widest**2, seed  # far longer than it is wide: no blob, no disc


def test_second_training_ranges_hold_small_cut_and_unlabelled_dark_bands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cluster.synthetic import particles

    config = SceneConfig.training_v2()
    assert config.radius_px[0] == 10.0 and config.p_border_cut > 0 and config.fibres == (0, 2)
    assert config.psf_sigma_px[1] > SceneConfig.training().psf_sigma_px[1]
    assert config.lumen_fraction[1] >= 0.9  # thin-walled rings, so that a ring is not taken for a fibre
    drawn: list[int] = []
    real = particles.add_fibres

    def counting(transmission: np.ndarray, rng: np.random.Generator, count: int, psf: float) -> None:
        drawn.append(count)
        real(transmission, rng, count, psf)

    monkeypatch.setattr(particles, "add_fibres", counting)
    for seed in range(12):
        generate_scene(seed, SHAPE)  # the first model's scenes: no fibre, no draw for one
    assert drawn == []
    for seed in range(12):
        generate_scene(seed, SHAPE, config)
    assert len(drawn) == 12 and set(drawn) == {0, 1, 2}
    assert SceneConfig.for_training("v1") == SceneConfig.training()
    with pytest.raises(ValueError, match=r"v1, v2, v2\.1"):
        SceneConfig.for_training("v3")


def test_the_ranges_of_version_2_1_add_large_cells_and_deeper_touching_to_version_2s() -> None:
    second, third = SceneConfig.for_training("v2"), SceneConfig.for_training("v2.1")
    changed = {
        f.name for f in dataclasses.fields(SceneConfig) if getattr(second, f.name) != getattr(third, f.name)
    }
    assert changed == {"cell_diameter_um", "cell_density", "p_touching", "touch_overlap"}
    assert third.cell_diameter_um[1] == 20.0 and third.touch_overlap[1] > second.touch_overlap[1]


@pytest.mark.parametrize("halo", [0.0, 0.5])
def test_a_single_cell_fades_into_the_background_before_its_stamp_ends(halo: float) -> None:
    """A stamp cut off while its profile is still deep shows as a square around the cell (it did, in every
    scene set, for the round refractile cells whose dark ring is wide)."""
    from cluster.synthetic.particles import _cell

    for seed in range(24):  # one cell in four is refractile: several of each kind
        transmission = np.ones((160, 160), dtype=np.float32)
        _cell(transmission, np.random.default_rng(seed), 80.0, 80.0, radius=14.0, soft=1.0, halo=halo)
        rows, cols = np.nonzero(transmission != 1)
        stamp = transmission[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        frame = np.concatenate([stamp[0], stamp[-1], stamp[:, 0], stamp[:, -1]])
        assert np.abs(frame - 1).max() < 0.01, seed


def test_the_ranges_of_version_2_2_reach_the_held_out_light_and_focus() -> None:
    third, fourth, held_out = (
        SceneConfig.for_training("v2.1"),
        SceneConfig.for_training("v2.2"),
        SceneConfig.held_out(),
    )
    changed = {
        f.name for f in dataclasses.fields(SceneConfig) if getattr(third, f.name) != getattr(fourth, f.name)
    }
    assert changed == {"psf_sigma_px", "p_defocus", "defocus_sigma_px", "photons"}
    assert fourth.photons[0] == held_out.photons[0] and fourth.defocus_sigma_px == held_out.defocus_sigma_px
    assert fourth.psf_sigma_px[1] == held_out.psf_sigma_px[1] and fourth.p_defocus == held_out.p_defocus


def test_the_train_command_offers_every_training_scene_set() -> None:
    """The command lists the names itself (importing the generator for --help would slow it)."""
    from cluster.cli.train import train
    from cluster.synthetic import TRAINING_SCENES

    (choice,) = [param.type for param in train.params if param.name == "scenes"]
    assert tuple(choice.choices) == TRAINING_SCENES  # type: ignore[attr-defined]
