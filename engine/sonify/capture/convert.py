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

Huge pictures: ``read_image`` reads the size from the file's header (PNG, JPEG, WebP, BMP,
TIFF, PNM; ``read_header``) before decoding anything. Above ``MAX_IMAGE_PIXELS`` a JPEG is
decoded at 1/2, 1/4 or 1/8 size (libjpeg scales while it decodes, so the full size is never in
memory) and anything else is refused with an ImageTooLargeError saying the size and the memory
it would take: a 16-bit 20000 x 20000 PNG would otherwise need gigabytes before the first frame.
"""

from __future__ import annotations

import logging
import math
import os
import struct
from dataclasses import dataclass

import cv2
import numpy as np

from sonify.capture.base import SourceError

logger = logging.getLogger(__name__)

MAX_IMAGE_PIXELS = 100_000_000
"""Largest picture decoded at full size: 100 megapixels (a 12000 x 8000 photograph, more than
any camera body but medium format makes). Decoding one takes width x height x channels x bytes
per sample: 300 MB for 8-bit RGB, 800 MB for 16-bit RGBA; the analysis works at 480 pixels
wide and a render travels over the picture at most at its own size, so more buys nothing."""

_REDUCED_JPEG = ((2, cv2.IMREAD_REDUCED_COLOR_2), (4, cv2.IMREAD_REDUCED_COLOR_4),
                 (8, cv2.IMREAD_REDUCED_COLOR_8))
_CHUNK_ELEMENTS = 1 << 22  # uint16 -> uint8 conversion in row blocks of about this many values
# Rounded division by 257 maps 0..65535 onto 0..255 exactly (257 * 255 == 65535).
_U16_TO_U8 = ((np.arange(65536, dtype=np.uint32) + 128) // 257).astype(np.uint8)


class ImageTooLargeError(SourceError):
    """A picture whose header states a size over ``MAX_IMAGE_PIXELS`` that cannot be read
    reduced; the message says the size, the memory it needs and what to do."""


@dataclass(frozen=True)
class ImageHeader:
    """What a file's header says, before any decoding: ``channels`` as decoded (a palette
    counts as 3), ``sample_bytes`` 1 or 2 (4 for float TIFF)."""

    format: str
    width: int
    height: int
    channels: int = 3
    sample_bytes: int = 1

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def decoded_bytes(self) -> int:
        return self.pixels * self.channels * self.sample_bytes

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


def read_image(path: str | os.PathLike[str], *,
               max_pixels: int | None = None) -> np.ndarray | None:
    """Read and normalise one image file; None when it is missing, empty or not decodable;
    ImageTooLargeError when its header states more than ``max_pixels`` (default
    ``MAX_IMAGE_PIXELS``) and it is not a JPEG that can be read at a reduced size.

    Reads the bytes with NumPy and decodes in memory because ``cv2.imread`` cannot open
    non-ASCII paths on some platforms.
    """
    limit = MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    try:
        data = np.fromfile(os.fspath(path), dtype=np.uint8)
    except OSError as exc:
        logger.debug("cannot read %s: %s", path, exc)
        return None
    header = read_header(data)
    if header is not None and header.pixels > limit:
        return to_bgr8(_decode_reduced(data, header, limit, os.fspath(path)))
    return to_bgr8(decode_image(data))


def _decode_reduced(buf: np.ndarray, header: ImageHeader, limit: int,
                    path: str) -> np.ndarray | None:
    size = f"{header.width}x{header.height}"
    megapixels = header.pixels / 1e6
    if header.format == "jpeg":
        for factor, flag in _REDUCED_JPEG:
            if math.ceil(header.width / factor) * math.ceil(header.height / factor) <= limit:
                try:
                    image = cv2.imdecode(buf, flag)
                except cv2.error as exc:
                    logger.debug("OpenCV could not decode %s reduced: %s", path, exc)
                    return None
                if image is not None:
                    logger.warning("%s is %s (%.0f megapixels, over the %g read at full size): "
                                   "read at 1/%d size, %dx%d", path, size, megapixels,
                                   limit / 1e6, factor, image.shape[1], image.shape[0])
                return image
    depth = f", {8 * header.sample_bytes}-bit" if header.sample_bytes > 1 else ""
    gigabytes = header.decoded_bytes / 1e9
    raise ImageTooLargeError(
        f"image {path!r} is {size} pixels ({megapixels:,.0f} megapixels{depth}): decoding it "
        f"would take about {gigabytes:.1f} GB of memory, and sonify reads pictures of up to "
        f"{limit / 1e6:g} megapixels (larger JPEGs at a reduced size); scale it down first, "
        f"e.g. `vipsthumbnail IMAGE --size 8000` or an image editor, or save it as JPEG")


def read_header(data: np.ndarray | bytes) -> ImageHeader | None:
    """The size a picture's header states (PNG, JPEG, WebP, BMP, TIFF, PNM), without decoding;
    None for another format or a header that cannot be parsed."""
    buf = data.tobytes() if isinstance(data, np.ndarray) else bytes(data)
    try:
        if buf.startswith(b"\x89PNG\r\n\x1a\n"):
            return _png_header(buf)
        if buf.startswith(_JPEG_MAGIC):
            return _jpeg_header(buf)
        if buf[:4] == b"RIFF" and buf[8:12] == b"WEBP":
            return _webp_header(buf)
        if buf[:2] == b"BM":
            width, height = struct.unpack_from("<ii", buf, 18)
            bits = struct.unpack_from("<H", buf, 28)[0]
            return ImageHeader("bmp", abs(width), abs(height), 4 if bits == 32 else 3)
        if buf[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_header(buf)
        if buf[:1] == b"P" and buf[1:2] in b"123456" and len(buf) > 2:
            return _pnm_header(buf)
    except (struct.error, ValueError, IndexError):
        return None
    return None


def _png_header(buf: bytes) -> ImageHeader | None:
    if buf[12:16] != b"IHDR":
        return None
    width, height, depth, colour = struct.unpack_from(">IIBB", buf, 16)
    channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(colour, 4)
    return ImageHeader("png", width, height, channels, 2 if depth == 16 else 1)


def _jpeg_header(buf: bytes) -> ImageHeader | None:
    pos = 2
    while pos + 4 <= len(buf):
        if buf[pos] != 0xFF:
            return None
        marker = buf[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):  # markers without a length
            pos += 2
            continue
        length = struct.unpack_from(">H", buf, pos + 2)[0]
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE,
                      0xCF):
            precision, height, width, components = struct.unpack_from(">BHHB", buf, pos + 4)
            return ImageHeader("jpeg", width, height, 3 if components >= 3 else 1,
                               2 if precision > 8 else 1)
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before
            return None
        pos += 2 + length
    return None


def _webp_header(buf: bytes) -> ImageHeader | None:
    chunk = buf[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack_from("<HH", buf, 26)
        return ImageHeader("webp", width & 0x3FFF, height & 0x3FFF, 3)
    if chunk == b"VP8L":
        bits = struct.unpack_from("<I", buf, 21)[0]
        return ImageHeader("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, 4)
    if chunk == b"VP8X":
        width = int.from_bytes(buf[24:27], "little") + 1
        height = int.from_bytes(buf[27:30], "little") + 1
        return ImageHeader("webp", width, height, 4)
    return None


def _tiff_header(buf: bytes) -> ImageHeader | None:
    order = "<" if buf[:2] == b"II" else ">"
    offset = struct.unpack_from(order + "I", buf, 4)[0]
    count = struct.unpack_from(order + "H", buf, offset)[0]
    tags: dict[int, int] = {}
    for i in range(count):
        tag, kind, n = struct.unpack_from(order + "HHI", buf, offset + 2 + 12 * i)
        at = offset + 2 + 12 * i + 8
        if kind == 3:  # SHORT: the first value is inline, or (n > 2) at an offset
            first_at = at if n <= 2 else struct.unpack_from(order + "I", buf, at)[0]
            tags[tag] = struct.unpack_from(order + "H", buf, first_at)[0]
        elif kind == 4:  # LONG
            first_at = at if n <= 1 else struct.unpack_from(order + "I", buf, at)[0]
            tags[tag] = struct.unpack_from(order + "I", buf, first_at)[0]
    if 256 not in tags or 257 not in tags:
        return None
    bits = tags.get(258, 8)
    return ImageHeader("tiff", tags[256], tags[257], tags.get(277, 1), max(1, bits // 8))


def _pnm_header(buf: bytes) -> ImageHeader | None:
    kind = buf[1:2]
    fields: list[int] = []
    want = 2 if kind in (b"1", b"4") else 3
    for line in buf[2:4096].split(b"\n"):
        line = line.split(b"#", 1)[0]
        fields += [int(f) for f in line.split()]
        if len(fields) >= want:
            break
    if len(fields) < 2:
        return None
    maxval = fields[2] if want == 3 and len(fields) > 2 else 1
    channels = 3 if kind in (b"3", b"6") else 1
    return ImageHeader("pnm", fields[0], fields[1], channels, 2 if maxval > 255 else 1)


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
        # A table lookup in row blocks: no full-size wider temporaries on a big 16-bit picture.
        out = np.empty(image.shape, np.uint8)
        rows = max(1, _CHUNK_ELEMENTS // max(1, image[0].size))
        for start in range(0, image.shape[0], rows):
            out[start:start + rows] = _U16_TO_U8[image[start:start + rows]]
        return out
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
