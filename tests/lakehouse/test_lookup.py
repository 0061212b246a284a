"""The apps' lookups by key (``lakehouse.read.lookup``, ``lakehouse.queries``) touch only what the
key needs however large the table grows: the files the Delta log's statistics allow, and no
replay of the log while it has not changed. Counted as the kernel sees files opened (inotify,
``tests/lakehouse/opened.py``), on real Delta tables written by ``lakehouse.delta``, never timed.

The naive read beside each (``pl.scan_delta`` by path, ``lakehouse.read.scan``) is there to show
what grows: it replays every commit of the log on every call."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from lakehouse import buckets, delta, queries
from lakehouse import read as lake
from lakehouse.catalog import table as catalog_table
from tests.lakehouse.opened import Opened, opened

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sys.platform != "linux", reason="counts opens with Linux's inotify"),
]
FINDINGS = "ai.findings"
TIMELINE = "gold.citizen_timeline"
ROW_GROUP_ROWS = 64  # small groups, so a bucket's file has many


@pytest.fixture(autouse=True)
def lakehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("LAKEHOUSE_URI", str(tmp_path / "lakehouse"))
    yield tmp_path / "lakehouse"


def _rows(name: str, n: int, **given: Sequence[object]) -> pl.DataFrame:
    """``n`` rows of a catalogue table: the ``given`` columns, every other one null."""
    schema = catalog_table(name).polars_schema()
    return pl.DataFrame(
        {c: pl.Series(c, given.get(c, [None] * n), dtype=t) for c, t in schema.items()}
    )


def _clinic(day: int, i: int) -> str:
    return f"{31_000_000 + day * 100 + i:08d}"


def _findings_day(day: int, clinics: int = 5, per_clinic: int = 4) -> pl.DataFrame:
    """One day's scoring run: each of the day's clinics' findings (one file per run)."""
    n = clinics * per_clinic
    return _rows(
        FINDINGS,
        n,
        institution=[_clinic(day, i // per_clinic) for i in range(n)],
        study_instance_uid=[f"1.2.410.{day}.{i // per_clinic}" for i in range(n)],
        tracking_uid=[f"1.2.410.{day}.{i}.9" for i in range(n)],
        service=["cxr"] * n,
    )


def _twice(root: Path, read: Callable[[], pl.DataFrame]) -> tuple[pl.DataFrame, Opened]:
    """``read``'s rows and the files its second call opened (the first opens the table's log,
    as a served app's first visitor does)."""
    read()
    with opened(root) as seen:
        rows = read()
    return rows, seen


def test_a_clinics_lookup_opens_its_files_only_and_no_log_however_many_commits(
    lakehouse: Path,
) -> None:
    root = lakehouse / "ai" / "findings"
    clinic = _clinic(2, 3)
    figures = []
    written = 0
    for days in (5, 40):  # the table grows by a day's scoring run per commit
        for day in range(written, days):
            delta.append(FINDINGS, _findings_day(day))
        written = days
        rows, seen = _twice(root, lambda: queries.findings_of_institution(clinic))
        naive, scanned = _twice(
            root, lambda: lake.scan(FINDINGS).filter(pl.col("institution") == clinic).collect()
        )
        assert rows.sort("tracking_uid").equals(naive.sort("tracking_uid"))
        assert rows.height == 4
        figures.append((len(seen.data()), len(seen.log() - {"_delta_log"}), len(scanned.log())))
    # One data file (the day that scored the clinic) and no commit file read, at 5 commits and
    # at 40; the naive read replays every commit each time.
    assert [f[:2] for f in figures] == [(1, 0), (1, 0)], figures
    assert figures[1][2] > figures[0][2] >= 5, figures


def test_a_lookup_sees_a_commit_at_once_and_reads_only_the_new_commit(lakehouse: Path) -> None:
    root = lakehouse / "ai" / "findings"
    for day in range(3):
        delta.append(FINDINGS, _findings_day(day))
    clinic = _clinic(9, 0)
    assert lake.lookup(FINDINGS, {"institution": [clinic]}).collect().is_empty()
    delta.append(FINDINGS, _findings_day(9))
    with opened(root) as seen:
        found = lake.lookup(FINDINGS, {"institution": [clinic]}).collect()
    assert found.height == 4
    commits = {f for f in seen.log() if f.endswith(".json")}
    assert commits == {"_delta_log/00000000000000000003.json"}, seen.counts
    assert len(seen.data()) == 1


def _timeline(citizens: int, salt: str) -> pl.DataFrame:
    """``citizens`` citizens' timelines, a few rows each, sorted by citizen as the gold job
    writes them."""
    keys = [
        f"C{(i * 2_654_435_761) % 16**8:08x}{salt}{i:08x}".ljust(33, "0")[:33]
        for i in range(citizens)
    ]
    per = 5
    n = citizens * per
    first = date(2025, 1, 1)
    frame = _rows(
        TIMELINE,
        n,
        citizen_key=[keys[i // per] for i in range(n)],
        event_date=[first + timedelta(days=i % 300) for i in range(n)],
        kind=["visit"] * n,
        source_ref=[f"silver.claims:{salt}:{i}" for i in range(n)],
    )
    return frame.with_columns(key_bucket=buckets.key_bucket_expr()).sort(
        "citizen_key", "event_date"
    )


def _write_timeline(frame: pl.DataFrame) -> None:
    """As the gold job writes it: passes of eight key buckets, each replaced whole, sorted, in
    small row groups."""
    for low in range(0, buckets.BUCKETS, 8):
        part = frame.filter(pl.col("key_bucket").is_between(low, low + 7))
        delta.replace(
            TIMELINE,
            part.rechunk(),
            f"key_bucket >= {low} AND key_bucket < {low + 8}",
            row_group_rows=ROW_GROUP_ROWS,
        )


def test_a_citizens_timeline_opens_one_file_of_their_bucket_as_the_city_grows(
    lakehouse: Path,
) -> None:
    root = lakehouse / "gold" / "citizen_timeline"
    opened_files = []
    for citizens, salt in ((400, "a"), (3_200, "b")):
        frame = _timeline(citizens, salt)
        _write_timeline(frame)
        someone: str = frame["citizen_key"][citizens // 2 * 5]
        rows, seen = _twice(root, functools.partial(queries.timeline, someone))
        mine = frame.filter(pl.col("citizen_key") == someone).drop("key_bucket")
        assert rows.sort("source_ref").equals(mine.sort("source_ref"))
        assert seen.log() <= {"_delta_log"}, seen.counts
        opened_files.append(len(seen.data()))
        # A bucket's file holds many row groups; the read asks Polars for the key only.
        bucket = f"key_bucket={buckets.key_bucket(someone)}"
        assert all(f.startswith(bucket) for f in seen.data()), seen.counts
    assert opened_files == [1, 1]
    assert queries.timeline("C" + "f" * 32).is_empty()


def test_a_bucket_with_appended_days_opens_only_the_files_whose_keys_reach_the_citizen(
    lakehouse: Path,
) -> None:
    root = lakehouse / "gold" / "citizen_timeline"
    frame = _timeline(2_000, "c")
    _write_timeline(frame)
    # A later day's rows of the bucket's last citizens, appended as the gold job appends them.
    bucket = frame.filter(pl.col("key_bucket") == 7)
    late = bucket.tail(10).with_columns(
        pl.lit(date(2025, 12, 31)).alias("event_date"),
        pl.format("silver.claims:late:{}", pl.int_range(pl.len())).alias("source_ref"),
    )
    delta.append(TIMELINE, late)
    first, last = bucket["citizen_key"][0], bucket["citizen_key"][-1]
    _, early = _twice(root, functools.partial(queries.timeline, first))
    rows, both = _twice(root, functools.partial(queries.timeline, last))
    # The bucket holds two files now; the first citizen is outside the appended file's keys.
    assert len(early.data()) == 1 and len(both.data()) == 2, (early.counts, both.counts)
    assert rows["event_date"][0] == date(2025, 12, 31)


def test_many_keys_open_only_the_files_whose_range_holds_one(lakehouse: Path) -> None:
    for day in range(12):
        delta.append(FINDINGS, _findings_day(day))
    root = lakehouse / "ai" / "findings"
    studies = ("1.2.410.3.1", "1.2.410.7.4", "1.2.410.99.0")
    rows, seen = _twice(
        root, lambda: lake.lookup(FINDINGS, {"study_instance_uid": studies}).collect()
    )
    assert sorted(rows["study_instance_uid"].unique().to_list()) == sorted(studies[:2])
    assert len(seen.data()) == 2
    assert lake.lookup(FINDINGS, {"study_instance_uid": ()}).collect().is_empty()


def test_a_whole_small_table_is_read_once_per_version(lakehouse: Path) -> None:
    root = lakehouse / "ai" / "findings"
    delta.append(FINDINGS, _findings_day(0))
    first, seen = _twice(root, lambda: lake.current(FINDINGS))
    assert first.height == 20 and not seen.data()
    delta.append(FINDINGS, _findings_day(1))
    assert lake.current(FINDINGS).height == 40


def test_statistics_cut_short_still_bound_the_values(lakehouse: Path) -> None:
    # Delta keeps a long string's maximum cut short and raised (an upper bound, not the value):
    # a lookup of the longest value must still find its file.
    longest = "1.2." + "9" * 60
    values = ["1.2." + "9" * 59 + "8", longest]
    frame = _rows(FINDINGS, 2, study_instance_uid=values, institution=["1", "2"])
    delta.append(FINDINGS, frame)
    found = lake.lookup(FINDINGS, {"study_instance_uid": [longest]}).collect()
    assert found["institution"].to_list() == ["2"]


def test_a_table_not_built_yet_gives_no_rows_with_the_catalogue_schema() -> None:
    found = lake.lookup(FINDINGS, {"institution": ["1"]}).collect()
    assert found.is_empty() and found.schema == catalog_table(FINDINGS).polars_schema()
    assert lake.snapshot(FINDINGS) is None and queries.version_of(FINDINGS) is None
    assert delta.exists(FINDINGS) is False


def _mixed_day(day: int, clinics: int = 8, per_clinic: int = 8) -> pl.DataFrame:
    """One day's scoring run over every clinic, interleaved as studies arrive."""
    n = clinics * per_clinic
    return _rows(
        FINDINGS,
        n,
        institution=[_clinic(0, i % clinics) for i in range(n)],
        study_instance_uid=[f"1.2.410.{day}.{i}" for i in range(n)],
        tracking_uid=[f"1.2.410.{day}.{i}.9" for i in range(n)],
    )


def _rows_to_read(path: Path, column: str, value: str) -> int:
    """The rows of a Parquet file's row groups that may hold ``value`` by their statistics:
    what a reader of that value decodes."""
    meta = pq.ParquetFile(path).metadata
    at = meta.schema.to_arrow_schema().get_field_index(column)
    rows = 0
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        stats = group.column(at).statistics
        if stats is None or not stats.has_min_max or stats.min <= value <= stats.max:
            rows += group.num_rows
    return rows


def test_the_upkeep_lays_a_clinics_findings_together_for_its_worklist(lakehouse: Path) -> None:
    root = lakehouse / "ai" / "findings"
    for day in range(12):  # twelve scoring runs, every clinic in each
        delta.append(FINDINGS, _mixed_day(day))
    clinic = _clinic(0, 5)
    before = lake.files_for(FINDINGS, {"institution": [clinic]})
    assert before is not None and len(before) == 12
    delta.optimize(FINDINGS, row_group_rows=ROW_GROUP_ROWS)  # as the weekly upkeep does
    rows, seen = _twice(root, lambda: queries.findings_of_institution(clinic))
    assert rows.height == 12 * 8
    # Z-ordered by the clinic (the catalogue's ``sort_by``): one file, and in it only the row
    # groups of the clinic's 96 rows are read, of 768; a compaction alone leaves them spread.
    assert len(seen.data()) == 1
    (path,) = seen.data()
    assert _rows_to_read(root / path, "institution", clinic) <= 3 * ROW_GROUP_ROWS


def test_a_columns_greatest_value_comes_from_the_log_without_reading_a_file(
    lakehouse: Path,
) -> None:
    """The nightly CDM asks for the sources' last day: from each file's statistics, no data
    file opened; a string's maximum (kept cut short) and a file without statistics are
    scanned instead, with the same answer."""
    name = "silver.claims"
    assert lake.greatest(name, "end_date") is None  # not built yet
    days = [date(2025, 3, 1) + timedelta(days=d) for d in (3, 40, 17)]
    for i, day in enumerate(days):
        month = f"{day:%Y-%m}"
        rows = _rows(name, 2, end_date=[day, None], spec_id=[f"s{i}", "z" * 80],
                     claim_month=[month, month])  # fmt: skip
        delta.append(name, rows)
    root = lakehouse / "silver" / "claims"
    with opened(root) as seen:
        assert lake.greatest(name, "end_date") == max(days)
        assert lake.greatest(name, "claim_month") == "2025-04"  # the partition's values
    assert not seen.data()
    assert lake.greatest(name, "spec_id") == "z" * 80  # scanned: the log's is cut short
    assert lake.greatest(name, "ykiho") is None  # every value null
