"""Stable OMOP ids: the same source row gets the same id in every build, process and month.

An id is the first 8 bytes of SHA-256 over a namespaced text, read as a big-endian unsigned
integer and shifted right by one bit, so it is a positive 63-bit integer (the CDM's ``integer``
fields are ``bigint`` here). The text is ``gjh-omop``, the kind of row and the row's source key
parts, joined by the unit separator (U+001F, which no key holds)::

    person_id("C3f…")              = sha256("gjh-omop␟person␟C3f…")[:8] >> 1
    row_id("visit", "20250100012") = sha256("gjh-omop␟visit␟20250100012")[:8] >> 1

Never sequential: a rebuild, a re-delivered month or a new partner extract gives every row the
id it had. SHA-256 is a published standard, so anyone can recompute an id from its key
(``pl.Expr.hash`` is not: its value changes between Polars versions). Two rows of a table could
in principle share an id: for n rows the chance is about n²/2^64 (1 in 18 million for a million
rows, 1 in 1,800 for a hundred million); the key checks of the omop tables would report it.

For frames, ``with_id`` hashes a whole column at once in DuckDB (``sha256`` is the same standard
function), never row by row in Python; only a column of a few rows (the nightly refresh of the
handful of citizens a day touched) is hashed by ``hashlib``, where opening a DuckDB connection
would cost more than the hashing.
"""

from __future__ import annotations

import hashlib
from typing import Final

import duckdb
import polars as pl

NAMESPACE: Final = "gjh-omop"
SEPARATOR: Final = "\x1f"
PERSON: Final = "person"
# Up to this many texts are hashed in Python (about a millisecond): a DuckDB connection costs
# tens of milliseconds to open, and a nightly refresh makes hundreds of small calls.
SMALL: Final = 2_048


def _text(kind: str, parts: tuple[object, ...]) -> str:
    return SEPARATOR.join((NAMESPACE, kind, *("" if p is None else str(p) for p in parts)))


def row_id(kind: str, *parts: object) -> int:
    """The id of one row of ``kind`` (``visit``, ``condition``…) from its source key parts
    (text, integers or dates: what ``str`` gives; None counts as the empty text)."""
    digest = hashlib.sha256(_text(kind, parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def person_id(citizen_key: str) -> int:
    """The OMOP ``person_id`` of a citizen key (the same as ``row_id("person", key)``)."""
    return row_id(PERSON, citizen_key)


def key_text(kind: str, *parts: str | pl.Expr) -> pl.Expr:
    """The namespaced text ``row_id`` hashes, as a Polars expression over columns (names or
    expressions; integers and dates cast to text as ``str`` writes them, nulls as "")."""
    exprs = [(pl.col(p) if isinstance(p, str) else p).cast(pl.Utf8).fill_null("") for p in parts]
    return pl.concat_str([pl.lit(NAMESPACE), pl.lit(kind), *exprs], separator=SEPARATOR)


def hash_texts(texts: pl.Series) -> pl.Series:
    """``row_id``'s hash of every text of a column, in order, computed by DuckDB's ``sha256``
    (vectorised, multi-threaded; the same digest as ``hashlib``)."""
    if texts.len() <= SMALL:
        return pl.Series(
            texts.name,
            [
                int.from_bytes(hashlib.sha256(t.encode("utf-8")).digest()[:8], "big") >> 1
                for t in texts.cast(pl.Utf8).to_list()
            ],
            dtype=pl.Int64,
        )
    frame = pl.DataFrame({"t": texts.cast(pl.Utf8)})
    with duckdb.connect() as con:
        con.execute("SET enable_progress_bar = false")
        con.register("texts", frame.to_arrow())
        out = con.execute(
            "SELECT ((('0x' || left(sha256(t), 16))::UBIGINT) >> 1)::BIGINT AS id FROM texts"
        ).pl()
    return out["id"].rename(texts.name)


def with_id(frame: pl.DataFrame, name: str, kind: str, *parts: str | pl.Expr) -> pl.DataFrame:
    """``frame`` with a column ``name``: each row's ``row_id(kind, *parts)``."""
    if frame.height == 0:
        return frame.with_columns(pl.lit(None, pl.Int64).alias(name))
    texts = frame.select(key_text(kind, *parts).alias(name)).to_series()
    return frame.with_columns(hash_texts(texts).alias(name))


def with_person_id(frame: pl.DataFrame, key: str = "citizen_key") -> pl.DataFrame:
    """``frame`` with ``person_id`` from its citizen key column."""
    return with_id(frame, "person_id", PERSON, key)
