"""Child rows of claims (lines, diagnoses, prescriptions, dispensings) find the version of their
statement delivered with them: the same statement id in the same delivery, whatever the number
of deliveries in a run's window."""

from __future__ import annotations

import polars as pl

from pipelines.transform.claims import _with_statement


def test_each_child_row_joins_the_statement_version_of_its_own_delivery() -> None:
    heads = pl.DataFrame(
        {
            "spec_id": ["S1", "S1", "S2"],
            "delivery_id": ["202503", "202503-fix", "202503"],
            "citizen_key": ["Ca", "Cb", "Cc"],
        }
    )
    rows = pl.DataFrame(
        {
            "SPEC_ID_SNO": ["S1", "S1", "S2", "S2", "S3"],
            "_delivery_id": ["202503", "202503-fix", "202503-fix", "202503", "202503"],
            "LN_NO": ["1", "2", "3", "4", "5"],
        }
    )
    joined = _with_statement(rows, heads).sort("LN_NO")
    # S2 was not re-delivered in the correction, and S3 was never delivered: no statement.
    assert joined["citizen_key"].to_list() == ["Ca", "Cb", None, "Cc", None]
    assert joined.columns == ["SPEC_ID_SNO", "_delivery_id", "LN_NO", "citizen_key"]
    one = _with_statement(rows.filter(pl.col("_delivery_id") == "202503"), heads).sort("LN_NO")
    assert one["citizen_key"].to_list() == ["Ca", "Cc", None]
    empty = _with_statement(rows.clear(), heads)
    assert empty.height == 0 and empty.columns == joined.columns
