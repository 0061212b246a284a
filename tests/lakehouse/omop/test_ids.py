"""``lakehouse.omop.ids``: a column's ids are ``row_id``'s, whichever way the column is hashed
(in Python for a few rows, in DuckDB for many)."""

from __future__ import annotations

import polars as pl
import pytest

from lakehouse.omop import ids


@pytest.mark.parametrize("small", [0, 10_000])
def test_a_column_hashes_to_row_id_either_way(small: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ids, "SMALL", small)
    keys = [f"C{i:032x}" for i in range(300)]
    got = ids.with_person_id(pl.DataFrame({"citizen_key": keys}))["person_id"].to_list()
    assert got == [ids.person_id(k) for k in keys]
    assert ids.with_id(pl.DataFrame({"k": ["a", None]}), "id", "visit", "k")["id"].to_list() == [
        ids.row_id("visit", "a"),
        ids.row_id("visit", None),
    ]
