"""The DICOM object store: every original file the clinics upload, kept exactly, encrypted at rest.

Originals live beside the tables, under ``<LAKEHOUSE_URI>/objects/dicom/<StudyInstanceUID>/
<SeriesInstanceUID>/<SOPInstanceUID>.dcm``, so a study is one folder and a series one sub-folder.
Why encrypt: a DICOM header carries the patient's name, birth date and, in Korea, the resident
registration number as PatientID. The tables never hold them (pseudonymised at ingestion), and the
files must not be the way round that. Each object is AES-256-GCM (the maintained ``cryptography``
package) under a key that lives outside the lakehouse (``GJH_OBJECT_KEY`` hex, or
``<GJH_SECRETS_DIR>/objects.key``), with the object's own key as associated data, so a file
copied to another study's place does not decrypt. Decrypted bytes are the uploaded bytes: the
SHA-256 recorded in ``silver.imaging_instances`` is of the original, and ``get`` returns it.

Objects are written once and never modified: ``put`` leaves an existing object alone. Everything
that reads an original (scoring, the viewer, research copies) goes through ``get``.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pydicom
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

if TYPE_CHECKING:
    import pyarrow.fs as pafs

from lakehouse.config import (
    MissingKeyError,
    is_remote,
    lakehouse_uri,
    secrets_dir,
    write_secret,
)

KEY_FILE: Final = "objects.key"
PREFIX: Final = "objects/dicom"
MAGIC: Final = b"GJHD1"
NONCE: Final = 12
# A DICOM UID: digits in dot-separated components, at most 64 characters (PS3.5 9.1). Checked
# before a UID becomes part of a path, so no header can name a path outside the store.
UID_PATTERN: Final = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_NEW: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL


class ObjectStoreError(RuntimeError):
    """An object is missing, or does not decrypt (wrong key, or moved or altered)."""


def is_uid(value: str | None) -> bool:
    """Whether ``value`` is a well-formed DICOM UID."""
    return bool(value) and len(value or "") <= 64 and UID_PATTERN.match(value or "") is not None


def key_path() -> Path:
    return secrets_dir() / KEY_FILE


def create_key(path: Path | None = None) -> Path:
    """Write a new random 256-bit key file (mode 600) unless one exists; return its path."""
    return write_secret(path or key_path(), secrets.token_hex(32))


@cache
def _cipher() -> tuple[AESGCM, bytes]:
    value = os.environ.get("GJH_OBJECT_KEY", "")
    if not value:
        path = key_path()
        if not path.exists():
            raise MissingKeyError(
                f"no object-store key: set GJH_OBJECT_KEY or create {path} (`gjh keys`)"
            )
        value = path.read_text(encoding="ascii").strip()
    key = bytes.fromhex(value)
    if len(key) != 32:
        raise MissingKeyError("the object-store key must be 256 bits (64 hex characters)")
    return AESGCM(key), hashlib.sha256(key).hexdigest()[:8].encode("ascii")


def reset_key_cache() -> None:
    """Forget the loaded key (tests switch keys between runs)."""
    _cipher.cache_clear()


def check_key() -> None:
    """Raise ``MissingKeyError`` now, before a run starts, if no usable key is configured."""
    _cipher()


def object_key(study_uid: str, series_uid: str, sop_uid: str) -> str:
    """Where an instance lives, relative to the lakehouse root (what the tables record)."""
    for uid in (study_uid, series_uid, sop_uid):
        if not is_uid(uid):
            raise ValueError(f"not a DICOM UID: {uid!r}")
    return f"{PREFIX}/{study_uid}/{series_uid}/{sop_uid}.dcm"


def _encrypt(key: str, data: bytes) -> bytes:
    cipher, key_id = _cipher()
    nonce = secrets.token_bytes(NONCE)
    return MAGIC + key_id + nonce + cipher.encrypt(nonce, data, key.encode("ascii"))


def _decrypt(key: str, blob: bytes) -> bytes:
    cipher, key_id = _cipher()
    head = len(MAGIC) + len(key_id)
    if blob[: len(MAGIC)] != MAGIC:
        raise ObjectStoreError(f"{key} is not a stored object")
    if blob[len(MAGIC) : head] != key_id:
        raise ObjectStoreError(f"{key} was stored under another key ({blob[5:13].decode()})")
    nonce = blob[head : head + NONCE]
    try:
        return cipher.decrypt(nonce, blob[head + NONCE :], key.encode("ascii"))
    except Exception as error:  # cryptography raises InvalidTag without a message
        raise ObjectStoreError(f"{key} does not decrypt: altered, or moved here") from error


def _not_found() -> pafs.FileType:
    import pyarrow.fs as pafs

    return pafs.FileType.NotFound


def _remote() -> tuple[pafs.FileSystem, str] | None:
    root = lakehouse_uri()
    if not is_remote(root):
        return None
    import pyarrow.fs as pafs  # only for a remote store: scoring workers start faster without

    # Arrow's AWS SDK otherwise sends every upload's part with a trailing CRC checksum
    # (aws-chunked, no Content-Length), which S3-compatible servers that predate it refuse:
    # Ceph radosgw 16 answers 411 MissingContentLength. A deployment's own setting wins.
    os.environ.setdefault("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    fs, path = pafs.FileSystem.from_uri(root)
    return fs, path


def put(key: str, data: bytes, replace: bool = False) -> bool:
    """Store an original under ``key`` unless it is there already; True when written.

    Local objects are written to a temporary name, made read-only and linked into place, so a
    reader never sees half an object and, of two processes storing the same key at once, exactly
    one wins. ``replace`` is for the indexer alone: it overwrites an object that no table refers
    to yet (one a losing duplicate stored first, see ``pipelines.ingest.imaging``).
    """
    blob = _encrypt(key, data)
    remote = _remote()
    if remote is not None:
        fs, root = remote
        target = f"{root}/{key}"
        if not replace and fs.get_file_info(target).type != _not_found():
            return False
        fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        with fs.open_output_stream(target) as out:
            out.write(blob)
        return True
    path = Path(lakehouse_uri()) / key
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    # Created read-only: the descriptor opened here may still write it, nobody else can. No
    # look before (does the object or its folder exist?): the link below refuses an existing
    # name anyway, and a new folder shows as the open failing. A drop's files mostly go to
    # series folders that exist already and to keys that do not (issue 23: the two checks
    # were a sixth of the store's time per file).
    try:
        fd = os.open(partial, _NEW, 0o444)
    except FileNotFoundError:  # the series' first object
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(partial, _NEW, 0o444)
    with os.fdopen(fd, "wb") as out:
        out.write(blob)
    if replace:
        partial.replace(path)
        return True
    try:
        os.link(partial, path)  # fails if the name exists: never overwrites
    except FileExistsError:
        return False
    finally:
        partial.unlink()
    return True


def remove(key: str) -> None:
    """Delete an object no table refers to (the indexer's clean-up of a rejected file)."""
    remote = _remote()
    if remote is not None:
        fs, root = remote
        fs.delete_file(f"{root}/{key}")
        return
    (Path(lakehouse_uri()) / key).unlink(missing_ok=True)


def exists(key: str) -> bool:
    remote = _remote()
    if remote is not None:
        fs, root = remote
        return bool(fs.get_file_info(f"{root}/{key}").type != _not_found())
    return (Path(lakehouse_uri()) / key).exists()


def get(key: str) -> bytes:
    """The original bytes of a stored instance."""
    remote = _remote()
    try:
        if remote is not None:
            fs, root = remote
            with fs.open_input_stream(f"{root}/{key}") as stream:
                blob = stream.read()
        else:
            blob = (Path(lakehouse_uri()) / key).read_bytes()
    except (FileNotFoundError, OSError) as error:
        raise ObjectStoreError(f"no stored object {key}") from error
    return _decrypt(key, blob)


def dataset(key: str, stop_before_pixels: bool = False) -> pydicom.Dataset:
    """A stored instance read with pydicom (pixels decoded lazily, as pydicom does)."""
    return pydicom.dcmread(io.BytesIO(get(key)), stop_before_pixels=stop_before_pixels)
