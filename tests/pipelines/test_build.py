"""The whole build on the demo city: every delivered row is accounted for, the quarantine equals
what was injected, and no registration number or name reaches any table."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import City
from tests.pipelines.conftest import RRN, Lake, parquet_files

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _built_sources(lake: Lake) -> set[str]:
    """Top-level source folders the build ingested (claims, pharmacy, registry, ...)."""
    ledger = lake.frame("bronze.deliveries")
    return {s.split("/")[0] for s in ledger["source"].unique().to_list()}


def _delivered_files(city: City, tops: set[str]) -> set[str]:
    files = set()
    for manifest in city.out.glob("*/**/delivery.json"):
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        if doc["source"].split("/")[0] in tops:
            rel = manifest.parent.relative_to(city.out).as_posix()
            files |= {f"{rel}/{f['name']}" for f in doc["files"]}
    if "imaging" in tops:  # DICOM uploads come without manifests: every file counts
        files |= {
            p.relative_to(city.out).as_posix()
            for p in (city.out / "imaging").rglob("*")
            if p.is_file()
        }
    return files


def test_every_delivered_file_is_in_the_ledger_and_every_row_accounted_for(
    built_demo: Lake, demo_city: City
) -> None:
    ledger = built_demo.frame("bronze.deliveries")
    tops = _built_sources(built_demo)
    assert {"registry", "claims", "pharmacy"} <= tops
    assert set(ledger["file"].to_list()) == _delivered_files(demo_city, tops)
    assert ledger.filter(
        pl.col("rows_read") != pl.col("rows_accepted") + pl.col("rows_quarantined")
    ).is_empty()
    ingested = ledger.filter(pl.col("status") == "ingested")
    assert (ingested["rows_read"] == ingested["rows_declared"]).all()
    # A partner's table the platform does not use is recorded as skipped: no fault, no rows.
    rejected = ledger.filter(~pl.col("status").is_in(["ingested", "skipped"]))
    assert (rejected["rows_accepted"] == 0).all()
    assert rejected.height == len(demo_city.faulty_files() & set(ledger["file"].to_list()))


def test_quarantine_equals_the_injected_faults_kind_by_kind(
    built_demo: Lake, demo_city: City
) -> None:
    tops = _built_sources(built_demo)
    injected = Counter(
        f["kind"] for f in demo_city.faults["faults"] if f["path"].split("/")[0] in tops
    )
    quarantine = built_demo.frame("quarantine.records")
    found = Counter(quarantine["reason"].to_list())
    assert found == injected
    # Each row fault is quarantined at the very file and line faults.json names.
    rows = {
        (f["path"], f["line"], f["kind"])
        for f in demo_city.faults["faults"]
        if f["line"] is not None and f["path"].split("/")[0] in tops
    }
    lines = quarantine.filter(pl.col("line").is_not_null())
    assert set(zip(lines["file"], lines["line"], lines["reason"], strict=True)) == rows
    assert (quarantine["message"].str.len_chars() > 10).all()  # a readable reason, not a code


def test_silver_claims_reconcile_with_what_the_city_delivered(
    built_demo: Lake, demo_city: City
) -> None:
    t200 = demo_city.table("claims", "T200_")
    pharmacy = demo_city.table("pharmacy", "PHARM_T200_")
    claims = built_demo.frame("silver.claims")
    expected = set(t200["SPEC_ID_SNO"].to_list()) | set(pharmacy["SPEC_ID_SNO"].to_list())
    assert claims.height == len(expected)
    assert set(claims["spec_id"].to_list()) == expected
    # Every delivered version of the child rows is kept; nothing else.
    assert built_demo.frame("silver.diagnoses").height == demo_city.table("claims", "T400_").height
    assert (
        built_demo.frame("silver.prescriptions").height == demo_city.table("claims", "T530_").height
    )
    assert (
        built_demo.frame("silver.claim_lines").height
        == demo_city.table("claims", "T300_").height
        + demo_city.table("pharmacy", "PHARM_T300_").height
    )


def test_a_redelivered_statement_replaces_the_earlier_version(
    built_demo: Lake, demo_city: City
) -> None:
    t200 = demo_city.table("claims", "T200_")
    resent = t200.filter(pl.col("SPEC_ID_SNO").is_duplicated())
    assert resent.height, "the demo city re-delivers corrected statements"
    delivered_at = {
        folder.name: doc["delivered_at"] for folder, doc in demo_city.deliveries("claims")
    }
    newest = (
        resent.with_columns(pl.col("_delivery").replace_strict(delivered_at).alias("at"))
        .sort("at")
        .group_by("SPEC_ID_SNO")
        .agg(pl.col("_delivery").last(), pl.col("DMD_TRAMT").last())
    )
    claims = built_demo.frame(
        "silver.claims", pl.col("spec_id").is_in(newest["SPEC_ID_SNO"].to_list())
    )
    joined = newest.join(claims, left_on="SPEC_ID_SNO", right_on="spec_id")
    assert joined.height == newest.height
    assert (joined["delivery_id"] == joined["_delivery"]).all()
    assert (joined["total_amount"] == joined["DMD_TRAMT"].cast(pl.Int64)).all()


def test_no_registration_number_or_name_in_any_table(built_demo: Lake, demo_city: City) -> None:
    """Every string value of every Parquet file of every table, and every Delta log (its column
    statistics hold min/max values), is scanned."""
    names: set[str] = set()
    numbers: set[str] = set()
    for folder, doc in demo_city.deliveries("registry/citizens"):
        for f in doc["files"]:
            text = (folder / f["name"]).read_bytes().decode(f["encoding"])
            frame = pl.read_csv(text.encode(), infer_schema=False, separator=f["delimiter"])
            names |= set(frame["NAME"].to_list())
            numbers |= set(frame["RRN"].to_list())
    assert len(names) > 1000
    assert all(RRN.search(n) for n in numbers)  # the pattern finds every real one
    files = parquet_files(built_demo.root)
    assert len(files) > 20
    for path in files:
        table = pl.read_parquet(path)
        for column in table.columns:
            if table[column].dtype != pl.String:
                continue
            texts = table[column].drop_nulls().to_list()
            hits = [v for v in texts if RRN.search(v)]
            assert not hits, f"{path}: {column} holds a registration number"
            assert not names & set(texts), f"{path}: {column} holds residents' names"
    for log in built_demo.root.rglob("_delta_log/*.json"):
        assert not RRN.search(log.read_text(encoding="utf-8")), log


def test_direct_identifiers_are_only_in_the_vault_and_only_encrypted(built_demo: Lake) -> None:
    vault = built_demo.frame("vault.identities")
    citizens = built_demo.frame("silver.citizens")
    assert set(vault["citizen_key"].to_list()) == set(citizens["citizen_key"].to_list())
    assert vault["name_enc"].str.starts_with("gAAAA").all()  # Fernet tokens


def test_the_build_first_brings_an_older_lakehouse_up_to_the_catalogue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ai.findings`` written before the catalogue gained ``frame_number`` (issue 21) gets it
    before any stage runs, so the apps can read it without a rebuild."""
    from dataclasses import replace

    from lakehouse import delta
    from lakehouse.catalog import table
    from pipelines.build import evolve

    monkeypatch.setenv("LAKEHOUSE_URI", str(tmp_path / "lakehouse"))
    findings = table("ai.findings")
    kept = tuple(c for c in findings.columns if c.name != "frame_number")
    older = replace(findings, columns=kept)
    delta.append(older, pl.DataFrame(schema=older.polars_schema()))
    assert evolve() == {"ai.findings": ["frame_number"]}
    assert "frame_number" in delta.open_table(findings).schema().to_arrow().names
    assert evolve() == {}
