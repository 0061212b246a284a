"""Gold: the tables shaped for the apps, rebuilt from silver every night.

The gold tables are derived entirely from silver, so the nightly run rebuilds them in full
rather than tracking which silver rows changed (a claim correction can touch any month, a late
centre-member registration any day). Each is rewritten in commits sized to it:

* ``gold.citizen_timeline`` is rebuilt in passes of ``BUCKETS_PER_PASS`` key buckets. Each pass
  reads silver narrowed to its citizens, builds their rows and replaces exactly its buckets
  (``key_bucket >= lo AND key_bucket < hi``, partition columns only, so delta-rs drops whole
  files). Memory is bounded by one pass (1/8 of the city), each commit is atomic, a citizen's
  timeline is always one consistent version (their bucket is replaced in one commit), and a
  failed run leaves the other buckets as they were.
* ``gold.citizen_consent`` (what each citizen agreed to, ``pipelines.transform.consent``) is
  small (one row per account holder) and replaced whole in one commit, from one version of
  ``silver.programme_events`` that each row names, so the access layer knows which events
  arrived since and folds them on top (``lakehouse.queries.consent``).
* ``gold.programme_uptake_daily`` is small (days × about 950 cells: dong × age group × sex) and
  replaces exactly the days of the data window it recomputed (``day >= first AND day <= last``).
* ``gold.programme_uptake_published``, the only uptake table officials read, is made from the
  whole daily table after it (``pipelines.transform.published``: suppressed once for every
  view, audited by linear programming) and replaced whole in one commit.
* ``gold.ai_services_published``, the AI reading services' service x month counts officials
  read, is made the same way from ``ai.findings`` and the imaging tables
  (``pipelines.transform.published.services_published``) and replaced whole in one commit.

Silver tables another pipeline has not built yet (the centre, the app) count as empty, so gold
runs as soon as the resident register exists. Dependencies are declared by asset key, not by
importing the other pipelines' modules.
"""

from collections.abc import Callable
from datetime import date
from typing import Final

import dagster as dg
import polars as pl

from lakehouse import delta
from lakehouse import read as lake
from lakehouse.catalog import table as catalog_table
from pipelines.defs import checks
from pipelines.defs.resources import Lakehouse
from pipelines.defs.specs import KINDS, OWNERS, key, within
from pipelines.transform.changes import changes
from pipelines.transform.consent import citizen_consent, consent_spans
from pipelines.transform.gold import (
    PartnerSources,
    TimelineSources,
    bucket_groups,
    data_window,
    in_buckets,
    scored_studies,
    timeline,
    uptake_daily,
)
from pipelines.transform.published import published, service_studies, services_published

GROUP: Final = "gold"
TIMELINE: Final = "gold.citizen_timeline"
UPTAKE: Final = "gold.programme_uptake_daily"
PUBLISHED: Final = "gold.programme_uptake_published"
CONSENT: Final = "gold.citizen_consent"
SERVICES: Final = "gold.ai_services_published"
SERVICES_SOURCES: Final = ("ai.findings", "silver.imaging_instances", "silver.imaging_studies")
USERS: Final = "silver.app_users"
EVENTS: Final = "silver.programme_events"
CONSENT_SOURCES: Final = (USERS, EVENTS)
# Key buckets per timeline pass: 8 passes of 8 buckets. Smaller passes use less memory and read
# silver more often; at city scale (about 100 M claim rows) one pass holds about 1/8 of them.
BUCKETS_PER_PASS: Final = 8
# Rows per Parquet row group of the timeline: its rows are sorted by citizen, so one citizen's
# rows (tens to a few thousand) fall in one or two groups and a reader skips the rest of the
# partition by the groups' citizen_key statistics (docs/benchmarks.md, the timeline).
ROW_GROUP_ROWS: Final = 16_384
TIMELINE_SOURCES: Final = (
    "silver.claims",
    "silver.diagnoses",
    "silver.prescriptions",
    "silver.dispensings",
    "silver.centre_measurements",
    "silver.centre_members",
    "silver.imaging_studies",
    "ai.findings",
    "silver.institutions",
    # Hospital partners' linked records (pipelines.defs.partners).
    "silver.partner_visit_occurrence",
    "silver.partner_condition_occurrence",
    "silver.partner_drug_exposure",
    "silver.partner_measurement",
    "silver.partner_counts",
)
UPTAKE_SOURCES: Final = (
    "silver.citizens",
    USERS,
    EVENTS,
    "silver.centre_measurements",
    "silver.centre_members",
    "silver.claims",
    "silver.imaging_studies",
    "ai.findings",
)
# The nightly refresh: after the night's deliveries (the app's event log arrives after midnight,
# the centre's exports the evening before), before the working day.
NIGHTLY_CRON: Final = "0 2 * * *"
TIMEZONE: Final = "Asia/Seoul"


def _scan(name: str) -> pl.LazyFrame:
    """A silver table, or an empty frame of its declared schema if it is not built yet
    (``lakehouse.read.scan`` checks ``lakehouse.delta.exists``)."""
    return lake.scan(name)


def _buckets(values: list[object]) -> str:
    return f"key_bucket IN ({', '.join(str(v) for v in values)})"


def _days(values: list[object]) -> str:
    return within("day", [str(v) for v in values])


def write_changes(
    name: str,
    frame: pl.DataFrame,
    stored: pl.DataFrame,
    group: str,
    predicate: Callable[[list[object]], str],
) -> str:
    """Write only what the recomputed ``frame`` changes in ``stored`` (the same groups' rows):
    groups that lost or changed rows replaced whole, new rows of the others appended
    (``pipelines.transform.changes``); returns what was written, in words.

    Args:
        name: The gold table.
        frame: Its recomputed rows of some groups.
        stored: Its stored rows of the same groups.
        group: The column whose values bound each write.
        predicate: The Delta predicate selecting some groups' rows.
    """
    frame = catalog_table(name).conform(frame)
    found = changes(frame, stored, group)
    if found.rewrite:
        delta.replace(
            name,
            frame.filter(pl.col(group).is_in(found.rewrite)),
            predicate(found.rewrite),
            row_group_rows=ROW_GROUP_ROWS,
        )
    if found.added.height:
        delta.append(name, found.added)
    return f"{len(found.rewrite)} {group} groups rewritten, {found.added.height} rows appended"


def _asset(
    name: str, deps: tuple[str, ...], group: str = GROUP
) -> Callable[..., dg.AssetsDefinition]:
    """The decorator of one gold asset: its catalogue name as key, its deps by key; ``group``
    names the job that refreshes it (a gold table made from the OMOP tables runs with them).
    The table's catalogue checks are evaluated in the asset's step, after its body."""
    asset = dg.asset(
        key=key(name),
        description=catalog_table(name).description,
        group_name=group,
        owners=OWNERS,
        kinds=KINDS,
        deps=[key(d) for d in deps],
        check_specs=checks.specs((name,)),
        pool="lakehouse",
    )
    return lambda body: asset(checks.evaluated(body))


@_asset(TIMELINE, TIMELINE_SOURCES)
def gold_citizen_timeline(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse
) -> dg.MaterializeResult[None]:
    """Every citizen's timeline rebuilt from silver, one group of key buckets per commit."""
    del lakehouse  # its setup points the lakehouse modules at this deployment's storage
    members = _scan("silver.centre_members")
    studies = _scan("silver.imaging_studies").filter(pl.col("citizen_key").is_not_null())
    findings = _scan("ai.findings").filter(pl.col("citizen_key").is_not_null())
    institutions = _scan("silver.institutions").select("ykiho", "name")
    rows = 0
    kinds: dict[str, int] = {}
    for group in bucket_groups(BUCKETS_PER_PASS):
        src = TimelineSources(
            claims=in_buckets(_scan("silver.claims"), group),
            diagnoses=in_buckets(_scan("silver.diagnoses"), group),
            prescriptions=in_buckets(_scan("silver.prescriptions"), group),
            dispensings=in_buckets(_scan("silver.dispensings"), group),
            measurements=_scan("silver.centre_measurements"),
            members=in_buckets(members, group),
            studies=in_buckets(studies, group),
            findings=findings,
            institutions=institutions,
            partners=PartnerSources(
                visits=in_buckets(_scan("silver.partner_visit_occurrence"), group),
                conditions=in_buckets(_scan("silver.partner_condition_occurrence"), group),
                drugs=in_buckets(_scan("silver.partner_drug_exposure"), group),
                measurements=in_buckets(_scan("silver.partner_measurement"), group),
                counts=_scan("silver.partner_counts"),
            ),
        )
        # One chunk: delta-rs writes the batches of a chunked frame in parallel, interleaving
        # them, and a file's rows would no longer be sorted by citizen.
        frame = timeline(src).collect(engine="streaming").rechunk()
        stored = lake.frame(TIMELINE, pl.col("key_bucket").is_in(list(group)))
        written = write_changes(TIMELINE, frame, stored, "key_bucket", _buckets)
        rows += frame.height
        for kind, n in frame.group_by("kind").len().iter_rows():
            kinds[kind] = kinds.get(kind, 0) + n
        context.log.info(
            f"timeline buckets {group.start}..{group.stop - 1}: {frame.height} rows, {written}"
        )
    return dg.MaterializeResult(
        metadata={"dagster/row_count": rows, **{f"rows_{k}": v for k, v in sorted(kinds.items())}},
    )


@_asset(CONSENT, CONSENT_SOURCES)
def gold_citizen_consent(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse
) -> dg.MaterializeResult[None]:
    """Each citizen's consent state folded from one version of the programme's events."""
    del lakehouse
    if not delta.exists(EVENTS):
        context.log.info("consent: no programme events in silver yet, nothing to write")
        return dg.MaterializeResult(metadata={"dagster/row_count": 0})
    # One version, read as it was: the reader folds on top exactly the files added after it.
    events = delta.open_table(EVENTS)
    frame = pl.scan_delta(events).collect()
    through = frame["event_date"].max()
    if not isinstance(through, date):
        context.log.info("consent: no programme events in silver yet, nothing to write")
        return dg.MaterializeResult(metadata={"dagster/row_count": 0})
    rows = citizen_consent(_scan(USERS).collect(), frame, events.version(), through)
    # Small (one row per account holder): the whole table in one commit, one build's version.
    delta.replace(CONSENT, rows, "key_bucket >= 0", row_group_rows=ROW_GROUP_ROWS)
    states = dict(rows.group_by("state").len().iter_rows())
    context.log.info(f"consent: {rows.height} citizens through {through}, {states}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows.height,
            "events_version": events.version(),
            "events_through": through.isoformat(),
            **{f"state_{k}": v for k, v in sorted(states.items())},
        },
    )


@_asset(UPTAKE, UPTAKE_SOURCES)
def gold_programme_uptake_daily(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse
) -> dg.MaterializeResult[None]:
    """Daily residents, the funnel's stocks and the daily flows per cell."""
    del lakehouse
    citizens = _scan("silver.citizens").collect()
    events = _scan("silver.programme_events")
    users = _scan(USERS)
    measurements = _scan("silver.centre_measurements")
    seen = pl.collect_all(
        [
            events.select(pl.col("event_date").max()),
            measurements.select(pl.col("measured_on").max()),
            _scan("silver.claims").select(pl.col("start_date").max()),
        ]
    )
    window = data_window(citizens, *(f.to_series() for f in seen))
    if window is None:
        context.log.info("uptake: no citizens in silver yet, nothing to write")
        return dg.MaterializeResult(metadata={"dagster/row_count": 0})
    first, last = window
    frame = uptake_daily(
        citizens.lazy(),
        users,
        events,
        measurements,
        _scan("silver.centre_members"),
        scored_studies(_scan("silver.imaging_studies"), _scan("ai.findings")),
        consent_spans(users.collect(), events.collect()).lazy(),
        first,
        last,
    ).collect(engine="streaming")
    stored = lake.frame(UPTAKE, pl.col("day").is_between(first, last))
    written = write_changes(UPTAKE, frame, stored, "day", _days)
    context.log.info(f"uptake {first}..{last}: {frame.height} rows, {written}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": frame.height,
            "first_day": first.isoformat(),
            "last_day": last.isoformat(),
        },
    )


@_asset(PUBLISHED, (UPTAKE,))
def gold_programme_uptake_published(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse
) -> dg.MaterializeResult[None]:
    """The uptake officials may see: suppressed once, audited by linear programming."""
    del lakehouse
    frame, unresolved = published(_scan(UPTAKE).collect())
    # Small (a few thousand cells): the whole table in one commit, one build's suppression.
    delta.replace(PUBLISHED, frame, "measure IS NOT NULL")
    hidden = int(frame["suppressed"].sum()) if frame.height else 0
    if unresolved:
        context.log.warning(f"published uptake: {unresolved} hidden cells could not be widened")
    context.log.info(f"published uptake: {frame.height} cells, {hidden} suppressed")
    return dg.MaterializeResult(
        metadata={"dagster/row_count": frame.height, "suppressed": hidden, "unresolved": unresolved}
    )


@_asset(SERVICES, SERVICES_SOURCES)
def gold_ai_services_published(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse
) -> dg.MaterializeResult[None]:
    """The AI services' use officials may see: suppressed once, audited by linear
    programming with its counts' relations."""
    del lakehouse
    studies = service_studies(*(_scan(t) for t in SERVICES_SOURCES)).collect()
    frame, unresolved = services_published(studies)
    # Small (services x months): the whole table in one commit, one build's suppression.
    delta.replace(SERVICES, frame, "studies_suppressed IS NOT NULL")
    hidden = int(
        frame.select(pl.sum_horizontal(pl.col("^.*_suppressed$").cast(pl.Int64)).sum()).item()
        if frame.height
        else 0
    )
    if unresolved:
        context.log.warning(f"published AI services: {unresolved} hidden cells not widened")
    context.log.info(f"published AI services: {frame.height} rows, {hidden} counts suppressed")
    return dg.MaterializeResult(
        metadata={"dagster/row_count": frame.height, "suppressed": hidden, "unresolved": unresolved}
    )


GOLD_ASSETS: Final = (
    gold_citizen_timeline,
    gold_citizen_consent,
    gold_programme_uptake_daily,
    gold_programme_uptake_published,
    gold_ai_services_published,
)

gold_job = dg.define_asset_job(
    "gold_job",
    selection=dg.AssetSelection.groups(GROUP),
    description="Rebuild the gold tables from silver.",
)

nightly_gold = dg.ScheduleDefinition(
    name="nightly_gold",
    job=gold_job,
    cron_schedule=NIGHTLY_CRON,
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Rebuild gold every night at 02:00 KST, after the night's deliveries.",
)
