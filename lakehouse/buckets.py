"""Key buckets: which partition of a citizen-keyed gold table holds one citizen's rows.

Gold tables that the apps read one citizen at a time (``gold.citizen_timeline``) are partitioned
by ``key_bucket``, so a citizen's whole history is one partition read instead of a scan of every
file. The writer (``pipelines``) and the readers (the access layer, the apps) must agree on the
bucket of a key forever, so the rule lives here, once, in three spellings that give the same
answer: Python, Polars and SQL (DuckDB and delta-rs predicates).

The rule: **the first two hexadecimal digits after the leading ``C`` of the citizen key, read as
an integer (0-255), modulo 64**. A citizen key is ``C`` + 32 hex digits of a keyed HMAC-SHA256
(``lakehouse.pseudonym``), so those digits are already uniformly distributed: no further hashing
is needed, and none is used, because library hash functions (Polars' ``hash``, Python's
``hash``) are not stable across versions or processes. Changing ``BUCKETS`` or the rule means
rewriting every bucketed table.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from lakehouse.pseudonym import is_citizen_key

BUCKETS: Final = 64


def key_bucket(citizen_key: str) -> int:
    """The bucket (0-63) of one citizen key.

    Args:
        citizen_key: A citizen key as the lakehouse stores it (``C`` + 32 lowercase hex digits).

    Raises:
        ValueError: ``citizen_key`` is not a citizen key (a registration number or a typo must
            never be silently mapped to some partition).
    """
    if not is_citizen_key(citizen_key):
        raise ValueError("not a citizen key")
    return int(citizen_key[1:3], 16) % BUCKETS


def key_bucket_expr(column: str = "citizen_key") -> pl.Expr:
    """The same rule as a Polars expression over a column of citizen keys."""
    # Not strict: a reader may evaluate it on statistics or on keys a filter beside it drops.
    digits = pl.col(column).str.slice(1, 2).str.to_integer(base=16, strict=False)
    return (digits % BUCKETS).cast(pl.Int64)


def key_bucket_sql(column: str = "citizen_key") -> str:
    """The same rule as a SQL expression (DuckDB), for readers that query through SQL."""
    return f"(('0x' || substr({column}, 2, 2))::INTEGER % {BUCKETS})"


def bucket_predicate(citizen_key: str) -> str:
    """A predicate selecting one citizen's partition, e.g. ``key_bucket = 17`` (for
    ``lakehouse.read`` filters or delta-rs partition filters)."""
    return f"key_bucket = {key_bucket(citizen_key)}"
