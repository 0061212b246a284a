"""The data-quality report over the OMOP tables: one asset after every ``omop.*`` table.

``gold.omop_dq_results`` runs every check type of OHDSI's Data Quality Dashboard over the omop
tables as they stand (``lakehouse.omop.dq``) and replaces the previous run with it, one row per
check, so the
officials' data-quality page and ``gjh dq`` read the same results. Failed checks do not fail the
asset: the report is what it produces, failures included (each counted in the metadata). The
omop tables are dependencies by asset key only (their pipelines are another module's), so a
build that materialises them runs this after them.
"""

from typing import Final

import dagster as dg
import polars as pl

from lakehouse.catalog import table as catalog_table
from lakehouse.catalog.dq import RESULTS
from lakehouse.catalog.omop import TABLES as OMOP_TABLES
from lakehouse.omop import dq
from pipelines.defs import checks
from pipelines.defs.resources import Lakehouse
from pipelines.defs.specs import KINDS, OWNERS, key

GROUP: Final = "omop"
SOURCES: Final = tuple(f"omop.{t}" for t in OMOP_TABLES)


@dg.asset(
    key=key(RESULTS),
    description=catalog_table(RESULTS).description,
    group_name=GROUP,
    owners=OWNERS,
    kinds=KINDS,
    deps=[key(t) for t in SOURCES],
    check_specs=checks.specs((RESULTS,)),
    pool="lakehouse",
)
@checks.evaluated
def omop_dq_results(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse
) -> dg.MaterializeResult[None]:
    """The OHDSI Data Quality Dashboard's checks over the omop tables, as of now."""
    del lakehouse  # its setup points the lakehouse modules at this deployment's storage
    rows, written = dq.run()
    totals = dq.summary(rows).select(pl.exclude("category", "level").sum()).row(0, named=True)
    failed = rows.filter(pl.col("passed").not_())["check_id"].to_list()
    context.log.info(f"{RESULTS}: {written.rows} checks, failed: {failed or 'none'}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": written.rows,
            "run_id": rows["run_id"][0],
            **{f"checks_{k}": int(v) for k, v in totals.items()},
        }
    )
