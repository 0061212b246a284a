"""Quality checks from the catalogue, evaluated on small real Delta tables: each check type
catches its violation, passes on clean data, and DATA_QUALITY.md is what the catalogue says."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from lakehouse import delta, quality
from lakehouse.catalog import TABLES

TODAY = date(2025, 6, 30)
ROOT = Path(__file__).resolve().parents[2]


def key(n: int) -> str:
    return f"C{n:032x}"


def citizens() -> list[dict[str, Any]]:
    base = {
        "sex": "F",
        "district_code": "24010",
        "dong_code": "2401001",
        "resident_from": date(2024, 1, 1),
        "resident_to": None,
        "arrival": "baseline",
        "departure": None,
        "died_on": None,
    }
    return [
        {**base, "citizen_key": key(1), "birth_year": 1950, "birth_month": 6},
        {**base, "citizen_key": key(2), "birth_year": 1988, "birth_month": 2, "sex": "M"},
        {
            **base,
            "citizen_key": key(3),
            "birth_year": 1940,
            "birth_month": 1,
            "resident_to": date(2025, 3, 10),
            "departure": "death",
            "died_on": date(2025, 3, 10),
        },
    ]


def institutions() -> list[dict[str, Any]]:
    base = {"class_code": "31", "district_code": "24010", "dong_code": None, "address": None}
    return [
        {**base, "ykiho": "11111111", "name": "A clinic"},
        {**base, "ykiho": "22222222", "name": "B pharmacy", "class_code": "81"},
    ]


def claims() -> list[dict[str, Any]]:
    base = {
        "ykiho": "11111111",
        "sex": "F",
        "age": 74,
        "insurance_type": "4",
        "form_type": "031",
        "class_code": "31",
        "department": "01",
        "main_dx": "E11.9",
        "sub_dx": None,
        "start_date": date(2025, 3, 3),
        "end_date": date(2025, 3, 3),
        "visit_days": 1,
        "total_amount": 20_000,
        "patient_amount": 6_000,
        "insurer_amount": 14_000,
        "claim_month": "2025-03",
        "delivery_id": "D1",
        # 23:59 in Korea on TODAY: still today.
        "delivered_at": datetime(2025, 6, 30, 14, 59, tzinfo=UTC),
    }
    return [
        {**base, "spec_id": "S1", "citizen_key": key(1)},
        {**base, "spec_id": "S2", "citizen_key": key(2), "sex": "M", "age": 37},
        {**base, "spec_id": "S3", "citizen_key": key(3), "age": 85, "main_dx": "I10"},
        {**base, "spec_id": "S4", "citizen_key": key(1), "end_date": date(2025, 3, 9)},
    ]


@pytest.fixture
def lakehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LAKEHOUSE_URI", str(tmp_path / "lakehouse"))
    return tmp_path / "lakehouse"


def write(name: str, rows: list[dict[str, Any]]) -> None:
    schema = TABLES[name].polars_schema()
    frame = pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema)
    delta.append(name, frame)


def write_all(
    claim_rows: list[dict[str, Any]] | None = None,
    citizen_rows: list[dict[str, Any]] | None = None,
) -> None:
    write("silver.citizens", citizens() if citizen_rows is None else citizen_rows)
    write("silver.institutions", institutions())
    write("silver.claims", claims() if claim_rows is None else claim_rows)


def failures(name: str = "silver.claims") -> dict[str, quality.CheckResult]:
    return {r.check.dagster_name: r for r in quality.evaluate(name, today=TODAY) if not r.passed}


def test_clean_tables_pass_every_check(lakehouse: Path) -> None:
    write_all()
    for name in ("silver.citizens", "silver.institutions", "silver.claims"):
        results = quality.evaluate(name, today=TODAY)
        assert [r.check for r in results] == quality.checks(name)
        assert all(r.passed and r.violations == 0 and r.note is None for r in results), name
    types = {r.check.type for r in quality.evaluate("silver.claims", today=TODAY)}
    assert types == set(quality.CHECK_TYPES)  # silver.claims exercises every type


Mutation = Callable[[list[dict[str, Any]]], None]


def _set(index: int, **values: Any) -> Mutation:
    def mutate(rows: list[dict[str, Any]]) -> None:
        rows[index].update(values)

    return mutate


CORRUPTIONS: dict[
    str, tuple[Callable[[list[dict[str, Any]]], None], dict[str, tuple[str, ...]]]
] = {
    # name: (what to break in claims, {failing check: samples})
    "duplicate key": (
        _set(1, spec_id="S1"),
        {"isPrimaryKey_spec_id": ("S1",)},
    ),
    "missing required": (_set(2, main_dx=None), {"isRequired_main_dx": ("S3",)}),
    "unknown citizen": (
        _set(1, citizen_key=key(99)),
        {"isForeignKey_citizen_key": ("S2",)},
    ),
    "unknown institution": (_set(0, ykiho="99999999"), {"isForeignKey_ykiho": ("S1",)}),
    "bad format": (_set(3, sex="X"), {"fieldFormat_sex": ("S4",)}),
    "unknown code": (_set(0, form_type="999"), {"isStandardValidConcept_form_type": ("S1",)}),
    "unknown kcd": (_set(1, main_dx="U99.9"), {"isStandardValidConcept_main_dx": ("S2",)}),
    "too low": (_set(0, age=-1), {"plausibleValueLow_age": ("S1",)}),
    "too high": (_set(2, age=121), {"plausibleValueHigh_age": ("S3",)}),
    "before birth": (
        _set(0, start_date=date(1950, 5, 31)),
        {"plausibleAfterBirth_start_date": ("S1",)},
    ),
    "after death": (
        _set(2, start_date=date(2025, 3, 11), end_date=date(2025, 3, 11)),
        {"plausibleBeforeDeath_start_date": ("S3",)},
    ),
    "start after end": (
        _set(3, start_date=date(2025, 3, 10)),
        {"plausibleStartBeforeEnd_start_date": ("S4",)},
    ),
    "future date": (
        _set(3, end_date=date(2025, 7, 1)),
        {"plausibleNotInFuture_end_date": ("S4",)},
    ),
    "future timestamp": (
        # 00:30 on the day after TODAY in Korea, though still TODAY in UTC.
        _set(1, delivered_at=datetime(2025, 6, 30, 15, 30, tzinfo=UTC)),
        {"plausibleNotInFuture_delivered_at": ("S2",)},
    ),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_each_check_type_catches_its_violation(lakehouse: Path, case: str) -> None:
    mutate, expected = CORRUPTIONS[case]
    rows = claims()
    mutate(rows)
    write_all(rows)
    failed = failures()
    assert {n: r.samples for n, r in failed.items()} == expected
    for result in failed.values():
        duplicated = result.check.type == "isPrimaryKey"
        assert result.violations == (2 if duplicated else 1)  # both rows sharing a key count
        assert result.share == pytest.approx(100 * result.violations / result.rows)


def test_birth_month_is_the_earliest_plausible_day(lakehouse: Path) -> None:
    rows = claims()
    rows[0].update(start_date=date(1950, 6, 1), end_date=date(1950, 6, 1))  # born June 1950
    rows[2].update(start_date=date(2025, 3, 10), end_date=date(2025, 3, 10))  # the day of death
    write_all(rows)
    assert failures() == {}


def test_the_citizen_key_and_life_checks_are_counted_in_one_query(lakehouse: Path) -> None:
    """One join with the citizens serves the key check and both life checks (a month of the
    city's claims joined the citizens twice per table), and a row whose citizen is unknown
    breaks the key check only: it has no life to compare with."""
    rows = claims()
    rows[1]["citizen_key"] = key(99)
    rows[0].update(start_date=date(1950, 5, 31))  # before S1's citizen was born
    write_all(rows)
    table = TABLES["silver.claims"]
    present = {"silver.claims", "silver.citizens", "silver.institutions"}
    names = (
        "isForeignKey_citizen_key",
        "plausibleAfterBirth_start_date",
        "plausibleBeforeDeath_start_date",
    )
    plans = [
        quality.plan(c, table, present, TODAY)
        for c in quality.checks(table)
        if c.dagster_name in names
    ]
    assert len(plans) == 3 and len({p.source for p in plans}) == 1
    results = {r.check.dagster_name: r for r in quality.evaluate(table, today=TODAY)}
    key_check, born, died = (results[n] for n in names)
    assert (key_check.rows, key_check.violations, key_check.samples) == (4, 1, ("S2",))
    assert (born.rows, born.violations, born.samples) == (3, 1, ("S1",))
    assert (died.rows, died.violations) == (1, 0)  # only S3's citizen has died


def test_citizens_checks_catch_their_own_violations(lakehouse: Path) -> None:
    rows = citizens()
    rows[0].update(birth_month=13, dong_code="9999")
    rows[1].update(resident_to=date(2023, 12, 31))
    write_all(citizen_rows=rows)
    failed = failures("silver.citizens")
    assert {n: r.samples for n, r in failed.items()} == {
        "plausibleValueHigh_birth_month": (key(1),),
        "fieldFormat_dong_code": (key(1),),
        "plausibleStartBeforeEnd_resident_from": (key(2),),
    }


def test_samples_are_keys_never_values(lakehouse: Path) -> None:
    rows = claims()
    for r in rows:
        r["sex"] = "?"
    write_all(rows)
    result = failures()["fieldFormat_sex"]
    assert result.violations == 4
    assert result.samples == ("S1", "S2", "S3", "S4")
    assert "?" not in "".join(result.samples)


def test_a_table_not_written_yet_passes_vacuously(lakehouse: Path) -> None:
    results = quality.evaluate("silver.claims", today=TODAY)
    assert results and all(r.passed and r.rows == 0 for r in results)
    assert all(r.note == "silver.claims has not been written" for r in results)


def test_a_missing_referenced_table_fails_the_foreign_key(lakehouse: Path) -> None:
    write("silver.claims", claims())
    failed = failures()
    assert set(failed) == {"isForeignKey_citizen_key", "isForeignKey_ykiho"}
    assert all(r.violations == 4 and r.note for r in failed.values())
    life = [r for r in quality.evaluate("silver.claims", today=TODAY) if "Birth" in r.check.type]
    assert life[0].passed and life[0].note  # nothing to compare with: reported, not failed


def test_structural_checks_for_the_vault(lakehouse: Path) -> None:
    vault: list[dict[str, Any]] = [
        {"citizen_key": key(1), "name_enc": "x", "birth_date_enc": "x", "address_enc": None},
        {"citizen_key": key(1), "name_enc": "x", "birth_date_enc": "x", "address_enc": "x"},
    ]
    write("vault.identities", [{**r, "key_id": "k1"} for r in vault])
    failed = failures("vault.identities")
    assert set(failed) == {"isPrimaryKey_citizen_key", "isRequired_address_enc"}
    assert failed["isPrimaryKey_citizen_key"].samples == (key(1),)


def test_only_a_subset_is_evaluated_when_asked(lakehouse: Path) -> None:
    write_all()
    some = quality.checks("silver.claims")[:3]
    assert [r.check for r in quality.evaluate("silver.claims", only=some, today=TODAY)] == some


def test_severities_and_thresholds_follow_the_dqd() -> None:
    by_type = {c.type: c for cs in quality.all_checks().values() for c in cs}
    for fatal in ("isPrimaryKey", "isRequired", "isForeignKey"):
        assert by_type[fatal].fatal and by_type[fatal].threshold == 0
    low = by_type["plausibleValueLow"]
    assert not low.fatal and low.threshold == 1.0
    assert quality.CheckResult(low, rows=200, violations=2).passed  # 1 % is within
    assert not quality.CheckResult(low, rows=199, violations=2).passed
    required = by_type["isRequired"]
    assert not quality.CheckResult(required, rows=10**9, violations=1).passed


def test_checks_are_derived_per_layer() -> None:
    assert quality.checks("bronze.claims_t200") == []
    assert {c.type for c in quality.checks("vault.identities")} == {"isPrimaryKey", "isRequired"}
    assert {c.type for c in quality.checks("quarantine.records")} == {"isRequired"}
    names = [c.name for cs in quality.all_checks().values() for c in cs]
    assert len(names) == len(set(names))
    assert "silver.claims:isPrimaryKey:spec_id" in names
    for cs in quality.all_checks().values():
        dagster_names = [c.dagster_name for c in cs]
        assert len(dagster_names) == len(set(dagster_names))
        assert all(n.replace("_", "").isalnum() for n in dagster_names)
    assert {t.split(".")[0] for t in quality.all_checks()} >= {"silver", "gold"}


def test_data_quality_md_is_the_rendered_catalogue() -> None:
    """Regenerate with ``gjh catalog --docs`` (``quality.render_markdown()``) when this fails."""
    committed = (ROOT / "DATA_QUALITY.md").read_text(encoding="utf-8")
    assert committed == quality.render_markdown()
    for cs in quality.all_checks().values():
        for c in cs:
            assert f"`{c.dagster_name}` | `{c.type}` | {c.severity}" in committed


def test_checks_spill_past_the_memory_limit_instead_of_growing(
    lakehouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check's count over a whole table (a primary key's groups over a year of the city's
    claim lines) is held to ``GJH_DUCKDB_MEMORY`` and spills past it: the answer is the same."""
    from lakehouse import read

    monkeypatch.setenv("GJH_DUCKDB_MEMORY", "48MB")
    con = read.connect([])
    limit, spill = con.execute(
        "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
    ).fetchone() or ("", "")
    assert limit.endswith("MiB") and float(limit.split()[0]) < 48, limit
    assert Path(spill).parent == Path(tempfile.gettempdir())
    write("silver.citizens", citizens())
    write("silver.institutions", institutions())
    many = 600_000  # the primary key's groups alone are several times the limit
    row = claims()[0]
    schema = TABLES["silver.claims"].polars_schema()
    one = pl.DataFrame([{c: row.get(c) for c in schema}], schema=schema)
    frame = one.select(pl.all().repeat_by(many).explode()).with_columns(
        spec_id=pl.format("S{}", pl.int_range(many)).str.replace(f"^S{many - 1}$", "S0")
    )
    delta.append("silver.claims", frame)
    found = {r.check.dagster_name: r for r in quality.evaluate("silver.claims", today=TODAY)}
    key_check = found["isPrimaryKey_spec_id"]
    assert key_check.rows == many and key_check.violations == 2  # S0 twice
    assert all(r.passed for name, r in found.items() if name != "isPrimaryKey_spec_id")
