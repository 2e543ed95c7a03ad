"""to_bgr8 and read_image: every odd picture becomes H x W x 3 uint8 BGR, C-contiguous."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sonify.capture.convert import MIN_SIDE_PX, decode_image, read_image, to_bgr8


def assert_frame_image(image: np.ndarray | None) -> np.ndarray:
    assert image is not None
    assert image.dtype == np.uint8
    assert image.ndim == 3 and image.shape[2] == 3
    assert image.flags.c_contiguous
    assert min(image.shape[:2]) >= MIN_SIDE_PX
    return image


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def palette_png(palette_rgb: list[tuple[int, int, int]], rows: list[list[int]],
                transparency: list[int] | None = None) -> bytes:
    """A minimal 8-bit palette PNG (colour type 3), written by hand since PIL is not around."""
    height, width = len(rows), len(rows[0])
    raw = b"".join(b"\x00" + bytes(row) for row in rows)  # filter type 0 per row
    data = b"\x89PNG\r\n\x1a\n"
    data += png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0))
    data += png_chunk(b"PLTE", b"".join(bytes(rgb) for rgb in palette_rgb))
    if transparency is not None:
        data += png_chunk(b"tRNS", bytes(transparency))
    data += png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")
    return data


def test_bgr8_picture_passes_through_untouched() -> None:
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert to_bgr8(image) is image


def test_grey_becomes_three_equal_channels() -> None:
    for grey in (np.full((20, 30), 77, np.uint8), np.full((20, 30, 1), 77, np.uint8)):
        image = assert_frame_image(to_bgr8(grey))
        assert image.shape == (20, 30, 3)
        assert (image == 77).all()


def test_16_bit_png_scales_by_257(tmp_path: Path) -> None:
    levels = np.array([[0, 257 * 1, 257 * 100, 257 * 200, 65535, 65535 - 100]], np.uint16)
    path = tmp_path / "deep.png"
    assert cv2.imwrite(str(path), np.repeat(np.repeat(levels, 16, axis=0), 16, axis=1))
    decoded = decode_image(np.fromfile(path, np.uint8))
    assert decoded is not None and decoded.dtype == np.uint16  # depth kept until to_bgr8
    image = assert_frame_image(read_image(path))
    assert image[0, ::16, 0].tolist() == [0, 1, 100, 200, 255, 255]


def test_bgra_is_composited_over_black(tmp_path: Path) -> None:
    bgra = np.zeros((16, 3, 4), np.uint8)
    bgra[:, 0] = (200, 100, 50, 255)  # opaque
    bgra[:, 1] = (200, 100, 50, 0)    # fully transparent
    bgra[:, 2] = (200, 100, 50, 128)  # half
    path = tmp_path / "alpha.png"
    assert cv2.imwrite(str(path), bgra)
    image = assert_frame_image(read_image(path))
    assert image.shape == (16 * 6, 3 * 6, 3)  # 3 px wide: enlarged to 16+ on the short side
    assert image[0, 0].tolist() == [200, 100, 50]
    assert image[0, 6].tolist() == [0, 0, 0]
    assert image[0, 12].tolist() == [100, 50, 25]


def test_grey_with_alpha_is_composited_over_black() -> None:
    grey_alpha = np.zeros((16, 16, 2), np.uint8)
    grey_alpha[..., 0] = 200
    grey_alpha[..., 1] = 51  # 20 %
    assert (assert_frame_image(to_bgr8(grey_alpha)) == 40).all()


def test_palette_png_keeps_its_colours(tmp_path: Path) -> None:
    path = tmp_path / "palette.png"
    path.write_bytes(palette_png([(255, 0, 0), (0, 0, 255), (0, 255, 0)], [[0, 1, 2]] * 16))
    image = assert_frame_image(read_image(path))
    assert image[0, 0].tolist() == [0, 0, 255]  # red, in BGR
    assert image[0, 6].tolist() == [255, 0, 0]  # blue
    assert image[0, 12].tolist() == [0, 255, 0]  # green


def test_transparent_palette_entry_turns_black(tmp_path: Path) -> None:
    path = tmp_path / "palette_alpha.png"
    path.write_bytes(palette_png([(255, 0, 0), (0, 0, 255)], [[0, 1]] * 16, transparency=[0, 255]))
    image = assert_frame_image(read_image(path))
    assert image[0, 0].tolist() == [0, 0, 0]
    assert image[0, -1].tolist() == [255, 0, 0]


@pytest.mark.parametrize(("shape", "expected"), [((1, 1), (16, 16)), ((2, 3), (16, 24)),
                                                 ((1, 40), (16, 640)), ((16, 16), (16, 16))])
def test_tiny_pictures_are_enlarged_with_exact_colours(shape: tuple[int, int],
                                                       expected: tuple[int, int]) -> None:
    tiny = np.zeros((*shape, 3), np.uint8)
    tiny[..., 2] = 250
    image = assert_frame_image(to_bgr8(tiny))
    assert image.shape[:2] == expected
    assert set(map(tuple, image.reshape(-1, 3).tolist())) == {(0, 0, 250)}


def test_float_pictures_are_taken_as_0_to_1() -> None:
    unit = np.array([[0.0, 0.5, 1.0, 2.0, -1.0, np.nan, np.inf, 1e30]], np.float64)
    image = assert_frame_image(to_bgr8(unit.astype(np.float32)))
    assert image[0, ::16, 0].tolist() == [0, 128, 255, 255, 0, 0, 255, 255]
    image = assert_frame_image(to_bgr8(unit))
    assert image[0, ::16, 0].tolist() == [0, 128, 255, 255, 0, 0, 255, 255]


def test_bool_and_other_integer_widths() -> None:
    assert (assert_frame_image(to_bgr8(np.ones((16, 16), bool))) == 255).all()
    wide = np.full((16, 16), np.iinfo(np.int32).max, np.int32)
    assert (assert_frame_image(to_bgr8(wide)) == 255).all()
    assert (assert_frame_image(to_bgr8(-wide)) == 0).all()


def test_non_contiguous_view_comes_out_contiguous() -> None:
    image = np.random.default_rng(1).integers(0, 256, (32, 64, 3), dtype=np.uint8)
    view = image[:, ::2]
    out = assert_frame_image(to_bgr8(view))
    assert np.array_equal(out, view)


@pytest.mark.parametrize("bad", [
    None,
    np.zeros((0, 10, 3), np.uint8),
    np.zeros((4, 4, 3, 2), np.uint8),
    np.zeros((4, 4, 5), np.uint8),
    np.zeros(10, np.uint8),
    np.zeros((4, 4), np.complex64),
])
def test_what_is_not_a_picture_gives_none(bad: np.ndarray | None) -> None:
    assert to_bgr8(bad) is None


def test_unreadable_files_give_none(tmp_path: Path) -> None:
    image = np.random.default_rng(2).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(".png", image)
    assert ok
    (tmp_path / "truncated.png").write_bytes(encoded.tobytes()[: encoded.size // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_bytes(b"not a picture at all")
    for name in ("truncated.png", "empty.png", "text.png", "missing.png"):
        assert read_image(tmp_path / name) is None, name
    assert read_image(tmp_path) is None  # a folder


def test_non_ascii_path_is_read(tmp_path: Path) -> None:
    path = tmp_path / "bild_größe_日本.png"
    ok, encoded = cv2.imencode(".png", np.full((16, 16, 3), 9, np.uint8))
    assert ok
    path.write_bytes(encoded.tobytes())
    assert (assert_frame_image(read_image(path)) == 9).all()


def test_exif_orientation_is_applied_like_a_viewer() -> None:
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, :20] = (0, 0, 255)
    ok, encoded = cv2.imencode(".jpg", wide)
    assert ok
    # TIFF-style EXIF with one entry: Orientation (0x0112) = 6, "rotate 90 clockwise".
    tiff = b"MM\x00\x2a" + struct.pack(">IH", 8, 1) + struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0)
    app1 = b"Exif\x00\x00" + tiff + struct.pack(">I", 0)
    jpeg = encoded.tobytes()
    rotated = jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]
    image = assert_frame_image(to_bgr8(decode_image(rotated)))
    assert image.shape == (40, 20, 3)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.uint16, np.int16, np.float32, np.float64, np.bool_]),
    shape=st.one_of(
        hnp.array_shapes(min_dims=2, max_dims=2, max_side=20),
        st.tuples(st.integers(1, 20), st.integers(1, 20), st.sampled_from([1, 2, 3, 4])),
    ),
))
def test_any_picture_becomes_a_frame_image(image: np.ndarray) -> None:
    out = assert_frame_image(to_bgr8(image))
    factor = out.shape[0] // image.shape[0]
    assert out.shape[:2] == (image.shape[0] * factor, image.shape[1] * factor)
