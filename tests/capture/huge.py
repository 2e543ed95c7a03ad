"""Pictures whose header states a huge size, written in a few hundred bytes.

A real 16-bit 20000 x 20000 PNG would take 2.4 GB to build in memory and seconds to compress;
the reader must refuse it from the header alone, so a valid header and a first row of pixels
are all a test needs (a decoder that tried anyway would fail on the truncated data with a
different message, which the tests tell apart).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_huge_png(path: Path, width: int = 20000, height: int = 20000,
                   bit_depth: int = 16) -> Path:
    """An RGB PNG of ``width`` x ``height`` at ``bit_depth`` whose data holds one row only."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, 2, 0, 0, 0)
    row = b"\x00" + bytes(width * 3 * bit_depth // 8)  # filter byte + one row of black
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
                     + _chunk(b"IDAT", zlib.compress(row)) + _chunk(b"IEND", b""))
    return path
