"""``gjh dq``: the checks run now over hand-built omop tables, recorded, and reported per Kahn
category and level with the failed checks and their explanations; the exit status is 1 only
when a fatal check fails."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from apps.common.i18n import t
from gjh.cli import main
from lakehouse import read as lake
from lakehouse.catalog.dq import RESULTS
from lakehouse.omop import dq
from tests.lakehouse.omop.test_dq import clean, write

pytestmark = pytest.mark.usefixtures("lakehouse")


@pytest.fixture
def lakehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LAKEHOUSE_URI", str(tmp_path / "lakehouse"))
    return tmp_path / "lakehouse"


def _summary_line(out: str, category: str, level: str) -> list[int]:
    found = re.search(rf"^  {category}\s+{level}\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", out, re.M)
    assert found, out
    return [int(g) for g in found.groups()]


def test_gjh_dq_reports_per_category_and_level_and_explains_failures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = clean()
    for r in rows["condition_occurrence"]:
        r["condition_concept_id"] = 0  # no KCD mapping shipped: an expected failure
    write(rows)
    assert main(["dq"]) == 0  # no fatal check failed
    out = capsys.readouterr().out
    recorded = lake.frame(RESULTS)
    assert f"gjh dq: {recorded.height} checks" in out
    expected = dq.summary(recorded)
    for c in expected.iter_rows(named=True):
        counts = _summary_line(out, c["category"], c["level"])
        assert counts == [c["run"], c["passed"], c["failed"], c["not_applicable"]]
    assert expected["failed"].sum() >= 2 and expected["not_applicable"].sum() > 0
    assert _summary_line(out, "Completeness", "FIELD")[2] >= 2
    check = "standardconceptrecordcompleteness_condition_occurrence_condition_concept_id"
    line = next(x for x in out.splitlines() if x.strip().startswith(check))
    assert "3 of 3 failing (100.00 % > 5 %)" in line
    assert t("dq.explanation.kcd_not_mapped", "en") in line


def test_gjh_dq_exits_1_when_a_fatal_check_fails(capsys: pytest.CaptureFixture[str]) -> None:
    rows = clean()
    rows["person"].append({**rows["person"][0]})  # a duplicate person_id: fatal
    write(rows)
    assert main(["dq"]) == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "isprimarykey_person_person_id" in x)
    assert "(fatal): 2 of 4 failing" in line and line.endswith("unexpected")
    # Fatal failures are listed first.
    failed = out.split("failed checks:", 1)[1].splitlines()[1:]
    severities = [re.search(r"\((\w+)\)", x).group(1) for x in failed]  # type: ignore[union-attr]
    assert severities == sorted(severities, key=lambda s: s != "fatal")


def test_the_summary_has_every_category_and_level() -> None:
    write(clean())
    rows, _ = dq.run()
    found = dq.summary(rows)
    assert found.height == 9
    assert found.select(pl.sum("run") + pl.sum("not_applicable")).item() == rows.height
    assert found.filter(pl.col("level") == "CONCEPT")["run"].sum() == 2  # gender and units
