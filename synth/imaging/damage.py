"""File-level faults of imaging uploads: truncated and corrupt DICOM, stray non-DICOM files.

Each reproduces a real failure: an upload interrupted part-way, a damaged first sector that wipes
the preamble and file meta, and the odd file a clinic's export folder picks up (a Windows
thumbnail cache, a referral PDF, a transfer list in CP949). None of them loads as a complete DICOM
object: the truncated ones lose their pixel data, the others are not Part 10 files at all.
"""

from __future__ import annotations

import numpy as np

PREAMBLE = 128  # the 'DICM' prefix follows the preamble


def truncate(data: bytes, rng: np.random.Generator) -> bytes:
    """Cut the file somewhere between 30 % and 90 % of its length (inside the pixel data or
    header), as an interrupted transfer leaves it."""
    return data[: int(len(data) * float(rng.uniform(0.3, 0.9)))]


def corrupt(data: bytes, rng: np.random.Generator) -> bytes:
    """Overwrite the 'DICM' prefix and the file meta with junk, as a bad sector leaves them;
    never the data set after the meta, so DICOM content still follows (what tells a damaged
    DICOM file from a file that is not DICOM at all)."""
    meta_end = PREAMBLE + 16 + int.from_bytes(data[PREAMBLE + 12 : PREAMBLE + 16], "little")
    span = min(int(rng.integers(64, 256)), meta_end - PREAMBLE)
    junk = bytearray(rng.integers(0, 256, span, dtype=np.uint8).tobytes())
    if junk[:4] == b"DICM":
        junk[0] ^= 0xFF
    return data[:PREAMBLE] + bytes(junk) + data[PREAMBLE + span :]


def stray(rng: np.random.Generator) -> tuple[str, bytes]:
    """A non-DICOM file that ends up in upload folders: (file name, content)."""
    kind = int(rng.integers(4))
    if kind == 0:
        ole = bytes.fromhex("d0cf11e0a1b11ae1")
        return "Thumbs.db", ole + rng.integers(0, 256, 2040, dtype=np.uint8).tobytes()
    if kind == 1:
        body = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
        return "report.pdf", body
    if kind == 2:
        return "전송목록.txt", "영상 전송 목록\r\n검사 1건 전송 완료\r\n".encode("cp949")
    return (
        "desktop.ini",
        b"[.ShellClassInfo]\r\nIconResource=C:\\Windows\\System32\\imageres.dll\r\n",
    )
