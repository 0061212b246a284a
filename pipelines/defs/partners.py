"""Hospital partners' OMOP extracts: bronze as delivered, silver typed and linked by token, and
the count check of every delivery (docs/partners.md).

Extracts are small and arrive rarely, so each run reads every delivery of every partner (as the
registries do) and replaces exactly that partner's rows (``partner = '<code>'``). Each delivery
is a complete extract: silver holds each partner's newest delivery, while the ledger, the
quarantine and ``silver.partner_counts`` keep every delivery's accounting.
"""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import dagster as dg
import polars as pl

from lakehouse import delta
from lakehouse import read as lake
from lakehouse.catalog import table as catalog_table
from lakehouse.catalog.partners import PARTNER_PATTERN, USED
from pipelines.defs import checks
from pipelines.defs.resources import Lakehouse
from pipelines.defs.specs import key, spec
from pipelines.ingest.bronze import write_quarantine
from pipelines.ingest.deliveries import MANIFEST
from pipelines.ingest.parse import rejected_rows
from pipelines.ingest.partners import LINKAGE, ingest, partners, source
from pipelines.transform.partners import (
    conform,
    conform_linkage,
    link,
    linked_persons,
    silver_rows,
)

BRONZE: Final = tuple(f"bronze.partner_{t}" for t in (*USED, LINKAGE))
SILVER: Final = tuple(f"silver.partner_{t}" for t in USED)
COUNTS: Final = "silver.partner_counts"
LEDGER: Final = "bronze.deliveries"
# The rejected rows' columns (``pipelines.transform.partners``) with the table they were meant for.
EMPTY_REJECTED: Final = pl.DataFrame(
    schema={
        "_delivery_id": pl.Utf8,
        "_file": pl.Utf8,
        "_line": pl.Int64,
        "_period": pl.Utf8,
        "key": pl.Utf8,
        "reason": pl.Utf8,
        "message": pl.Utf8,
        "payload": pl.Utf8,
        "_table": pl.Utf8,
    }
)


def _known(code: str, context: dg.AssetExecutionContext) -> bool:
    """A partner folder whose name is a partner code (it is used in predicates)."""
    if re.fullmatch(PARTNER_PATTERN, code):
        return True
    context.log.warning(f"partners/{code!r}: not a partner code ({PARTNER_PATTERN}), skipped")
    return False


@dg.multi_asset(
    name="bronze_partners",
    specs=[spec(t, "partners_bronze") for t in BRONZE],
    pool="lakehouse",
)
def bronze_partners(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse
) -> Iterator[dg.MaterializeResult[None]]:
    """Every partner delivery's files into bronze (text, lineage) and the ledger."""
    counts = dict.fromkeys(BRONZE, 0)
    for partner in (p for p in partners(lakehouse.sources) if _known(p, context)):
        batch = ingest(lakehouse.sources, partner)
        for name in BRONZE:
            frame = batch.frame(name)
            delta.replace(name, frame, f"partner = '{partner}'")
            counts[name] += frame.height
        ledger = pl.DataFrame(batch.ledger, schema=catalog_table(LEDGER).polars_schema())
        ledger = ledger.with_columns(pl.col("delivered_at").dt.convert_time_zone("UTC"))
        delta.replace(LEDGER, ledger, f"source = '{source(partner)}'")
        if batch.periods:
            write_quarantine("bronze", source(partner), batch.periods, batch.quarantined)
        context.log.info(f"{source(partner)}: {len(batch.ledger)} files")
    for name in BRONZE:
        yield dg.MaterializeResult(
            asset_key=key(name), metadata={"dagster/row_count": counts[name]}
        )


def _holder(sources: Path, file: str) -> str | None:
    """The partner's name as its delivery's manifest gives it (``holder``), if it does."""
    manifest = sources / Path(file).parent / MANIFEST
    if not manifest.is_file():
        return None
    value = json.loads(manifest.read_text(encoding="utf-8")).get("holder")
    return str(value) if value else None


def _delivery(
    rows: dict[str, pl.DataFrame], vault: pl.DataFrame
) -> tuple[dict[str, pl.DataFrame], list[pl.DataFrame]]:
    """One delivery's bronze rows per table -> its accepted, linked rows per table and the
    rejected rows (each with ``_table``)."""
    people, bad = conform("person", rows["person"], None)
    rejected = [bad.with_columns(pl.lit("person").alias("_table"))]
    ids = people["person_id"]
    pairs, bad_links = conform_linkage(rows[LINKAGE], ids)
    rejected.append(bad_links.with_columns(pl.lit(LINKAGE).alias("_table")))
    persons = linked_persons(pairs, vault)
    accepted = {"person": link(people, persons)}
    for table in USED[1:]:
        good, bad = conform(table, rows[table], ids)
        accepted[table] = link(good, persons)
        rejected.append(bad.with_columns(pl.lit(table).alias("_table")))
    accepted[LINKAGE] = pairs.join(persons, on="person_id", how="left")
    return accepted, rejected


def _file_counts(
    ledger: pl.DataFrame,
    accepted: dict[str, pl.DataFrame],
    rejected: pl.DataFrame,
    sources: Path,
    partner: str,
) -> pl.DataFrame:
    """``silver.partner_counts`` rows of one partner: per delivered file, the ledger's rows and
    bronze quarantine with silver's accepted, quarantined and linked rows."""
    per_file: list[dict[str, Any]] = []
    for row in ledger.iter_rows(named=True):
        table = Path(row["file"]).stem.lower()
        frame = accepted.get(row["file"])
        ok = frame.height if frame is not None else 0
        linked = frame.filter(pl.col("citizen_key").is_not_null()) if frame is not None else None
        persons = frame.select("person_id", "citizen_key").unique() if frame is not None else None
        silver_bad = rejected.filter(pl.col("_file") == row["file"]).height
        per_file.append(
            {
                "partner": partner,
                "delivery_id": row["delivery_id"],
                "period": row["period"],
                "delivered_at": row["delivered_at"],
                "holder": _holder(sources, row["file"]),
                "table": table,
                "file": row["file"],
                "status": row["status"],
                "rows_delivered": row["rows_read"],
                "rows_accepted": ok,
                "rows_quarantined": row["rows_quarantined"] + silver_bad,
                "rows_linked": linked.height if linked is not None else 0,
                "persons_linked": (
                    persons.filter(pl.col("citizen_key").is_not_null()).height
                    if persons is not None
                    else 0
                ),
                "persons_unlinked": (
                    persons.filter(pl.col("citizen_key").is_null()).height
                    if persons is not None
                    else 0
                ),
            }
        )
    return pl.DataFrame(per_file, schema=catalog_table(COUNTS).polars_schema())


@dg.multi_asset(
    name="silver_partners",
    specs=[
        *(spec(t, "partners_silver", deps=(*BRONZE, "vault.linkage")) for t in SILVER),
        spec(COUNTS, "partners_silver", deps=(*BRONZE, LEDGER)),
    ],
    check_specs=checks.specs((*SILVER, COUNTS)),
    pool="lakehouse",
)
@checks.evaluated
def silver_partners(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse
) -> Iterator[dg.MaterializeResult[None]]:
    """Each partner's newest delivery typed, checked and linked; every delivery counted."""
    vault = lake.frame("vault.linkage")
    counts = dict.fromkeys((*SILVER, COUNTS), 0)
    for partner in (p for p in partners(lakehouse.sources) if _known(p, context)):
        mine = pl.col("partner") == partner
        bronze = {t: lake.frame(f"bronze.partner_{t}", mine) for t in (*USED, LINKAGE)}
        ledger = lake.frame(LEDGER, pl.col("source") == source(partner)).sort("delivered_at")
        by_file: dict[str, pl.DataFrame] = {}
        rejected: list[pl.DataFrame] = [EMPTY_REJECTED]
        newest: dict[str, pl.DataFrame] = {}
        for delivery in ledger["delivery_id"].unique(maintain_order=True).to_list():
            rows = {t: f.filter(pl.col("_delivery_id") == delivery) for t, f in bronze.items()}
            accepted, bad = _delivery(rows, vault)
            rejected += bad
            for frame in accepted.values():
                by_file |= {
                    str(f[0]): part for f, part in frame.partition_by("_file", as_dict=True).items()
                }
            if accepted["person"].height:
                newest = accepted
        for table in USED:
            name = f"silver.partner_{table}"
            out = silver_rows(table, newest[table]) if newest else lake.frame(name).clear()
            delta.replace(name, out, f"partner = '{partner}'")
            counts[name] += out.height
        bad_rows = pl.concat(rejected, how="vertical_relaxed")
        quarantined = [
            q
            for table in (*USED, LINKAGE)
            for q in rejected_rows(
                bad_rows.filter(pl.col("_table") == table),
                source(partner),
                f"bronze.partner_{table}",
            )
        ]
        periods = ledger["period"].unique().to_list()
        if periods:
            write_quarantine("silver", source(partner), periods, quarantined)
        table_counts = _file_counts(ledger, by_file, bad_rows, lakehouse.sources, partner)
        delta.replace(COUNTS, table_counts, f"partner = '{partner}'")
        counts[COUNTS] += table_counts.height
        context.log.info(f"{source(partner)}: {table_counts.height} files counted")
    for name, n in counts.items():
        yield dg.MaterializeResult(asset_key=key(name), metadata={"dagster/row_count": n})


PARTNER_ASSETS: Final = (bronze_partners, silver_partners)
