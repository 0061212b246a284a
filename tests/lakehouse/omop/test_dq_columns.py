"""``lakehouse.omop.dq``: one evaluation reads each table's columns once, not once per check
(each read opens the Delta table: about 800 openings of the log per run before)."""

from __future__ import annotations

from datetime import date

import pytest

from lakehouse.catalog import table as catalog_table
from lakehouse.omop import dq


def test_a_tables_columns_are_read_once_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def columns(name: str) -> set[str]:
        calls.append(name)
        return set(catalog_table(name).names)

    monkeypatch.setattr(dq, "_columns", columns)
    run = dq._Run(present={"omop.person"}, today=date(2025, 3, 1))
    checks = [c for c in dq.generate() if c.table == "person" and c.level == "FIELD"]
    assert len(checks) > 5
    for i, check in enumerate(checks):
        run.decide(i, check)
    assert calls == ["omop.person"]
