"""A PNG data URI written with numpy and zlib: the browser gets one compressed string instead of
a JSON list of every pixel."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Final

import numpy as np
from numpy.typing import NDArray

PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_uri(image: NDArray[np.uint8]) -> str:
    """A PNG data URI of a grey or RGB uint8 array, lossless.

    Written here (PNG is a header, zlib data and CRCs) rather than through Pillow, which only
    arrives with Streamlit and tries every row filter: one "Up" filter computed by numpy and
    zlib at level 1 encode a 512 x 512 RGB image about twice as fast, a few per cent larger.
    """
    picture = np.ascontiguousarray(image, dtype=np.uint8)
    if picture.ndim not in (2, 3) or (picture.ndim == 3 and picture.shape[2] != 3):
        raise ValueError(f"a grey or RGB image is needed; this one has shape {picture.shape}")
    rows, columns = picture.shape[:2]
    lines = picture.reshape(rows, -1)
    filtered = np.empty((rows, lines.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = 2  # filter type Up: each byte minus the one above (mod 256)
    filtered[0, 1:] = lines[0]
    np.subtract(lines[1:], lines[:-1], out=filtered[1:, 1:])
    colour_type = 0 if picture.ndim == 2 else 2
    header = struct.pack(">IIBBBBB", columns, rows, 8, colour_type, 0, 0, 0)
    data = (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(filtered.tobytes(), 1))
        + _chunk(b"IEND", b"")
    )
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")
