"""Claims and pharmacy extracts: monthly deliveries into bronze, then silver.

Bronze keeps each HIRA table as delivered (text, lineage, citizen keys in place of registration
numbers); silver types, conforms and corrects them. One asset per table; the tables of one
extract are written by one multi-asset so they are read and accounted for together.
"""

import math
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

import dagster as dg
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds

from lakehouse import delta
from lakehouse import read as lake
from lakehouse.catalog import table as catalog_table
from pipelines.defs import checks
from pipelines.defs.partitions import MONTHS, ONE_RUN, periods
from pipelines.defs.resources import Lakehouse
from pipelines.defs.specs import delivered_headers, key, spec
from pipelines.ingest import deliveries
from pipelines.ingest.bronze import BatchWriter, Layout, ingest_csv, write_quarantine
from pipelines.ingest.deliveries import delivered_rows, passes
from pipelines.ingest.parse import Quarantined
from pipelines.transform.claims import children, latest, statements

# Bronze tables per source, keyed by the delivered file's name prefix.
SOURCES: Final = {
    "claims": {
        "T200_": "bronze.claims_t200",
        "T300_": "bronze.claims_t300",
        "T400_": "bronze.claims_t400",
        "T530_": "bronze.claims_t530",
    },
    "pharmacy": {"PHARM_T200_": "bronze.pharmacy_t200", "PHARM_T300_": "bronze.pharmacy_t300"},
}
BRONZE: Final = tuple(name for tables in SOURCES.values() for name in tables.values())
SILVER: Final = (
    "silver.claims",
    "silver.claim_lines",
    "silver.diagnoses",
    "silver.prescriptions",
    "silver.dispensings",
)


def layouts(source: str) -> list[Layout]:
    """The files a source sends: the header of each is its bronze table's delivered headers."""
    return [Layout(p, name, delivered_headers(name)) for p, name in SOURCES[source].items()]


def _bronze_asset(source: str) -> dg.AssetsDefinition:
    tables = list(SOURCES[source].values())

    @dg.multi_asset(
        name=f"bronze_{source}",
        specs=[spec(t, f"{source}_bronze", MONTHS) for t in tables],
        partitions_def=MONTHS,
        backfill_policy=ONE_RUN,
        pool="lakehouse",
    )
    def ingest(
        context: dg.AssetExecutionContext, lakehouse: Lakehouse
    ) -> Iterator[dg.MaterializeResult[None]]:
        written: Counter[str] = Counter()
        files = 0
        # A pass of months at a time, each file's rows spilled to disk once parsed: memory
        # holds one file, whatever the range (a year of the city is hundreds of millions of rows).
        delivered = delivered_rows(lakehouse.sources, [source], periods(context))
        for window in passes(delivered):
            with (
                tempfile.TemporaryDirectory(prefix=f"bronze-{source}-") as spill,
                BatchWriter(tables) as writer,
            ):
                batch = ingest_csv(
                    lakehouse.sources,
                    source,
                    layouts(source),
                    window,
                    spill=Path(spill),
                    ready=writer.start,
                )
                written.update(writer.finish(batch))
            files += len(batch.ledger)
            context.log.info(
                f"{source} {window[0]}..{window[-1]}: {len(batch.ledger)} files, "
                f"{len(batch.quarantined)} quarantine records"
            )
        for name in tables:
            yield dg.MaterializeResult(
                asset_key=key(name),
                metadata={
                    "dagster/row_count": written[name],
                    "files": files,
                    "quarantined": written["quarantine"],
                },
            )

    return ingest


bronze_claims = _bronze_asset("claims")
bronze_pharmacy = _bronze_asset("pharmacy")


@dg.multi_asset(
    name="silver_claims",
    specs=[
        spec(
            t, "claims_silver", MONTHS, (*SOURCES["claims"].values(), *SOURCES["pharmacy"].values())
        )
        for t in SILVER
    ],
    check_specs=checks.specs(SILVER),
    partitions_def=MONTHS,
    backfill_policy=ONE_RUN,
    pool="lakehouse",
)
@checks.evaluated
def silver_claims(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse
) -> Iterator[dg.MaterializeResult[None]]:
    """Statements typed and corrected (latest delivery wins); their lines, diagnoses,
    prescriptions and dispensings; impossible dates and unknown codes quarantined."""
    counts: Counter[str] = Counter(dict.fromkeys(SILVER, 0))
    # A pass of months at a time (as bronze): memory holds one pass's bronze rows, whatever the
    # range. Statements and their children are delivered in the same month, and the latest
    # delivered version of a statement wins whatever order months run in, so the passes give
    # the tables one run of the whole range gives.
    del lakehouse  # its setup points the lakehouse modules at this deployment's storage
    rows = _bronze_rows(periods(context))
    for window in passes(rows):
        # A month larger than a pass is split further, by statement (``_silver_pass``).
        parts = max(1, math.ceil(sum(rows[p] for p in window) / deliveries.PASS_ROWS))
        with tempfile.TemporaryDirectory(prefix="silver-claims-") as spill:
            done = _silver_pass(window, parts, Path(spill))
        counts.update(done)
        context.log.info(f"silver claims {window[0]}..{window[-1]} ({parts} parts): {dict(done)}")
    for name in SILVER:
        yield dg.MaterializeResult(
            asset_key=key(name), metadata={"dagster/row_count": counts[name]}
        )


def _bronze_rows(window: list[str]) -> dict[str, int]:
    """Bronze rows the claims and pharmacy extracts brought for each month of ``window``, by
    the ingestion ledger (the drop folder may be archived by the time silver runs)."""
    ledger = lake.frame(
        "bronze.deliveries",
        pl.col("source").is_in(list(SOURCES)) & pl.col("period").is_in(window),
    )
    accepted = ledger.group_by("period").agg(pl.col("rows_accepted").sum())
    return dict.fromkeys(window, 0) | dict(accepted.iter_rows())


def _stream(paths: list[Path]) -> Callable[[], pa.RecordBatchReader]:
    """Opens the rows of these Parquet files as one stream of batches, afresh at each call."""
    return lambda: ds.dataset([str(p) for p in paths]).scanner().to_reader()


def _split(window: list[str], parts: int, spill: Path) -> Callable[[str, int], pl.DataFrame]:
    """Each bronze table's rows of ``window`` read once and written to one Parquet file per part
    in ``spill`` (a statement's rows all in the part of its id); returns a reader of one table's
    part. Reading the window once beats reading it once per part (a city's month is about ten
    parts), and Polars' streaming sink cuts the parts in one pass on every core: 7.7 s for the
    city's month, against 27 s for the same split batch by batch in Python with pyarrow's writer.
    The spill is read once, so it is compressed with the fastest codec (lz4)."""
    written: dict[tuple[str, int], Path] = {}
    for name in BRONZE:
        if not delta.exists(name):
            continue
        lake.scan(name).filter(pl.col("_period").is_in(window)).with_columns(
            (pl.col("SPEC_ID_SNO").hash(seed=0) % parts).alias("_part")
        ).sink_parquet(
            pl.PartitionBy(spill / name, key="_part", include_key=False), compression="lz4"
        )
        # One folder per part that has rows, named as Hive names it (``_part=3``); a folder
        # named otherwise fails here rather than leaving its rows unread.
        folders = (spill / name).iterdir() if (spill / name).is_dir() else iter(())
        for folder in folders:
            written[(name, int(folder.name.removeprefix("_part=")))] = folder

    def read(name: str, part: int) -> pl.DataFrame:
        folder = written.get((name, part))
        if folder is not None:
            return pl.read_parquet(folder / "*.parquet")
        return lake.scan(name).clear().collect()

    return read


def _silver_pass(window: list[str], parts: int, spill: Path) -> Counter[str]:
    """The silver claims tables of the months in ``window``, in ``parts`` parts by statement
    id: rows written per table, and the quarantine records written (``quarantine``).

    A statement's versions and children share its id, so each part holds everything its
    statements need (the latest version, the children's join, the orphans). The part is chosen
    by Polars' hash, which only has to agree within this call.

    What is written waits in Parquet files in ``spill`` and goes in one commit per table:

    * child rows are versioned by delivery, so each child table replaces the window's
      deliveries exactly;
    * statements of a claim month ``silver.claims`` does not hold yet (a new month's delivery,
      the usual case) cannot meet a stored version, so they fill their new partitions in one
      streamed write; merging them part by part rescanned the growing month at every part
      (17 s of the city's month). No other run writes such a month meanwhile: the pool
      "lakehouse" runs one writing step at a time (dagster.yaml). Statements of a month
      already held (a correction delivered later, a run again) are merged part by part, the
      later delivery winning.
    """
    counts: Counter[str] = Counter()
    records: list[Quarantined] = []
    files: dict[str, list[Path]] = {}
    delivered: set[str] = set()
    held = _claim_months()
    fresh: set[str] = set()
    split = _split(window, parts, spill) if parts > 1 else None
    for part in range(parts):
        if split is None:
            where = pl.col("_period").is_in(window)
            frames = {name: lake.frame(name, where) for name in BRONZE}
        else:
            frames = {name: split(name, part) for name in BRONZE}
        delivered |= {
            d for f in frames.values() if f.height for d in f["_delivery_id"].unique().to_list()
        }
        heads, quarantined = statements(
            frames["bronze.claims_t200"], frames["bronze.pharmacy_t200"]
        )
        result = children(
            heads,
            frames["bronze.claims_t300"],
            frames["bronze.claims_t400"],
            frames["bronze.claims_t530"],
            frames["bronze.pharmacy_t300"],
        )
        del frames
        # The latest delivered version of a statement wins, whatever order periods run in.
        current = latest(heads)
        stored = pl.col("claim_month").is_in(sorted(held))
        if (again := current.filter(stored)).height:
            delta.merge("silver.claims", again, newer="delivered_at")
        new = current.filter(~stored)
        fresh |= set(new["claim_month"].unique().to_list())
        counts["silver.claims"] += current.height
        counts.update({name: frame.height for name, frame in result.tables.items()})
        for name, frame in {"silver.claims": new, **result.tables}.items():
            path = spill / f"{name}-{part:04d}.parquet"
            catalog_table(name).conform(frame).write_parquet(path, compression="lz4")
            files.setdefault(name, []).append(path)
        records += quarantined + result.quarantined
    writes: dict[str, str] = {}
    if fresh:
        writes["silver.claims"] = (
            "claim_month IN (" + ", ".join(f"'{m}'" for m in sorted(fresh)) + ")"
        )
    if delivered:
        # Child rows are versioned by delivery: this window's deliveries are replaced exactly.
        own = "delivery_id IN (" + ", ".join(f"'{d}'" for d in sorted(delivered)) + ")"
        writes |= {name: own for name in files if name != "silver.claims"}
    # Two tables at a time: one table's Parquet encoding keeps about one core busy, and each
    # streams from its files, so a second costs only its write buffers.
    with ThreadPoolExecutor(2, thread_name_prefix="silver-write") as pool:
        for done in [
            pool.submit(delta.replace_streamed, name, _stream(files[name]), predicate)
            for name, predicate in writes.items()
        ]:
            done.result()
    for source in SOURCES:
        write_quarantine("silver", source, window, [r for r in records if r.source == source])
    counts["quarantine"] = len(records)
    return counts


def _claim_months() -> set[str]:
    """The claim months ``silver.claims`` holds statements of (its partitions)."""
    if not delta.exists("silver.claims"):
        return set()
    return {p["claim_month"] for p in delta.open_table("silver.claims").partitions()}
