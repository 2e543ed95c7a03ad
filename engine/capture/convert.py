"""Turn whatever a decoder or a camera hands us into the Frame image format.

Every source funnels its pictures through ``to_bgr8`` so the analyser only ever sees
H x W x 3 uint8 BGR, C-contiguous, at least ``MIN_SIDE_PX`` on the short side.

Choices, so the picture looks as it does in an image viewer:

- 16-bit integers are divided by 257 and rounded (65535 -> 255, 257*k -> k), the exact
  inverse of the usual 8 -> 16 bit widening; other integer widths scale by their maximum.
- Floats are taken as 0..1 (the OpenCV convention for HDR/EXR decodes), clipped, NaN -> 0.
- Alpha is composited over black (premultiplied, then dropped): transparent pixels become
  black whatever colour the file stored under them, as a viewer on a dark background shows.
- Pictures smaller than ``MIN_SIDE_PX`` on the short side are enlarged by a whole factor with
  nearest-neighbour so every analysis kernel has pixels to work on and colours stay exact.
- EXIF orientation is applied, as a viewer does, except on images with an alpha channel
  (OpenCV applies it only when it also drops alpha; a rotated transparent PNG is rare).
"""

from __future__ import annotations

import logging
import math
import os

import cv2
import numpy as np

logger = logging.getLogger(__name__)

MIN_SIDE_PX = 16
"""Short-side size below which ``to_bgr8`` enlarges a picture."""

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm",
)
"""Lower-case file extensions read as still images (matched case-insensitively)."""

_JPEG_MAGIC = b"\xff\xd8\xff"
# Markers that a file may carry EXIF orientation: JPEG/WebP APP1 or chunk, PNG eXIf chunk.
_EXIF_MARKERS = (b"Exif\x00\x00", b"eXIf", b"EXIF")
# Decode flags that keep bit depth and colour/grey but (unlike IMREAD_UNCHANGED) apply EXIF
# orientation; they drop alpha.
_ORIENTED_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR


def is_image_path(path: str | os.PathLike[str]) -> bool:
    """True when the file name ends in one of ``IMAGE_EXTENSIONS`` (any case)."""
    return os.fspath(path).lower().endswith(IMAGE_EXTENSIONS)


def read_image(path: str | os.PathLike[str]) -> np.ndarray | None:
    """Read and normalise one image file; None when it is missing, empty or not decodable.

    Reads the bytes with NumPy and decodes in memory because ``cv2.imread`` cannot open
    non-ASCII paths on some platforms.
    """
    try:
        data = np.fromfile(os.fspath(path), dtype=np.uint8)
    except OSError as exc:
        logger.debug("cannot read %s: %s", path, exc)
        return None
    return to_bgr8(decode_image(data))


def decode_image(data: np.ndarray | bytes) -> np.ndarray | None:
    """Decode encoded image bytes keeping bit depth and alpha; None when not decodable."""
    buf = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes) else data
    if buf.size == 0:
        return None  # cv2.imdecode asserts on an empty buffer instead of returning None
    head = buf[:3].tobytes()
    try:
        if head == _JPEG_MAGIC:
            # JPEG has no alpha, so the orientation-applying decode loses nothing.
            return cv2.imdecode(buf, _ORIENTED_FLAGS)
        image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        if image is not None and not _has_alpha(image) and _may_have_exif(buf):
            # Decode again so OpenCV applies the EXIF orientation that UNCHANGED ignores.
            oriented = cv2.imdecode(buf, _ORIENTED_FLAGS)
            if oriented is not None:
                image = oriented
        return image
    except cv2.error as exc:
        logger.debug("OpenCV could not decode %d bytes: %s", buf.size, exc)
        return None


def to_bgr8(image: np.ndarray | None) -> np.ndarray | None:
    """Convert any decoded picture to H x W x 3 uint8 BGR, C-contiguous; None if unusable.

    Accepts grey (H x W or H x W x 1), grey+alpha, BGR, BGRA, in any integer, bool or float
    dtype. Returns ``image`` itself when it is already in the target format and large enough.
    Returns None for empty arrays and shapes that are not a picture (the caller skips them).
    """
    if image is None or image.size == 0 or image.ndim not in (2, 3):
        return None
    if image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4):
        return None
    if image.dtype.kind not in "biuf":  # complex, object, strings: not a picture
        return None
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]

    image = _to_uint8(image)
    if image.ndim == 2:
        bgr = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 2:
        bgr = cv2.cvtColor(_over_black(image[:, :, :1], image[:, :, 1]), cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        bgr = _over_black(image[:, :, :3], image[:, :, 3])
    else:
        bgr = image

    short_px = min(bgr.shape[0], bgr.shape[1])
    if short_px < MIN_SIDE_PX:
        factor = math.ceil(MIN_SIDE_PX / short_px)
        bgr = cv2.resize(
            bgr, (bgr.shape[1] * factor, bgr.shape[0] * factor), interpolation=cv2.INTER_NEAREST
        )
    return np.ascontiguousarray(bgr)


def _has_alpha(image: np.ndarray) -> bool:
    return image.ndim == 3 and image.shape[2] in (2, 4)


def _may_have_exif(buf: np.ndarray) -> bool:
    data = buf.tobytes()
    return any(marker in data for marker in _EXIF_MARKERS)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """Scale a bool, integer or float picture to uint8 (integers: 0..max, floats: 0..1)."""
    dtype = image.dtype
    if dtype == np.uint8:
        return image
    if dtype == np.bool_:
        return image.astype(np.uint8) * np.uint8(255)
    if dtype == np.uint16:
        # Rounded division by 257 maps 0..65535 onto 0..255 exactly (257 * 255 == 65535).
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(dtype, np.floating):
        finite: np.ndarray = np.nan_to_num(image, nan=0.0, posinf=1.0, neginf=0.0)
        unit: np.ndarray = np.clip(finite, 0.0, 1.0).astype(np.float32)
        return (unit * np.float32(255.0) + np.float32(0.5)).astype(np.uint8)
    # Any other integer width: 0..max of the type, negatives clipped to black.
    top = float(np.iinfo(dtype).max)
    scaled = np.clip(image.astype(np.float64), 0.0, top) * (255.0 / top)
    return (scaled + 0.5).astype(np.uint8)


def _over_black(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite over black: colour * alpha / 255, rounded, alpha dropped."""
    weighted = colour.astype(np.uint16) * alpha[:, :, None].astype(np.uint16)
    return ((weighted + 127) // 255).astype(np.uint8)
