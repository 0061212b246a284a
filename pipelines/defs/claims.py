"""Claims and pharmacy extracts: monthly deliveries into bronze, then silver.

Bronze keeps each HIRA table as delivered (text, lineage, citizen keys in place of registration
numbers); silver types, conforms and corrects them. One asset per table; the tables of one
extract are written by one multi-asset so they are read and accounted for together.
"""

from collections.abc import Iterator
from typing import Final

import dagster as dg
import polars as pl

from lakehouse import delta
from lakehouse import read as lake
from pipelines.defs import checks
from pipelines.defs.partitions import MONTHS, ONE_RUN, periods
from pipelines.defs.resources import Lakehouse
from pipelines.defs.specs import delivered_headers, key, spec
from pipelines.ingest.bronze import Layout, ingest_csv, write_batch, write_quarantine
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
        window = periods(context)
        batch = ingest_csv(lakehouse.sources, source, layouts(source), window)
        written = write_batch(batch, tables)
        files = len(batch.ledger)
        context.log.info(
            f"{source} {window[0]}..{window[-1]}: {files} files, "
            f"{written['quarantine']} quarantine records"
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
    del lakehouse  # its setup points the lakehouse modules at this deployment's storage
    window = periods(context)
    frames = {
        name: lake.frame(name, pl.col("_period").is_in(window))
        for source in SOURCES.values()
        for name in source.values()
    }
    heads, quarantined = statements(frames["bronze.claims_t200"], frames["bronze.pharmacy_t200"])
    result = children(
        heads,
        frames["bronze.claims_t300"],
        frames["bronze.claims_t400"],
        frames["bronze.claims_t530"],
        frames["bronze.pharmacy_t300"],
    )
    deliveries = sorted(
        {d for f in frames.values() if f.height for d in f["_delivery_id"].unique().to_list()}
    )
    counts = dict.fromkeys(SILVER, 0)
    if deliveries:
        # The latest delivered version of a statement wins, whatever order periods run in.
        current = latest(heads)
        if current.height:
            delta.merge("silver.claims", current, newer="delivered_at")
        counts["silver.claims"] = current.height
        # Child rows are versioned by delivery: this window's deliveries are replaced exactly.
        own = "delivery_id IN (" + ", ".join(f"'{d}'" for d in deliveries) + ")"
        for name, frame in result.tables.items():
            delta.replace(name, frame, own)
            counts[name] = frame.height
    records = quarantined + result.quarantined
    for source in SOURCES:
        write_quarantine("silver", source, window, [r for r in records if r.source == source])
    context.log.info(
        f"silver claims {window[0]}..{window[-1]}: {counts}, quarantined {len(records)}"
    )
    for name in SILVER:
        yield dg.MaterializeResult(
            asset_key=key(name), metadata={"dagster/row_count": counts[name]}
        )
