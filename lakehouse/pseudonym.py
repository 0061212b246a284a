"""Pseudonymisation at the bronze boundary: resident registration numbers become citizen keys.

A citizen key is ``C`` + the first 128 bits of HMAC-SHA256(key, normalised number). The key lives
outside the lakehouse and the code: ``GJH_PSEUDONYM_KEY`` (hex), or the file
``<GJH_SECRETS_DIR>/pseudonym.key``. Korean law treats even hashed identifiers as personal data, so
an unkeyed hash would not do: without the key, a key cannot be linked back to a number by
enumerating the (small) space of valid numbers.

The same number gives the same key in every source (claims, DICOM, centre, app), which is what
lets the lakehouse join them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from functools import cache
from pathlib import Path
from typing import Final

import polars as pl

from lakehouse.config import secrets_dir

KEY_FILE: Final = "pseudonym.key"
KEY_BYTES: Final = 32
# A resident registration number as it appears in text: YYMMDD, optional hyphen, G and 6 digits.
RRN_PATTERN: Final = re.compile(r"(?<!\d)(\d{6})-?(\d{7})(?!\d)")


class MissingKeyError(RuntimeError):
    """No pseudonymisation key is configured."""


def key_path() -> Path:
    return secrets_dir() / KEY_FILE


def create_key(path: Path | None = None) -> Path:
    """Write a new random key file (mode 600) unless one exists; return its path. The demo and
    the tests use this; production sets ``GJH_PSEUDONYM_KEY`` from its secret store."""
    target = path or key_path()
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(secrets.token_hex(KEY_BYTES) + "\n", encoding="ascii")
        target.chmod(0o600)
    return target


@cache
def _key() -> bytes:
    value = os.environ.get("GJH_PSEUDONYM_KEY")
    if not value:
        path = key_path()
        if not path.exists():
            raise MissingKeyError(
                f"no pseudonymisation key: set GJH_PSEUDONYM_KEY or create {path} "
                "(`gjh keys` makes one for a demo)"
            )
        value = path.read_text(encoding="ascii").strip()
    key = bytes.fromhex(value)
    if len(key) < 16:
        raise MissingKeyError("the pseudonymisation key must be at least 128 bits")
    return key


def check_key() -> None:
    """Raise ``MissingKeyError`` now, before a run starts, if no usable key is configured."""
    _key()


def reset_key_cache() -> None:
    """Forget the loaded key (tests switch keys between runs)."""
    _key.cache_clear()


def normalise(rrn: str) -> str:
    """The 13 digits of a registration number, whatever its punctuation."""
    return "".join(ch for ch in rrn if ch.isdigit())


def citizen_key(rrn: str) -> str:
    """The citizen key of one resident registration number."""
    digest = hmac.new(_key(), normalise(rrn).encode("ascii"), hashlib.sha256).hexdigest()
    return "C" + digest[:32]


def pseudonymise(values: pl.Series) -> pl.Series:
    """Citizen keys for a column of registration numbers (nulls stay null); each distinct number
    is hashed once."""
    distinct = values.drop_nulls().unique()
    keys = {v: citizen_key(v) for v in distinct.to_list()}
    return values.replace_strict(keys, default=None, return_dtype=pl.Utf8).alias(values.name)


def scrub(text: str) -> str:
    """``text`` with every registration number in it replaced by its citizen key (quarantine
    payloads keep the record readable without the identifier)."""
    return RRN_PATTERN.sub(lambda m: citizen_key(m.group(1) + m.group(2)), text)
