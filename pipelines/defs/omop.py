"""OMOP: the lakehouse as an OMOP CDM v5.4 database (with the imaging extension), after gold.

One multi-asset builds every ``omop.*`` table from silver, the imaging index and ``ai.findings``
(``pipelines.transform.omop``) and replaces each table whole in one commit, as the gold job does
with its derived tables: the OMOP layer is derived entirely from silver, and its ids are stable
(``lakehouse.omop.ids``), so a rebuild gives every row the id it had. The person-level tables are
built in passes of ``BUCKETS_PER_PASS`` key buckets (memory bounded by one pass, as the gold
timeline), each pass's rows kept in Parquet files until the last, and each table is then replaced
from a stream of its files (``lakehouse.delta.replace_streamed``). It runs in ``omop_job``
(after the nightly gold refresh) and as the last stage of ``gjh build``.

Each table's metadata says how many source rows were left out because their person is not in
the resident register (never invented).
"""

import tempfile
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds

from lakehouse import delta
from lakehouse import read as lake
from lakehouse.buckets import key_bucket_expr
from lakehouse.catalog.omop import OMOP
from lakehouse.omop import spec as cdm
from pipelines.defs.gold import TIMEZONE
from pipelines.defs.resources import Lakehouse
from pipelines.defs.specs import spec
from pipelines.transform.gold import bucket_groups
from pipelines.transform.omop import Sources, person_level, shared

GROUP: Final = "omop"
KOREA: Final = ZoneInfo(TIMEZONE)
TABLES: Final = tuple(t.name for t in OMOP)
SOURCES: Final = {
    "citizens": "silver.citizens",
    "institutions": "silver.institutions",
    "claims": "silver.claims",
    "claim_lines": "silver.claim_lines",
    "diagnoses": "silver.diagnoses",
    "prescriptions": "silver.prescriptions",
    "dispensings": "silver.dispensings",
    "members": "silver.centre_members",
    "measurements": "silver.centre_measurements",
    "studies": "silver.imaging_studies",
    "series": "silver.imaging_series",
    "findings": "ai.findings",
}
# Runs after gold (the nightly refresh at 02:00 KST takes minutes): at 03:00 KST.
NIGHTLY_CRON: Final = "0 3 * * *"
UNKNOWN: Final = "rows_unknown_person"
# Key buckets per pass of the person-level tables: 8 passes of 8 buckets, as the timeline
# (pipelines.defs.gold): memory is bounded by one pass, about 1/8 of the city.
BUCKETS_PER_PASS: Final = 8


def whole(name: str) -> str:
    """A predicate every row of an omop table matches (a required column is never null): the
    rows one rebuild replaces."""
    required = next(f.name for f in cdm.fields(name.split(".", 1)[1]) if f.required)
    return f"{required} IS NOT NULL"


def as_of() -> date:
    """The last day the sources cover (claims, dispensings, centre, imaging), else the latest
    day in the register: one aggregate scan each, before the passes."""
    days = [
        lake.scan(table).select(pl.col(column).max()).collect().item()
        for table, column in (
            ("silver.claims", "end_date"),
            ("silver.dispensings", "dispensed_on"),
            ("silver.centre_measurements", "measured_on"),
            ("silver.imaging_studies", "study_date"),
            ("silver.citizens", "resident_from"),
        )
    ]
    found = [d for d in days if isinstance(d, date)]
    return max(found) if found else datetime.now(KOREA).date()


def _bucket() -> pl.Expr:
    """A row's key bucket; rows without a (well-formed) citizen key go with the first pass,
    where they are counted as of unknown persons once."""
    return key_bucket_expr().fill_null(0)


def _in_pass(frame: pl.LazyFrame, group: range) -> pl.LazyFrame:
    """The rows of a table with a citizen key that belong to this pass."""
    return frame.filter(_bucket().is_in(list(group)))


def pass_sources(group: range, institutions: pl.DataFrame) -> Sources:
    """The sources narrowed to the citizens of the key buckets in ``group``: the tables with a
    citizen key by its bucket, the others by what they hang on (lines by their statement,
    series by their study, centre measurements by their member)."""
    claims = _in_pass(lake.scan("silver.claims"), group)
    studies = _in_pass(lake.scan("silver.imaging_studies"), group)
    members = lake.scan("silver.centre_members")
    measurements = (
        lake.scan("silver.centre_measurements")
        .join(members.select("member_no", _bucket().alias("_bucket")), on="member_no", how="left")
        .filter(pl.col("_bucket").fill_null(0).is_in(list(group)))
        .drop("_bucket")
    )
    lazy = {
        "citizens": _in_pass(lake.scan("silver.citizens"), group),
        "claims": claims,
        "claim_lines": lake.scan("silver.claim_lines").join(
            claims.select("spec_id", "delivery_id"), on=["spec_id", "delivery_id"], how="semi"
        ),
        "diagnoses": _in_pass(lake.scan("silver.diagnoses"), group),
        "prescriptions": _in_pass(lake.scan("silver.prescriptions"), group),
        "dispensings": _in_pass(lake.scan("silver.dispensings"), group),
        "members": _in_pass(members, group),
        "measurements": measurements,
        "studies": studies,
        "series": lake.scan("silver.imaging_series").join(
            studies.select("study_instance_uid"), on="study_instance_uid", how="semi"
        ),
        "findings": _in_pass(lake.scan("ai.findings"), group),
    }
    frames = pl.collect_all(list(lazy.values()), engine="streaming")
    return Sources(institutions=institutions, **dict(zip(lazy, frames, strict=True)))


def _reader(paths: list[Path]) -> Callable[[], pa.RecordBatchReader]:
    """Opens the rows of these Parquet files as one stream of batches, afresh at each call."""
    return lambda: ds.dataset([str(p) for p in paths]).scanner().to_reader()


@dg.multi_asset(
    name="omop_tables",
    specs=[spec(name, GROUP, deps=tuple(SOURCES.values())) for name in TABLES],
    pool="lakehouse",
)
def omop_tables(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse
) -> Iterator[dg.MaterializeResult[None]]:
    """Every OMOP CDM table rebuilt from silver, the imaging index and the AI findings: the
    person-level tables in passes of key buckets, each pass's rows kept in Parquet files until
    the last, then each table replaced in one commit from its files."""
    del lakehouse  # its setup points the lakehouse modules at this deployment's storage
    day = as_of()
    institutions = lake.frame("silver.institutions")
    districts = lake.scan("silver.citizens").select("district_code").unique().collect()
    if districts.height == 0:
        context.log.info("omop: no citizens in silver yet, nothing to write")
    unknown: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="omop-") as folder:
        files: dict[str, list[Path]] = {}
        for group in bucket_groups(BUCKETS_PER_PASS):
            built = person_level(pass_sources(group, institutions), day)
            for name, frame in built.tables.items():
                path = Path(folder) / f"{name}-{group.start:02d}.parquet"
                frame.write_parquet(path)
                files.setdefault(name, []).append(path)
            for name, n in built.unknown_person.items():
                unknown[name] = unknown.get(name, 0) + n
            context.log.info(f"omop buckets {group.start}..{group.stop - 1}: built")
        tables = shared(districts, institutions, day, datetime.now(KOREA).date())
        for name in TABLES:
            if name in tables:
                rows = delta.replace(name, tables[name], whole(name)).rows
            else:
                rows = delta.replace_streamed(name, _reader(files[name]), whole(name)).rows
            left_out = unknown.get(name, 0)
            context.log.info(f"{name}: {rows} rows, {left_out} of unknown persons left out")
            yield dg.MaterializeResult(
                asset_key=spec(name, GROUP).key,
                metadata={"dagster/row_count": rows, UNKNOWN: left_out},
            )


omop_job = dg.define_asset_job(
    "omop_job",
    selection=dg.AssetSelection.groups(GROUP),
    description="Rebuild the OMOP CDM v5.4 tables from silver, imaging and the AI findings.",
)

nightly_omop = dg.ScheduleDefinition(
    name="nightly_omop",
    job=omop_job,
    cron_schedule=NIGHTLY_CRON,
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Rebuild the OMOP tables every night at 03:00 KST, after gold.",
)
