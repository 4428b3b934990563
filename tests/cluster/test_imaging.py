"""Reading images: formats sniffed from bytes, header facts, pixels, errors that name the file, normalisation.

The files come from ``tests/data/make_images.py``; its pixel builders say what each file holds.
"""

from __future__ import annotations

import io
import time
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pytest
import tifffile
from numpy.typing import NDArray
from PIL import Image, ImageFile

from cluster.exceptions import (
    CorruptImageError,
    EmptyImageError,
    ImageReadError,
    ImageTooLargeError,
    UnsupportedFormatError,
)
from cluster.imaging import (
    DEFAULT_MAX_PIXELS,
    ImageInfo,
    check_image,
    normalize,
    read_image,
    read_image_info,
    sniff_format,
    to_grayscale,
)
from tests.data import make_images as images

DATA = images.OUT
W, H = images.WIDTH, images.HEIGHT


def luma(rgb: NDArray[Any]) -> NDArray[Any]:
    """BT.601 luminance, rounded back to the integer dtype: what a colour image must read as."""
    values = rgb[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.rint(values).astype(rgb.dtype)


@dataclass(frozen=True)
class Expected:
    format: str
    dtype: str
    channels: int
    pages: int
    pixel_size_um: float | None
    pixels: Callable[[], NDArray[Any]]
    lossy: bool = False
    colour: bool = False  # luminance is computed in float32: an exact .5 may round either way

    @property
    def bit_depth(self) -> int:
        return np.dtype(self.dtype).itemsize * 8


GOOD: dict[str, Expected] = {
    "gray8.tif": Expected("tiff", "uint8", 1, 1, None, images.gray8),
    "gray16.tif": Expected("tiff", "uint16", 1, 1, None, images.gray16),
    "float32.tif": Expected("tiff", "float32", 1, 1, None, images.float32),
    "rgb.tif": Expected("tiff", "uint8", 3, 1, None, lambda: luma(images.rgb8()), colour=True),
    "rgb_planar.tif": Expected("tiff", "uint8", 3, 1, None, lambda: luma(images.rgb8()), colour=True),
    "palette.tif": Expected(
        "tiff", "uint8", 3, 1, None, lambda: luma(images.PALETTE[images.palette_indices()]), colour=True
    ),
    "multipage.tif": Expected("tiff", "uint8", 1, 3, None, lambda: images.stack8()[0]),
    "imagej.tif": Expected("tiff", "uint8", 1, 3, 0.325, lambda: images.stack8()[0]),
    "ome.ome.tif": Expected("ome-tiff", "uint16", 2, 4, 0.8, lambda: images.ome_zc16()[0, 0]),
    "ome_nm.ome.tif": Expected("ome-tiff", "uint8", 1, 1, 0.65, images.gray8),
    "res_cm.tif": Expected("tiff", "uint8", 1, 1, 0.65, images.gray8),
    "res_inch.tif": Expected("tiff", "uint8", 1, 1, 2.0, images.gray8),
    "res_72dpi.tif": Expected("tiff", "uint8", 1, 1, None, images.gray8),  # an editor's default, not a scale
    "lzw.tif": Expected("tiff", "uint16", 1, 1, None, images.gray16),
    "gray8.png": Expected("png", "uint8", 1, 1, None, images.gray8),
    "gray16.png": Expected("png", "uint16", 1, 1, None, images.gray16),
    "rgb.png": Expected("png", "uint8", 3, 1, 0.5, lambda: luma(images.rgb8()), colour=True),
    "rgba.png": Expected("png", "uint8", 4, 1, None, lambda: luma(images.rgba8()), colour=True),
    "rgb16.png": Expected("png", "uint16", 3, 1, None, lambda: luma(images.rgb16()), colour=True),
    "palette.png": Expected(
        "png", "uint8", 3, 1, None, lambda: luma(images.PALETTE[images.palette_indices()]), colour=True
    ),
    "gray.jpg": Expected("jpeg", "uint8", 1, 1, None, lambda: luma(images.smooth_rgb8()), lossy=True),
    "rgb.jpg": Expected("jpeg", "uint8", 3, 1, None, lambda: luma(images.smooth_rgb8()), lossy=True),
    "rgb.bmp": Expected("bmp", "uint8", 3, 1, None, lambda: luma(images.rgb8()), colour=True),
    "gray8.bmp": Expected("bmp", "uint8", 1, 1, None, images.gray8),
    "png_named.tif": Expected("png", "uint8", 1, 1, None, images.gray8),  # the bytes decide, not the name
}

# File -> (error, header-level: already refused by read_image_info, text the message must contain).
BAD: dict[str, tuple[type[ImageReadError], bool, str]] = {
    "truncated.tif": (CorruptImageError, False, "TIFF"),
    "truncated_lzw.tif": (CorruptImageError, False, "TIFF"),
    "truncated.png": (CorruptImageError, False, "truncated"),
    "truncated.jpg": (CorruptImageError, False, "truncated"),
    "bad_crc.png": (CorruptImageError, False, "PNG"),
    "empty.tif": (EmptyImageError, True, "empty"),
    "zero_width.png": (EmptyImageError, True, "0 x 48"),
    "text.png": (UnsupportedFormatError, True, "text file"),
    "picture.gif": (UnsupportedFormatError, True, "GIF"),
    "document.pdf": (UnsupportedFormatError, True, "PDF"),
    "huge_header.tif": (ImageTooLargeError, True, "100000 x 100000"),
}


def test_the_script_wrote_every_file_small() -> None:
    for name in [*GOOD, *BAD]:
        assert (DATA / name).stat().st_size < 100_000, name
    assert set(GOOD) | set(BAD) == set(images.good_files()) | set(images.bad_files())


@pytest.mark.parametrize("name", GOOD)
def test_header_describes_the_image(name: str) -> None:
    expected = GOOD[name]
    info = read_image_info(DATA / name)
    assert info.name == str(DATA / name)
    assert (info.format, info.width, info.height) == (expected.format, W, H)
    assert (info.dtype, info.bit_depth) == (expected.dtype, expected.bit_depth)
    assert (info.channels, info.pages) == (expected.channels, expected.pages)
    if expected.pixel_size_um is None:
        assert info.pixel_size_um is None
    else:
        assert info.pixel_size_um == pytest.approx(expected.pixel_size_um, rel=1e-6)


@pytest.mark.parametrize("name", GOOD)
def test_pixels_are_what_was_written(name: str) -> None:
    expected = GOOD[name]
    image = read_image(DATA / name)
    assert image.info == read_image_info(DATA / name)
    assert image.pixels.shape == (H, W)
    assert image.pixels.dtype == np.dtype(expected.dtype)
    want = expected.pixels()
    if expected.lossy:
        difference = np.abs(image.pixels.astype(np.int64) - want.astype(np.int64))
        assert difference.mean() < 2 and difference.max() <= 12
    elif expected.colour:
        np.testing.assert_allclose(image.pixels.astype(np.int64), want.astype(np.int64), rtol=0, atol=1)
    else:
        np.testing.assert_array_equal(image.pixels, want)


@pytest.mark.parametrize(
    ("name", "page", "want"),
    [
        ("multipage.tif", 2, lambda: images.stack8()[2]),
        ("imagej.tif", 1, lambda: images.stack8()[1]),
        ("ome.ome.tif", 1, lambda: images.ome_zc16()[0, 1]),  # z0, second channel
        ("ome.ome.tif", 3, lambda: images.ome_zc16()[1, 1]),  # z1, second channel
    ],
)
def test_a_chosen_page_of_a_stack(name: str, page: int, want: Callable[[], NDArray[Any]]) -> None:
    image = read_image(DATA / name, page=page)
    np.testing.assert_array_equal(image.pixels, want())


@pytest.mark.parametrize(("name", "page"), [("multipage.tif", 3), ("multipage.tif", -1), ("gray8.png", 1)])
def test_a_page_out_of_range_is_refused(name: str, page: int) -> None:
    with pytest.raises(ValueError, match=name):
        read_image(DATA / name, page=page)


@pytest.mark.parametrize("name", BAD)
def test_bad_file_raises_a_clear_error(name: str) -> None:
    error, header_level, says = BAD[name]
    with pytest.raises(error) as caught:
        read_image(DATA / name)
    assert caught.value.path == str(DATA / name)
    assert name in str(caught.value)
    assert says in str(caught.value)
    if header_level:
        with pytest.raises(error, match=name):
            read_image_info(DATA / name)


def test_header_only_read_does_not_touch_pixel_data() -> None:
    """A TIFF cut off in its pixel data still has a whole header; only decoding finds the damage."""
    info = read_image_info(DATA / "truncated.tif")
    assert (info.width, info.height, info.dtype) == (W, H, "uint16")
    with pytest.raises(CorruptImageError):
        read_image(DATA / "truncated.tif")


@pytest.mark.parametrize("name", ["picture.gif", "document.pdf", "text.png"])
def test_unsupported_format_says_what_is_supported(name: str) -> None:
    with pytest.raises(UnsupportedFormatError) as caught:
        read_image(DATA / name)
    for fmt in ("TIFF", "PNG", "JPEG", "BMP"):
        assert fmt in caught.value.reason


@pytest.mark.parametrize("name", ["gray16.tif", "lzw.tif", "gray16.png", "rgb16.png", "rgb.jpg", "rgb.bmp"])
def test_a_file_cut_anywhere_fails_cleanly_or_reads_whole(name: str) -> None:
    """Never half-grey garbage and never a raw library error, wherever a file is cut short."""
    data = (DATA / name).read_bytes()
    whole = read_image(data).pixels
    cuts = sorted({*range(0, 40), *(int(len(data) * f) for f in np.linspace(0.05, 0.999, 40))})
    for cut in cuts:
        try:
            image = read_image(data[:cut], name=f"{name}[:{cut}]")
        except ImageReadError as error:
            assert f"{name}[:{cut}]" in str(error)
        else:
            np.testing.assert_array_equal(image.pixels, whole, err_msg=f"{name} cut at {cut}")


def test_a_huge_header_is_refused_fast_without_allocating() -> None:
    data = (DATA / "huge_header.tif").read_bytes()
    assert len(data) < 500
    tracemalloc.start()
    started = time.perf_counter()
    try:
        for read in (read_image_info, read_image):
            with pytest.raises(ImageTooLargeError, match="10,000,000,000 pixels"):
                read(data, name="huge_header.tif")
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 2.0
    assert peak < 20_000_000  # the pixels would be 10 GB


def test_decoded_bytes_are_limited_from_the_header_not_only_pixels() -> None:
    """4 megapixels of 32 float64 samples each: far under the pixel limit, but 1 GB once decoded."""
    data = images.sample_heavy_tiff(2000, 2000, samples=32)
    assert len(data) < 1000
    tracemalloc.start()
    try:
        for read in (read_image_info, read_image, check_image):
            with pytest.raises(ImageTooLargeError) as caught:
                read(data, name="stack.tif")
            assert "stack.tif" in str(caught.value)
            assert "1,024,000,000 bytes (2000 x 2000 x 32 values of 8 byte(s))" in caught.value.reason
            assert "fewer samples per pixel or a smaller bit depth" in caught.value.reason
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000


@pytest.mark.parametrize(
    ("name", "samples"), [("rgb.tif", 3), ("rgb16.png", 3), ("rgb.jpg", 3), ("gray8.png", 1)]
)
def test_max_bytes_is_checked_per_call_with_samples_and_bit_depth(name: str, samples: int) -> None:
    info = read_image_info(DATA / name)
    decoded = W * H * samples * info.bit_depth // 8
    assert read_image(DATA / name, max_bytes=decoded).pixels.shape == (H, W)
    for read in (read_image_info, read_image, check_image):
        with pytest.raises(ImageTooLargeError, match=f"{decoded:,} bytes"):
            read(DATA / name, max_bytes=decoded - 1)


def _separate_samples_tiff(samples: int, size: int, **options: Any) -> tuple[bytes, NDArray[Any]]:
    values = np.random.default_rng(3).random((samples, size, size)) * 1000
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, values, planarconfig="separate", photometric="minisblack", **options)
    return buffer.getvalue(), values


@pytest.mark.parametrize("options", [{}, {"rowsperstrip": 64}, {"tile": (64, 64), "compression": "zlib"}])
def test_of_samples_stored_apart_only_the_one_shown_is_decoded(options: dict[str, Any]) -> None:
    """32 float64 samples of 500 x 500 stored one after another: 64 MB decoded, 2 MB shown."""
    data, values = _separate_samples_tiff(32, 500, **options)
    tracemalloc.start()
    try:
        pixels = read_image(data, name="channels.tif").pixels
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(pixels, values[0].astype(np.float32))
    assert peak < 16_000_000  # not the 64 MB of every sample


def test_check_image_decodes_every_sample_even_where_display_needs_one() -> None:
    data, _ = _separate_samples_tiff(8, 200)
    cut = data[: len(data) * 3 // 4]  # the first samples are whole, the last ones cut off
    read_image(cut, name="cut.tif")
    with pytest.raises(CorruptImageError, match=r"cut\.tif"):
        check_image(cut, name="cut.tif")


@pytest.mark.parametrize("name", ["truncated.tif", "truncated_lzw.tif", "truncated.png", "truncated.jpg"])
def test_check_image_refuses_a_file_whose_header_reads_but_pixels_do_not(name: str) -> None:
    with pytest.raises(CorruptImageError, match=name):
        check_image(DATA / name)


def test_check_image_decodes_every_plane_of_a_stack_and_reports_the_header() -> None:
    assert check_image(DATA / "multipage.tif") == read_image_info(DATA / "multipage.tif")
    data = (DATA / "multipage.tif").read_bytes()
    cut = data[: _pixel_data_end(data) - 10]  # the last plane loses its last bytes
    with pytest.raises(CorruptImageError, match=r"cut\.tif"):
        check_image(cut, name="cut.tif")
    assert read_image(cut, name="cut.tif").pixels.shape == (H, W)  # the first plane alone still reads


def _pixel_data_end(data: bytes) -> int:
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        ends = (
            int(o) + int(n) for p in tif.pages for o, n in zip(p.dataoffsets, p.databytecounts, strict=True)
        )
        return max(ends)


@pytest.mark.parametrize("name", ["gray8.tif", "gray8.png", "gray.jpg", "gray8.bmp", "multipage.tif"])
def test_max_pixels_is_checked_per_call(name: str) -> None:
    assert read_image(DATA / name, max_pixels=W * H).pixels.shape == (H, W)
    with pytest.raises(ImageTooLargeError, match=f"{W} x {H}"):
        read_image_info(DATA / name, max_pixels=W * H - 1)
    with pytest.raises(ImageTooLargeError, match=name):
        read_image(DATA / name, max_pixels=W * H - 1)


@pytest.mark.parametrize("name", ["gray8.png", "gray.jpg", "gray8.bmp"])
def test_pillows_bomb_limit_neither_warns_nor_decides(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # far below 64 x 48
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(DATA / name).pixels.shape == (H, W)
    with pytest.raises(ImageTooLargeError):
        read_image(DATA / name, max_pixels=1000)


def test_pillow_still_refuses_truncated_images_after_reading() -> None:
    for name in GOOD:
        read_image(DATA / name)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


class _Unseekable(io.RawIOBase):
    """A stream like an HTTP upload body: read-only, no seek."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._inner.read(min(len(buffer), 1000))
        buffer[: len(chunk)] = chunk
        return len(chunk)


SOURCES: dict[str, Callable[[bytes], Any]] = {
    "bytes": bytes,
    "bytearray": bytearray,
    "memoryview": memoryview,
    "BytesIO": io.BytesIO,
    "unseekable": lambda data: io.BufferedReader(_Unseekable(data)),
}


@pytest.mark.parametrize("kind", SOURCES)
@pytest.mark.parametrize("name", ["gray16.tif", "ome.ome.tif", "rgb.png", "rgb.jpg", "rgb.bmp"])
def test_bytes_and_file_objects_read_like_paths(kind: str, name: str) -> None:
    from_path = read_image(DATA / name)
    source = SOURCES[kind]((DATA / name).read_bytes())
    image = read_image(source, name=name)
    assert image.info == replace(from_path.info, name=name)
    np.testing.assert_array_equal(image.pixels, from_path.pixels)


def test_an_open_file_is_left_open_where_it_was() -> None:
    with (DATA / "gray16.tif").open("rb") as stream:
        info = read_image_info(stream)
        assert stream.tell() == 0
        image = read_image(stream)
        assert not stream.closed and stream.tell() == 0
    assert info.name == image.info.name == str(DATA / "gray16.tif")
    np.testing.assert_array_equal(image.pixels, images.gray16())


def test_a_file_object_is_read_from_where_it_stands() -> None:
    stream = io.BytesIO(b"HEADER" + (DATA / "gray8.png").read_bytes())
    stream.seek(6)
    np.testing.assert_array_equal(read_image(stream).pixels, images.gray8())
    assert stream.tell() == 6


def test_errors_name_the_upload() -> None:
    with pytest.raises(UnsupportedFormatError, match=r"upload-17\.png"):
        read_image_info(b"<html>not an image</html>", name="upload-17.png")
    with pytest.raises(EmptyImageError, match=r"<bytes>"):
        read_image(b"")


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"II*\x00\x08\x00\x00\x00", "tiff"),
        (b"MM\x00*\x00\x00\x00\x08", "tiff"),
        (b"II+\x00\x08\x00\x00\x00", "tiff"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
        (b"BM" + b"\x00" * 12 + b"\x28\x00\x00\x00", "bmp"),
    ],
)
def test_sniff_format_from_magic_numbers(head: bytes, fmt: str) -> None:
    assert sniff_format(head) == fmt


@pytest.mark.parametrize(
    ("head", "error", "says"),
    [
        (b"", EmptyImageError, "empty"),
        (b"BM is how this sentence starts, and it is no bitmap", UnsupportedFormatError, "text"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", UnsupportedFormatError, "WebP"),
        (b"\x00\x01\x02\x03\xfe\xfd", UnsupportedFormatError, "00 01 02 03"),
    ],
)
def test_sniff_format_refuses_other_bytes(head: bytes, error: type[ImageReadError], says: str) -> None:
    with pytest.raises(error, match=r"mystery\.bin") as caught:
        sniff_format(head, "mystery.bin")
    assert says in caught.value.reason


def test_info_is_a_frozen_record() -> None:
    info = read_image_info(DATA / "gray8.png")
    assert isinstance(info, ImageInfo)
    with pytest.raises(AttributeError):
        info.width = 1  # type: ignore[misc]
    assert DEFAULT_MAX_PIXELS == 200_000_000


# --- to_grayscale ---------------------------------------------------------------------------------------


def test_to_grayscale_keeps_a_2d_image() -> None:
    array = images.gray16()
    assert to_grayscale(array) is array


def test_to_grayscale_keeps_16_bit_range() -> None:
    rgb = np.zeros((2, 2, 3), dtype=np.uint16)
    rgb[0, 0] = 65535
    rgb[1, 1] = (1000, 2000, 3000)
    gray = to_grayscale(rgb)
    assert gray.dtype == np.uint16
    assert gray[0, 0] == 65535
    assert gray[1, 1] == round(0.299 * 1000 + 0.587 * 2000 + 0.114 * 3000)


def test_to_grayscale_ignores_alpha_and_keeps_float() -> None:
    rgba = np.ones((2, 2, 4), dtype=np.float32)
    rgba[..., 3] = 0.0
    gray = to_grayscale(rgba)
    assert gray.dtype == np.float32
    np.testing.assert_allclose(gray, 1.0, rtol=1e-6)
    assert to_grayscale(np.dstack([images.gray8(), images.gray8()])).tolist() == images.gray8().tolist()


def test_to_grayscale_refuses_other_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        to_grayscale(np.zeros((4, 4, 5), dtype=np.uint8))


# --- normalize ------------------------------------------------------------------------------------------


def test_normalize_keeps_16_bit_dynamic_range() -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(1000, 1201, (200, 300), dtype=np.uint16)
    out = normalize(pixels)
    assert out.dtype == np.float32
    assert out.min() == 0.0 and out.max() == 1.0
    assert len(np.unique(out)) > 150  # not squashed into a few 8-bit levels
    assert np.all(np.diff(out.ravel()[np.argsort(pixels.ravel(), kind="stable")]) >= 0)  # order kept


def test_normalize_clips_outliers_to_the_unit_interval() -> None:
    pixels = np.linspace(0, 1, 10_000, dtype=np.float32).reshape(100, 100)
    pixels[0, 0], pixels[0, 1] = -1e6, 1e6
    out = normalize(pixels, low=1, high=99)
    assert out[0, 0] == 0.0 and out[0, 1] == 1.0
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert out[50, 50] == pytest.approx(0.5, abs=0.01)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_normalize_gives_zeros_for_a_constant_image(dtype: type[np.generic]) -> None:
    out = normalize(np.full((30, 40), 7, dtype=dtype))
    assert out.dtype == np.float32 and not np.isnan(out).any() and not out.any()


def test_normalize_ignores_nan() -> None:
    pixels = np.arange(100, dtype=np.float32).reshape(10, 10)
    pixels[3, 3] = np.nan
    out = normalize(pixels, low=0, high=100)
    assert out[3, 3] == 0.0 and not np.isnan(out).any()
    assert out[9, 9] == 1.0
    assert not normalize(np.full((3, 3), np.nan, dtype=np.float32)).any()


def test_normalize_samples_big_images_but_matches_exact_percentiles() -> None:
    rng = np.random.default_rng(2)
    pixels = rng.gamma(2.0, 3000.0, (3000, 2000)).astype(np.uint16)
    lo, hi = np.percentile(pixels, [0.5, 99.5])
    exact = np.clip((pixels.astype(np.float64) - lo) / (hi - lo), 0, 1)
    np.testing.assert_allclose(normalize(pixels), exact, atol=0.01)


@pytest.mark.parametrize(("low", "high"), [(50, 50), (-1, 99), (1, 101), (90, 10)])
def test_normalize_refuses_bad_percentiles(low: float, high: float) -> None:
    with pytest.raises(ValueError, match="low"):
        normalize(images.gray8(), low=low, high=high)


def test_read_errors_survive_pickling_to_and_from_workers() -> None:
    import pickle

    from cluster.exceptions import CorruptImageError

    error = pickle.loads(pickle.dumps(CorruptImageError("plate/a1.tif", "truncated TIFF data")))
    assert isinstance(error, CorruptImageError)
    assert (error.path, error.reason, str(error)) == (
        "plate/a1.tif",
        "truncated TIFF data",
        "plate/a1.tif: truncated TIFF data",
    )
