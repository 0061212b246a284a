"""The monthly extracts in passes (``pipelines.ingest.deliveries.passes``) and with each file's
bronze rows spilled to disk once parsed (``Batch.spill``): a range run holds one pass's months,
and one file's rows, whatever the range, and writes the tables one run of the whole range in
memory writes."""

from __future__ import annotations

import threading
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from lakehouse import delta
from lakehouse.catalog import table as catalog_table
from pipelines.defs import claims, registry
from pipelines.ingest import deliveries
from pipelines.ingest.bronze import Batch, BatchWriter, ingest_csv, write_batch
from tests.conftest import City
from tests.pipelines.conftest import Lake

SILVER = list(claims.SILVER)
MONTHS = ("2025-03", "2025-04", "2025-05")
BRONZE = [name for source in claims.SOURCES.values() for name in source.values()]


def test_passes_keep_months_in_order_and_under_the_limit_a_large_month_alone() -> None:
    rows = {"2025-03": 40, "2025-01": 30, "2025-02": 50, "2025-04": 500, "2025-05": 10}
    assert deliveries.passes(rows, rows=100) == [
        ["2025-01", "2025-02"],
        ["2025-03"],
        ["2025-04"],
        ["2025-05"],
    ]
    assert deliveries.passes(rows, rows=10_000) == [sorted(rows)]
    assert deliveries.passes({}, rows=100) == []


def test_delivered_rows_are_the_manifests_declared_rows_by_period(small_city: City) -> None:
    months = ["2025-03", "2025-04", "2025-05"]
    counted = deliveries.delivered_rows(small_city.out, ["claims", "pharmacy"], months)
    declared = dict.fromkeys(months, 0)
    for source in ("claims", "pharmacy"):
        for _, manifest in small_city.deliveries(source):
            if manifest["period"] in declared:
                declared[manifest["period"]] += sum(e["rows"] for e in manifest["files"])
    assert counted == declared and all(counted.values())


def _sorted(lake: Lake, names: list[str]) -> dict[str, pl.DataFrame]:
    return {name: lake.frame(name).sort(pl.all()) for name in names}


@pytest.mark.slow
@pytest.mark.integration
def test_a_range_run_month_by_month_and_in_parts_writes_the_tables_of_one_pass(
    small_city: City, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    months = (MONTHS[0], MONTHS[-1])
    assets = [claims.bronze_claims, claims.bronze_pharmacy, claims.silver_claims]
    # Both lakehouses share one secrets folder (their parent), so one pseudonym key.
    whole = Lake(tmp_path / "whole", small_city.out)
    monthly = Lake(tmp_path / "monthly", small_city.out)
    # The registers first: silver's checks (in its step) need the citizens and institutions.
    for lake in (whole, monthly):
        lake.materialise([registry.bronze_registry, registry.silver_registry])
    whole.materialise(assets, months)
    # Every month a pass of its own, and each month's silver in three or four parts.
    rows = deliveries.delivered_rows(small_city.out, list(claims.SOURCES), list(MONTHS))
    monkeypatch.setattr(deliveries, "PASS_ROWS", min(rows.values()) // 3)
    taken: list[tuple[list[str], int]] = []
    silver_pass = claims._silver_pass

    def counted(window: list[str], parts: int, spill: Path) -> object:
        taken.append((window, parts))
        return silver_pass(window, parts, spill)

    monkeypatch.setattr(claims, "_silver_pass", counted)
    monthly.materialise(assets, months)
    assert [w for w, _ in taken] == [[m] for m in MONTHS]
    assert all(parts >= 3 for _, parts in taken), taken

    names = [*BRONZE, *SILVER, "bronze.deliveries", "quarantine.records"]
    expected, got = _sorted(whole, names), _sorted(monthly, names)
    assert set(expected["bronze.deliveries"]["period"]) >= {"2025-03", "2025-04", "2025-05"}
    for name in names:
        assert expected[name].height > 0, name
        assert_frame_equal(got[name], expected[name], check_dtypes=True)
    # A month's statements of claim months not held yet fill them in one write, whatever the
    # parts (merging part by part rescanned the growing month at every part).
    assert _operations(monthly).count("WRITE") == len(MONTHS)

    # The same month again, in parts: its statements are now held, so they are merged, and
    # the tables do not change.
    before = _operations(monthly)
    monthly.materialise([claims.silver_claims], MONTHS[0])
    assert taken[-1] == ([MONTHS[0]], taken[0][1])
    assert _operations(monthly)[len(before) :].count("MERGE") == taken[0][1]
    again = _sorted(monthly, SILVER)
    for name in SILVER:
        assert_frame_equal(again[name], expected[name], check_dtypes=True)


def _operations(lake: Lake) -> list[str]:
    """The operations of ``silver.claims``'s commits, oldest first."""
    with lake.active():
        history = delta.open_table("silver.claims").history()
    return [c["operation"] for c in sorted(history, key=lambda c: c["version"])]


@pytest.mark.slow
@pytest.mark.integration
def test_a_batch_spilled_to_disk_writes_the_rows_it_would_hold_in_memory(
    small_city: City, tmp_path: Path
) -> None:
    tables = list(claims.SOURCES["claims"].values())
    layouts = claims.layouts("claims")
    spill = tmp_path / "spill"
    spill.mkdir()
    kept, spilled = (
        Lake(tmp_path / "kept", small_city.out),
        Lake(tmp_path / "spilled", small_city.out),
    )
    with kept.active():
        in_memory = ingest_csv(small_city.out, "claims", layouts, ["2025-04"])
        write_batch(in_memory, tables)
    told: list[tuple[str, list[str]]] = []

    def ready(batch: Batch, table: str) -> None:
        """Note what was parsed when ``table`` was told ready, and start writing it."""
        told.append((table, [row["file"] for row in batch.ledger]))
        writer.start(batch, table)

    with spilled.active(), BatchWriter(tables) as writer:
        on_disk = ingest_csv(
            small_city.out, "claims", layouts, ["2025-04"], spill=spill, ready=ready
        )
        assert not on_disk.tables  # nothing held: every file's rows are in the spill folder
        assert sorted(on_disk.spilled) == sorted(tables)
        assert all(p.parent == spill and p.is_file() for ps in on_disk.spilled.values() for p in ps)
        written = writer.finish(on_disk)
    # Each table was told once, as its first file was about to be parsed, so it was written
    # while its files, and the next ones, were parsed.
    files = [row["file"] for row in on_disk.ledger]
    assert sorted(t for t, _ in told) == sorted(tables)
    for table, parsed in told:
        prefix = next(x.prefix for x in layouts if x.table == table)
        first = min(i for i, f in enumerate(files) if Path(f).name.startswith(prefix))
        assert parsed == files[:first], table
    assert told[0][1] == []  # the first table began before any file was parsed
    assert on_disk.quarantined == in_memory.quarantined and on_disk.ledger == in_memory.ledger
    for name in tables:
        assert written[name] == in_memory.frame(name).height > 0, name
    for name in [*tables, "bronze.deliveries", "quarantine.records"]:
        assert_frame_equal(spilled.frame(name).sort(pl.all()), kept.frame(name).sort(pl.all()))


def test_a_spilled_table_streams_its_pieces_as_they_come_and_fails_with_its_parse(
    tmp_path: Path,
) -> None:
    """``Batch.rows`` gives each piece as soon as it is spilled, ends when the table is closed,
    and a reader still waiting for rows fails when the parse does, instead of waiting."""
    name = "bronze.claims_t200"
    schema = {c: t for c, t in catalog_table(name).polars_schema().items() if c != "_line"}
    piece = pl.DataFrame({c: [None] for c in schema}, schema=schema)
    batch = Batch("claims", ["2025-04"], spill=tmp_path)
    batch.add(name, piece.with_columns(pl.lit(1).alias("_line")))
    rows = batch.rows(name)
    first = next(rows)  # the first piece, while the table is still open
    assert first.num_rows == 1 and first.schema == delta.arrow_schema(name)
    batch.add(name, piece.with_columns(pl.lit(2).alias("_line")))
    assert next(rows).column("_line").to_pylist() == [2]
    batch.close(name)
    assert list(rows) == []

    waiting = Batch("claims", ["2025-04"], spill=tmp_path / "other")
    (tmp_path / "other").mkdir()
    failed: list[BaseException] = []

    def read() -> None:
        try:
            list(waiting.rows(name))
        except RuntimeError as error:
            failed.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    waiting.abort(ValueError("a damaged file"))
    reader.join(timeout=30)
    assert not reader.is_alive()
    assert len(failed) == 1 and isinstance(failed[0].__cause__, ValueError)


def test_a_batch_held_in_memory_is_written_only_once_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Told to start a table of a batch held in memory before its rows are in, the writer
    waits for ``finish``: a batch in memory is written as it stands, and it stands whole only
    then (a spilled table streams its rows instead, above)."""
    monkeypatch.setenv("LAKEHOUSE_URI", str(tmp_path / "lakehouse"))
    name = "bronze.claims_t200"
    schema = {c: t for c, t in catalog_table(name).polars_schema().items() if c != "_line"}
    piece = pl.DataFrame({c: [None] for c in schema}, schema=schema).with_columns(
        pl.col("_period").fill_null("2025-04"), pl.lit(1).alias("_line")
    )
    batch = Batch("claims", ["2025-04"])
    with BatchWriter([name]) as writer:
        writer.start(batch, name)  # as ``ingest_csv`` tells it, before the first file
        batch.add(name, piece)
        batch.add(name, piece.with_columns(pl.lit(2).alias("_line")))
        written = writer.finish(batch)
    assert written[name] == 2
    assert sorted(delta.open_table(name).to_pyarrow_table()["_line"].to_pylist()) == [1, 2]
