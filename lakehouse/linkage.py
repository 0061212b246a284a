"""Linkage tokens: how a hospital partner's patients are matched to the city's citizens.

A partner never sends resident registration numbers. It sends, beside its OMOP extract,
``linkage.csv`` (``person_id,token``), where the token is

    token = lowercase hex( HMAC-SHA-256( linkage key, ASCII bytes of the normalised number ) )

and the platform computes the same token for its own citizens at the bronze boundary
(``vault.linkage``), so equal tokens are the same person. The exact algorithm, with a test
vector any HMAC tool reproduces, is in ``docs/partners.md``; a partner may also run
``gjh partner tokens``.

The linkage key is not the platform's pseudonymisation key (``lakehouse.pseudonym``): that one
never leaves the city, while the linkage key is shared with the partner (in Korea a designated
combination agency plays this role), so a partner holding it learns nothing about citizen keys.
It comes from ``GJH_LINKAGE_KEY`` (hex) or ``<GJH_SECRETS_DIR>/linkage.key``, a text file holding
the key in hexadecimal (at least 32 hex digits, 128 bits; the demo's has 64). Without the key a
token cannot be linked back to a number by enumerating the small space of valid numbers, which
is why a keyed hash and not a plain SHA-256 is used. Tokens are pseudonymous data: kept as they
are (like citizen keys), never with the number they were made from.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import os
import re
import secrets
from functools import cache
from pathlib import Path
from typing import Final

import polars as pl

from lakehouse.config import MissingKeyError, secrets_dir, write_secret

KEY_FILE: Final = "linkage.key"
KEY_BYTES: Final = 32
MIN_KEY_BYTES: Final = 16
# A token's shape: 64 lowercase hex digits (the whole HMAC-SHA-256, nothing truncated).
TOKEN_PATTERN: Final = r"^[0-9a-f]{64}$"
TOKEN: Final = re.compile(TOKEN_PATTERN)
# Normalisation removes exactly these characters: ASCII hyphen-minus, space and horizontal tab.
_SEPARATORS: Final = re.compile("[- \t]")
_DIGITS: Final = re.compile("[0-9]{13}")


class MalformedNumberError(ValueError):
    """A registration number that does not normalise to 13 ASCII digits. The message never
    repeats the number."""


def key_path() -> Path:
    return secrets_dir() / KEY_FILE


def create_key(path: Path | None = None) -> Path:
    """Write a new random linkage key file (64 hex digits, mode 600) unless one exists; return
    its path. The demo makes its key this way; a real deployment receives it from the
    combination agency and hands the partner its copy out of band."""
    return write_secret(path or key_path(), secrets.token_hex(KEY_BYTES))


def read_key(path: Path) -> bytes:
    """The key held in a key file: its text, whitespace trimmed, read as hexadecimal.

    Raises:
        MissingKeyError: no such file, not hexadecimal, or shorter than 128 bits.
    """
    if not path.is_file():
        raise MissingKeyError(f"no linkage key file at {path}")
    return _parse(path.read_text(encoding="ascii").strip(), str(path))


def _parse(value: str, where: str) -> bytes:
    try:
        key = bytes.fromhex(value)
    except ValueError:
        raise MissingKeyError(f"the linkage key in {where} is not hexadecimal") from None
    if len(key) < MIN_KEY_BYTES:
        raise MissingKeyError(f"the linkage key in {where} is shorter than 128 bits")
    return key


@cache
def _key() -> bytes:
    value = os.environ.get("GJH_LINKAGE_KEY")
    if value:
        return _parse(value.strip(), "GJH_LINKAGE_KEY")
    path = key_path()
    if not path.exists():
        raise MissingKeyError(
            f"no linkage key: set GJH_LINKAGE_KEY or create {path} (`gjh keys` makes one)"
        )
    return read_key(path)


def has_key() -> bool:
    """Whether a linkage key is configured (a city with no partners need not have one)."""
    try:
        _key()
    except MissingKeyError:
        return False
    return True


def reset_key_cache() -> None:
    """Forget the loaded key (tests switch keys between runs)."""
    _key.cache_clear()


def key_id(key: bytes | None = None) -> str:
    """A short fingerprint of the key (first 8 hex digits of its SHA-256), stored beside each
    token so a rotated key's tokens are told apart."""
    return hashlib.sha256(key if key is not None else _key()).hexdigest()[:8]


def normalise(number: str) -> str:
    """A registration number as the token hashes it: hyphens, spaces and tabs removed; what is
    left must be exactly 13 ASCII digits (``900101-1234568`` -> ``9001011234568``).

    Raises:
        MalformedNumberError: anything else (other characters, another length).
    """
    digits = _SEPARATORS.sub("", number)
    if not _DIGITS.fullmatch(digits):
        raise MalformedNumberError("not 13 digits after removing hyphens and spaces")
    return digits


def token(number: str, key: bytes | None = None) -> str:
    """The linkage token of one registration number (under ``key``, default the configured
    linkage key)."""
    return hmac.new(
        key if key is not None else _key(), normalise(number).encode("ascii"), hashlib.sha256
    ).hexdigest()


def tokens(numbers: pl.Series, key: bytes | None = None) -> pl.Series:
    """Tokens for a column of registration numbers, each distinct number hashed once; nulls and
    numbers that do not normalise become null (the city's own register is checked elsewhere)."""
    secret = key if key is not None else _key()
    digits = numbers.cast(pl.Utf8).str.replace_all("[- \t]", "")
    distinct = [d for d in digits.drop_nulls().unique().to_list() if _DIGITS.fullmatch(d)]
    found = {d: hmac.new(secret, d.encode("ascii"), hashlib.sha256).hexdigest() for d in distinct}
    return digits.replace_strict(found, default=None, return_dtype=pl.Utf8).alias(numbers.name)


def is_token(value: object) -> bool:
    """Whether ``value`` has a token's exact shape."""
    return isinstance(value, str) and TOKEN.fullmatch(value) is not None


def citizen_tokens(numbers: pl.Series) -> pl.DataFrame:
    """``vault.linkage`` rows for a column of the register's registration numbers: each
    citizen's key and token, made at the bronze boundary, where the number is seen; the number
    itself is not returned."""
    from lakehouse.pseudonym import pseudonymise

    digits = numbers.cast(pl.Utf8).str.replace_all("[- \t]", "")
    distinct = digits.drop_nulls().unique(maintain_order=True)
    frame = pl.DataFrame(
        {"citizen_key": pseudonymise(distinct), "token": tokens(distinct)}
    ).drop_nulls()
    return frame.with_columns(pl.lit(key_id()).alias("key_id"))


def linkage_csv(text: str, key: bytes) -> str:
    """What ``gjh partner tokens`` writes for its input: a partner's numbers as tokens.

    The input is either one registration number per line (no header; the output is a ``token``
    column in the same order) or a CSV whose header holds ``number`` (any case), and optionally
    ``person_id``: the output is then ``person_id,token``, the ``linkage.csv`` a partner sends
    with its extract. Blank lines are ignored. The whole input is checked before anything is
    returned, so a malformed number leaves no partial output.

    Raises:
        MalformedNumberError: naming the line (1-based) of the first number that does not
            normalise, never the number itself.
    """
    rows = [(i, r) for i, r in enumerate(csv.reader(io.StringIO(text)), start=1) if any(r)]
    header = [c.strip().lower() for c in rows[0][1]] if rows else []
    if "number" in header:
        width, number, body = len(header), header.index("number"), rows[1:]
        person = header.index("person_id") if "person_id" in header else None
    else:
        width, number, person, body = 1, 0, None, rows
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["person_id", "token"] if person is not None else ["token"])
    for line, row in body:
        if len(row) != width:
            raise MalformedNumberError(f"line {line}: {len(row)} fields where {width} expected")
        try:
            value = token(row[number], key)
        except MalformedNumberError as exc:
            raise MalformedNumberError(f"line {line}: {exc}") from None
        writer.writerow([row[person].strip(), value] if person is not None else [value])
    return out.getvalue()
