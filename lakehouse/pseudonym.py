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
import os
import re
import secrets
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Final

from lakehouse.config import MissingKeyError, secrets_dir, write_secret

if TYPE_CHECKING:
    import polars as pl

KEY_FILE: Final = "pseudonym.key"
KEY_BYTES: Final = 32
# A citizen key's shape, as ``citizen_key`` makes it: ``C`` + 32 lowercase hex digits. The one
# definition: the catalogue's column rule, the bucket of a key and the access layer's refusal of
# anything else all use it.
KEY_PATTERN: Final = r"^C[0-9a-f]{32}$"
KEY: Final = re.compile(KEY_PATTERN)
# A resident registration number as it appears in text: YYMMDD, optional hyphen, G and 6 digits.
RRN_PATTERN: Final = re.compile(r"(?<!\d)(\d{6})-?(\d{7})(?!\d)")


def key_path() -> Path:
    return secrets_dir() / KEY_FILE


def create_key(path: Path | None = None) -> Path:
    """Write a new random key file (mode 600) unless one exists; return its path. The demo and
    the tests use this; production sets ``GJH_PSEUDONYM_KEY`` from its secret store."""
    return write_secret(path or key_path(), secrets.token_hex(KEY_BYTES))


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


_NOT_DIGIT: Final = re.compile("[^0-9]")
_WHOLE_RRN: Final = re.compile(r"^\d{6}-?\d{7}$")


def normalise(rrn: str) -> str:
    """The 13 digits of a registration number, whatever its punctuation."""
    return _NOT_DIGIT.sub("", rrn)


class _Hmac:
    """HMAC-SHA256 (RFC 2104) under one key with its padded key blocks hashed once.

    A month of the city's statements hashes over a million distinct numbers; copying the two
    prepared SHA-256 states is about twice as fast as ``hmac.digest``, which prepares them for
    every message. The tests check it against ``hmac.digest`` byte for byte.
    """

    def __init__(self, key: bytes) -> None:
        block = hashlib.sha256().block_size
        if len(key) > block:
            key = hashlib.sha256(key).digest()
        key = key.ljust(block, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def hexdigest(self, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


@cache
def _hmac(key: bytes) -> _Hmac:
    return _Hmac(key)


def _hashed(digits: str, mac: _Hmac) -> str:
    return "C" + mac.hexdigest(digits.encode("ascii"))[:32]


def citizen_key(rrn: str) -> str:
    """The citizen key of one resident registration number."""
    return _hashed(normalise(rrn), _hmac(_key()))


def is_citizen_key(value: object) -> bool:
    """Whether ``value`` has a citizen key's exact shape (a guessed, typed or injected value does
    not, so it can be refused before any table is read)."""
    return isinstance(value, str) and KEY.fullmatch(value) is not None


def is_registration_number(value: str) -> bool:
    """Whether ``value`` is shaped like a registration number (13 digits, optional hyphen)."""
    return _WHOLE_RRN.match(value.strip()) is not None


def local_key(namespace: str, value: str) -> str:
    """The pseudonym of an identifier that is not a registration number, such as a clinic's own
    chart number in a DICOM PatientID: ``L`` + 128 bits of the keyed HMAC of the namespace (the
    institution) and the value, so one chart number at two clinics stays two people and the
    number itself never reaches a table."""
    return "L" + _hmac(_key()).hexdigest(f"{namespace}\0{value}".encode())[:32]


def pseudonymise(values: pl.Series) -> pl.Series:
    """Citizen keys for a column of registration numbers (nulls stay null).

    Punctuation is stripped in Polars and each distinct number is hashed once, so a city's month
    of statements costs one HMAC per person, not per row.
    """
    import polars as pl  # here only: the DICOM header workers import this module without Polars

    digits = values.cast(pl.Utf8).str.replace_all("[^0-9]", "")
    mac = _hmac(_key())
    distinct = digits.drop_nulls().unique()
    # Old and new values as two Series: a dict of a month's numbers would be made into two
    # Series again from Python objects.
    keys = pl.Series([_hashed(d, mac) for d in distinct.to_list()], dtype=pl.Utf8)
    return digits.replace_strict(distinct, keys, default=None, return_dtype=pl.Utf8).alias(
        values.name
    )


def scrub(text: str) -> str:
    """``text`` with every registration number in it replaced by its citizen key (quarantine
    payloads keep the record readable without the identifier)."""
    return RRN_PATTERN.sub(lambda m: citizen_key(m.group(1) + m.group(2)), text)
