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
from lakehouse.omop.ids import with_person_id
from pipelines.defs.gold import TIMEZONE, write_changes
from pipelines.defs.resources import Lakehouse
from pipelines.defs.since import Since, since, values
from pipelines.defs.specs import spec
from pipelines.transform.gold import bucket_groups, pass_size, touched_passes
from pipelines.transform.omop import (
    CLAIMS_SOURCES,
    CLAIMS_TABLES,
    SHARED,
    Sources,
    person_level,
    shared,
    with_claims_kept,
)

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
# What a change in each source touches: the columns naming the citizens (or what leads to them:
# a statement's lines, a member's measurements, a study's series). The register of institutions
# feeds only the shared tables, rebuilt every run.
CHANGES: Final = {
    "silver.citizens": ("citizen_key",),
    "silver.institutions": ("ykiho",),
    "silver.claims": ("citizen_key",),
    "silver.claim_lines": ("spec_id",),
    "silver.diagnoses": ("citizen_key",),
    "silver.prescriptions": ("citizen_key",),
    "silver.dispensings": ("citizen_key",),
    "silver.centre_members": ("citizen_key",),
    "silver.centre_measurements": ("member_no",),
    "silver.imaging_studies": ("citizen_key",),
    "silver.imaging_series": ("study_instance_uid",),
    "ai.findings": ("citizen_key", "study_instance_uid"),
}
# The table that records what the CDM was last built from (lakehouse.delta.record_state).
STATE: Final = "omop.person"
PERIODS: Final = "omop.observation_period"
# The tables of persons written by difference, pass by pass, on a night (the periods wait for
# every pass: their ends move for everyone).
PERSON_TABLES: Final = tuple(n for n in TABLES if n not in SHARED and n != PERIODS)
# Past this many citizens touched, the CDM is rebuilt in its passes over everyone.
MOST_TOUCHED: Final = 200_000
# Runs after gold (the nightly refresh at 02:00 KST takes minutes): at 03:00 KST.
NIGHTLY_CRON: Final = "0 3 * * *"
UNKNOWN: Final = "rows_unknown_person"
# Key buckets per pass of the person-level tables at most, as the timeline (pipelines.defs.gold):
# memory is bounded by one pass, about ``PASS_CITIZENS`` citizens (``pass_size``).
BUCKETS_PER_PASS: Final = 8


def whole(name: str) -> str:
    """A predicate every row of an omop table matches (a required column is never null): the
    rows one rebuild replaces."""
    required = next(f.name for f in cdm.fields(name.split(".", 1)[1]) if f.required)
    return f"{required} IS NOT NULL"


def as_of() -> date:
    """The last day the sources cover (claims, dispensings, centre, imaging), else the latest
    day in the register: from the Delta logs' statistics where they are kept (``greatest``)."""
    days = [
        lake.greatest(table, column)
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


def touched_citizens(found: Since) -> set[str]:
    """The citizens whose person-level rows the sources' changes can touch: the keys on changed
    rows, and the citizens of the statements, members and studies whose lines, measurements
    and series changed."""
    keys: set[str] = set()
    for name, columns in CHANGES.items():
        if "citizen_key" in columns:
            keys |= values(found.changed(name), "citizen_key")
    leads = (
        ("silver.claim_lines", "spec_id", "silver.claims"),
        ("silver.centre_measurements", "member_no", "silver.centre_members"),
        ("silver.imaging_series", "study_instance_uid", "silver.imaging_studies"),
        ("ai.findings", "study_instance_uid", "silver.imaging_studies"),
    )
    for name, column, owner in leads:
        if found_keys := values(found.changed(name), column):
            keys |= set(
                lake.scan(owner)
                .filter(pl.col(column).is_in(sorted(found_keys)))
                .select("citizen_key")
                .collect()["citizen_key"]
                .drop_nulls()
            )
    return keys


def citizen_sources(
    keys: list[str], institutions: pl.DataFrame, with_claims: bool = True
) -> Sources:
    """The sources narrowed to some citizens, as a pass over their buckets narrows them (the
    rows a pass counts as of unknown persons, keyless, are left out: they make no row); without
    ``with_claims``, the claims family's tables empty and unread (``CLAIMS_SOURCES``)."""
    mine = pl.col("citizen_key").is_in(keys)
    claims = lake.scan("silver.claims").filter(mine)
    studies = lake.scan("silver.imaging_studies").filter(mine)
    members = lake.scan("silver.centre_members").filter(mine)
    lazy = {
        "citizens": lake.scan("silver.citizens").filter(mine),
        "claims": claims,
        "claim_lines": lake.scan("silver.claim_lines").join(
            claims.select("spec_id", "delivery_id"), on=["spec_id", "delivery_id"], how="semi"
        ),
        "diagnoses": lake.scan("silver.diagnoses").filter(mine),
        "prescriptions": lake.scan("silver.prescriptions").filter(mine),
        "dispensings": lake.scan("silver.dispensings").filter(mine),
        "members": members,
        "measurements": lake.scan("silver.centre_measurements").join(
            members.select("member_no"), on="member_no", how="semi"
        ),
        "studies": studies,
        "series": lake.scan("silver.imaging_series").join(
            studies.select("study_instance_uid"), on="study_instance_uid", how="semi"
        ),
        "findings": lake.scan("ai.findings").filter(mine),
    }
    if not with_claims:
        lazy |= {name: lazy[name].clear() for name in CLAIMS_SOURCES}
    frames = pl.collect_all(list(lazy.values()), engine="streaming")
    return Sources(institutions=institutions, **dict(zip(lazy, frames, strict=True)))


def _of_persons(ids: list[object]) -> str:
    """The Delta predicate of some persons' rows."""
    return f"person_id IN ({', '.join(str(int(str(i))) for i in ids)})"


def moved_periods(stored: pl.DataFrame, keys: list[str], day: date, before: date) -> pl.DataFrame:
    """The stored observation periods of the persons not recomputed, their end moved from the
    last build's ``before`` to ``day``: a resident still in the city and alive is observed to
    the sources' last day, or to their last event if later (``transform.omop.periods``), so
    their end becomes ``max(day, stored end)``; every other period stays as stored.

    Args:
        stored: The stored periods.
        keys: The citizens recomputed (their periods are replaced, not moved).
        day: The sources' last day now.
        before: The sources' last day at the last build (never later than ``day``).
    """
    if day == before:
        return stored
    open_ended = with_person_id(
        lake.scan("silver.citizens")
        .filter(
            pl.col("resident_to").is_null()
            & pl.col("died_on").is_null()
            & ~pl.col("citizen_key").is_in(keys)
        )
        .select("citizen_key")
        .collect()
    ).select("person_id", pl.lit(True).alias("_open"))
    end = "observation_period_end_date"
    return (
        stored.join(open_ended, on="person_id", how="left")
        .with_columns(
            pl.when(pl.col("_open"))
            .then(pl.max_horizontal(pl.lit(day), end))
            .otherwise(pl.col(end))
            .alias(end)
        )
        .drop("_open")
    )


def _changed(name: str, frame: pl.DataFrame) -> bool:
    """Whether a small table's recomputed rows differ from its stored ones."""
    if not delta.exists(name):
        return True
    table = delta.spec(name)
    stored, frame = table.conform(lake.frame(name)), table.conform(frame)
    return stored.height != frame.height or not stored.sort(pl.all()).equals(frame.sort(pl.all()))


def _persons(keys: list[str]) -> pl.DataFrame:
    """``citizen_key`` and ``person_id`` of some citizens."""
    return with_person_id(pl.DataFrame({"citizen_key": keys}, schema={"citizen_key": pl.String}))


def _stored_rows(persons: pl.DataFrame) -> pl.DataFrame:
    """``citizen_key`` and ``rows``: each person's rows in the person-level tables (0 for a
    person not stored yet), counted from their ``person_id`` columns."""
    ids = persons["person_id"].to_list()
    counts = [
        lake.scan(name).filter(pl.col("person_id").is_in(ids)).group_by("person_id").len("rows")
        for name in (*PERSON_TABLES, PERIODS)
    ]
    total = pl.concat(pl.collect_all(counts)).group_by("person_id").agg(pl.col("rows").sum())
    joined = persons.join(total, on="person_id", how="left").fill_null(0)
    return joined.select("citizen_key", "rows")


def _refresh_persons(
    keys: list[str],
    ids: list[object],
    claims: bool,
    day: date,
    institutions: pl.DataFrame,
    written: dict[str, list[str]],
) -> pl.DataFrame:
    """Recompute some citizens' person-level tables and write what changed in their stored
    rows (appends when they only gained rows), adding what each write did to ``written``;
    returns their observation periods, written by the caller with everyone's. Without
    ``claims``, their stored rows of the claims family are kept rather than recomputed."""

    def stored_of(name: str) -> pl.DataFrame:
        """The persons' stored rows of a table read by person."""
        if not ids:
            return pl.DataFrame(schema=delta.spec(name).polars_schema())
        return lake.frame(name, pl.col("person_id").is_in(ids))

    # The claims family's stored rows are read first when they are kept; the other tables' one
    # at a time as they are written, so no more than one is held beside what was built.
    stored_rows = {name: stored_of(name) for name in CLAIMS_TABLES} if not claims else {}
    built = {t.name: pl.DataFrame(schema=t.polars_schema()) for t in OMOP}
    if keys:
        src = citizen_sources(keys, institutions, claims)
        built = person_level(src, day).tables
        if not claims:
            built = with_claims_kept(built, stored_rows, src.citizens, day)
    for name in PERSON_TABLES:
        stored = stored_rows.pop(name) if name in stored_rows else stored_of(name)
        frame = built.pop(name)
        written[name].append(
            write_changes(name, frame, stored, "person_id", _of_persons, append_new=True)
        )
    return delta.spec(PERIODS).conform(built[PERIODS])


def _incremental(
    context: dg.AssetExecutionContext,
    found: Since,
    keys: list[str],
    day: date,
    before: date,
    institutions: pl.DataFrame,
    districts: pl.DataFrame,
) -> Iterator[dg.MaterializeResult[None]]:
    """Bring the CDM up to date with what changed: the touched citizens' person-level rows
    recomputed and only their differences written (appends when they only gained rows), the
    observation periods' ends moved to the new last day, the small shared tables rewritten
    when they differ. A night that changed neither the claims family nor the register
    (``CLAIMS_SOURCES``; every night but the monthly claims' and the register's) keeps the
    touched persons' stored rows of that family rather than reading the year's claims again.
    The touched citizens are taken in passes of a bounded number of their stored rows
    (``touched_passes``): a night holds one pass's rows at a time, whatever the day touched."""
    claims = any(found.changed(SOURCES[name]) is not None for name in (*CLAIMS_SOURCES, "citizens"))
    persons = _persons(keys)
    ids = persons["person_id"].to_list()
    passes = touched_passes(_stored_rows(persons)) if keys else [[]]
    # The person-level tables, pass by pass: each pass's rows built, compared with its persons'
    # stored rows and written; only the observation periods (a row per person) wait for all.
    each: dict[str, list[str]] = {name: [] for name in PERSON_TABLES}
    periods = []
    for part in passes:
        part_ids = persons.filter(pl.col("citizen_key").is_in(part))["person_id"].to_list()
        periods.append(_refresh_persons(part, part_ids, claims, day, institutions, each))
    context.log.info(
        f"omop: {len(keys)} citizens recomputed in {len(passes)} passes"
        f"{'' if claims else ', their claims rows kept (no claims or register change since)'}"
    )
    tables = shared(districts, institutions, day, datetime.now(KOREA).date())
    for name in TABLES:
        if name in tables:
            frame = tables[name]
            written = "unchanged"
            if _changed(name, frame):
                delta.replace(name, frame, whole(name))
                written = "rewritten"
            rows = frame.height
        elif name == PERIODS:
            # One row per person whose end moves every day: the whole table (as small as the
            # register) is compared, and rewritten when a period changed.
            stored = lake.frame(name)
            frame = pl.concat(
                [
                    moved_periods(stored, keys, day, before).filter(
                        ~pl.col("person_id").is_in(ids)
                    ),
                    *periods,
                ]
            )
            kind = "period_type_concept_id"
            written = write_changes(name, frame, stored, kind, lambda _: whole(PERIODS))
            rows = frame.height
        else:
            written = "; ".join(each[name])
            rows = delta.state(name).rows or 0
        context.log.info(f"{name}: {written}")
        yield dg.MaterializeResult(
            asset_key=spec(name, GROUP).key,
            metadata={
                "dagster/row_count": rows,
                "citizens_recomputed": len(keys),
                "passes": len(passes),
                "claims_read": claims,
            },
        )
    found.record(STATE, as_of=day.isoformat())


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
    found = since(STATE, CHANGES)
    day = as_of()
    institutions = lake.frame("silver.institutions")
    districts = lake.scan("silver.citizens").select("district_code").unique().collect()
    if districts.height == 0:
        context.log.info("omop: no citizens in silver yet, nothing to write")
    extra = found.before.get("extra")
    before = extra.get("as_of") if isinstance(extra, dict) else None
    if not found.whole and before is not None and date.fromisoformat(str(before)) <= day:
        keys = sorted(touched_citizens(found))
        if len(keys) <= MOST_TOUCHED:
            context.log.info(f"omop: {len(keys)} citizens touched since the last build")
            yield from _incremental(
                context, found, keys, day, date.fromisoformat(str(before)), institutions, districts
            )
            return
    context.log.info(
        f"omop: rebuilt whole ({found.reason or 'the last day went back or many citizens changed'})"
    )
    unknown: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="omop-") as folder:
        files: dict[str, list[Path]] = {}
        size = pass_size(delta.state("silver.citizens").rows or 0, BUCKETS_PER_PASS)
        for group in bucket_groups(size):
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
                metadata={"dagster/row_count": rows, UNKNOWN: left_out, "citizens_recomputed": -1},
            )
    if delta.exists(STATE):
        found.record(STATE, as_of=day.isoformat())


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
