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
from datetime import date, timedelta
from typing import Final

import dagster as dg
import polars as pl

from lakehouse import delta
from lakehouse import read as lake
from lakehouse.buckets import key_bucket_expr
from lakehouse.catalog import table as catalog_table
from lakehouse.consent import CONSENT_EVENTS
from pipelines.defs import checks
from pipelines.defs.resources import Lakehouse
from pipelines.defs.since import WHOLE, Since, since, values
from pipelines.defs.specs import KINDS, OWNERS, key, within
from pipelines.transform.changes import changes
from pipelines.transform.consent import citizen_consent, consent_spans
from pipelines.transform.gold import (
    CLAIMS_FAMILY,
    PartnerSources,
    TimelineSources,
    bucket_groups,
    data_window,
    from_claims,
    in_buckets,
    in_order,
    kst_day,
    pass_size,
    scored_studies,
    timeline,
    touched_passes,
    uptake_daily,
    without_claims,
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
# Key buckets per timeline pass at most: 8 passes of 8 buckets for a small city, smaller passes
# for a large one (``pass_size``: about ``PASS_CITIZENS`` citizens a pass, whatever the city).
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
# What a change in each timeline source touches: the columns naming the citizens (or what leads
# to them: a member's measurements, a study's findings); ``WHOLE``: every citizen.
TIMELINE_CHANGES: Final = {
    "silver.claims": ("citizen_key",),
    "silver.diagnoses": ("citizen_key",),
    "silver.prescriptions": ("citizen_key",),
    "silver.dispensings": ("citizen_key",),
    "silver.centre_measurements": ("member_no",),
    "silver.centre_members": ("citizen_key",),
    "silver.imaging_studies": ("citizen_key",),
    "ai.findings": ("study_instance_uid",),
    # Every visit, diagnosis and medicine row carries its institution's name.
    "silver.institutions": WHOLE,
    "silver.partner_visit_occurrence": ("citizen_key",),
    "silver.partner_condition_occurrence": ("citizen_key",),
    "silver.partner_drug_exposure": ("citizen_key",),
    "silver.partner_measurement": ("citizen_key",),
    # A partner's newest holder name is on each of its rows.
    "silver.partner_counts": WHOLE,
}
# What a change in each uptake source touches: the columns giving the first day it can change
# (the stocks are cumulative: every day from it on).
UPTAKE_CHANGES: Final = {
    # A citizen's cell, age group or residence can change any day of the window.
    "silver.citizens": WHOLE,
    USERS: ("app_user_id", "signed_up_at"),
    EVENTS: ("app_user_id", "event_date"),
    "silver.centre_measurements": ("member_no", "measured_on"),
    "silver.centre_members": ("member_no",),
    # Claims only move the window's last day.
    "silver.claims": ("spec_id",),
    "silver.imaging_studies": ("study_instance_uid",),
    "ai.findings": ("study_instance_uid",),
}
# Past this many citizens touched, the timeline is recomputed in its passes over everyone: a
# narrowed read of that many keys costs about as much as a pass.
MOST_TOUCHED: Final = 200_000
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
    append_new: bool = False,
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
        append_new: Append the rows of groups with no stored row instead of writing them by
            predicate: for groups no partition bounds (a citizen), whose predicate write would
            read every file that might hold the group only to find nothing to replace.
    """
    frame = catalog_table(name).conform(frame)
    found = changes(frame, stored, group)
    rewrite, added = found.rewrite, found.added
    if append_new and rewrite:
        new = set(frame[group].to_list()) - set(stored[group].to_list())
        rewrite = [g for g in rewrite if g not in new]
        added = pl.concat([added, frame.filter(pl.col(group).is_in(sorted(new, key=str)))])
        added = added.sort(group, maintain_order=True)  # a group's rows together in the files
    if rewrite:
        delta.replace(
            name,
            frame.filter(pl.col(group).is_in(rewrite)),
            predicate(rewrite),
            row_group_rows=ROW_GROUP_ROWS,
        )
    if added.height:
        delta.append(name, added)
    return f"{len(rewrite)} {group} groups rewritten, {added.height} rows appended"


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


def _timeline_sources(group: range) -> TimelineSources:
    """The timeline's sources narrowed to the citizens of the key buckets in ``group``."""
    findings = _scan("ai.findings").filter(pl.col("citizen_key").is_not_null())
    return TimelineSources(
        claims=in_buckets(_scan("silver.claims"), group),
        diagnoses=in_buckets(_scan("silver.diagnoses"), group),
        prescriptions=in_buckets(_scan("silver.prescriptions"), group),
        dispensings=in_buckets(_scan("silver.dispensings"), group),
        measurements=_scan("silver.centre_measurements"),
        members=in_buckets(_scan("silver.centre_members"), group),
        studies=in_buckets(
            _scan("silver.imaging_studies").filter(pl.col("citizen_key").is_not_null()), group
        ),
        findings=findings,
        institutions=_scan("silver.institutions").select("ykiho", "name"),
        partners=PartnerSources(
            visits=in_buckets(_scan("silver.partner_visit_occurrence"), group),
            conditions=in_buckets(_scan("silver.partner_condition_occurrence"), group),
            drugs=in_buckets(_scan("silver.partner_drug_exposure"), group),
            measurements=in_buckets(_scan("silver.partner_measurement"), group),
            counts=_scan("silver.partner_counts"),
        ),
    )


def _citizens_sources(keys: list[str]) -> TimelineSources:
    """The timeline's sources narrowed to some citizens: rows with their key, their members'
    measurements, the findings of their studies. The same rows a pass over their buckets would
    give these citizens, so their timeline rows are the same."""
    mine = pl.col("citizen_key").is_in(keys)
    members = _scan("silver.centre_members").filter(mine)
    studies = _scan("silver.imaging_studies").filter(mine)
    return TimelineSources(
        claims=_scan("silver.claims").filter(mine),
        diagnoses=_scan("silver.diagnoses").filter(mine),
        prescriptions=_scan("silver.prescriptions").filter(mine),
        dispensings=_scan("silver.dispensings").filter(mine),
        measurements=_scan("silver.centre_measurements").join(
            members.select("member_no"), on="member_no", how="semi"
        ),
        members=members,
        studies=studies,
        findings=_scan("ai.findings")
        .filter(pl.col("citizen_key").is_not_null())
        .join(studies.select("study_instance_uid"), on="study_instance_uid", how="semi"),
        institutions=_scan("silver.institutions").select("ykiho", "name"),
        partners=PartnerSources(
            visits=_scan("silver.partner_visit_occurrence").filter(mine),
            conditions=_scan("silver.partner_condition_occurrence").filter(mine),
            drugs=_scan("silver.partner_drug_exposure").filter(mine),
            measurements=_scan("silver.partner_measurement").filter(mine),
            counts=_scan("silver.partner_counts"),
        ),
    )


def touched_citizens(found: Since) -> set[str]:
    """The citizens whose timeline rows the sources' changes can touch: the keys on changed
    rows, the citizens of the members whose measurements changed, of the studies whose findings
    changed."""
    keys: set[str] = set()
    for name, columns in TIMELINE_CHANGES.items():
        if columns == ("citizen_key",):
            keys |= values(found.changed(name), "citizen_key")
    members = values(found.changed("silver.centre_measurements"), "member_no")
    studies = values(found.changed("ai.findings"), "study_instance_uid")
    keys |= _citizens_of("silver.centre_members", "member_no", members)
    keys |= _citizens_of("silver.imaging_studies", "study_instance_uid", studies)
    return keys


def _citizens_of(table: str, column: str, found: set[str]) -> set[str]:
    """The citizen keys of ``table``'s rows whose ``column`` is among ``found``."""
    if not found:
        return set()
    rows = _scan(table).filter(pl.col(column).is_in(sorted(found))).select("citizen_key")
    return set(rows.collect()["citizen_key"].drop_nulls())


def _bucket_list(keys: list[str]) -> list[object]:
    frame = pl.DataFrame({"citizen_key": keys}, schema={"citizen_key": pl.String})
    return sorted(frame.select(key_bucket_expr())["citizen_key"].drop_nulls().unique().to_list())


def _buckets_of(keys: list[str]) -> pl.Expr:
    """A filter on the key buckets (partitions) of some citizens: only their files are read."""
    return pl.col("key_bucket").is_in(_bucket_list(keys))


def _of_citizens(keys: list[object]) -> str:
    """The Delta predicate of some citizens' timeline rows: their buckets (partitions) and keys."""
    text = [str(k) for k in keys]
    return f"{_buckets(_bucket_list(text))} AND {within('citizen_key', text)}"


def _stored_rows(name: str, keys: list[str]) -> pl.DataFrame:
    """``citizen_key`` and ``rows``: how many rows ``name`` holds of each of these citizens (0
    for none), counted from the key column of their buckets' files."""
    mine = _buckets_of(keys) & pl.col("citizen_key").is_in(keys)
    counts = lake.scan(name).filter(mine).group_by("citizen_key").len("rows").collect()
    wanted = pl.DataFrame({"citizen_key": keys}, schema={"citizen_key": pl.String})
    return wanted.join(counts, on="citizen_key", how="left").fill_null(0)


def _refresh_citizens(keys: list[str], claims: bool) -> tuple[str, int]:
    """Recompute some citizens' timeline and write what changed in their stored rows; (what
    was written, in words; the rows recomputed). Without ``claims``, their stored claims rows
    are kept rather than recomputed."""
    table = catalog_table(TIMELINE)
    stored = (
        lake.frame(TIMELINE, _buckets_of(keys) & pl.col("citizen_key").is_in(keys))
        if keys
        else pl.DataFrame(schema=table.polars_schema())
    )
    frame = stored.clear()
    recomputed = 0
    if keys:
        sources = _citizens_sources(keys)
        frame = timeline(sources if claims else without_claims(sources)).collect(engine="streaming")
        recomputed = frame.height
        if not claims:
            kept = table.conform(stored.filter(from_claims()))
            frame = in_order(pl.concat([table.conform(frame), kept]).lazy()).collect()
        frame = frame.rechunk()
    written = write_changes(TIMELINE, frame, stored, "citizen_key", _of_citizens, append_new=True)
    return written, recomputed


@_asset(TIMELINE, TIMELINE_SOURCES)
def gold_citizen_timeline(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse
) -> dg.MaterializeResult[None]:
    """Every citizen's timeline from silver: only the citizens whose sources changed since the
    last refresh (in passes of a bounded number of their rows), or everyone in passes of key
    buckets; one commit per pass."""
    del lakehouse  # its setup points the lakehouse modules at this deployment's storage
    found = since(TIMELINE, TIMELINE_CHANGES)
    keys = sorted(touched_citizens(found)) if not found.whole else []
    if not found.whole and len(keys) <= MOST_TOUCHED:
        # A night whose deliveries left the claims family alone (every night but the monthly
        # claims') keeps the touched citizens' stored claims rows: the year's claims unread.
        claims = any(found.changed(name) is not None for name in CLAIMS_FAMILY)
        passes = touched_passes(_stored_rows(TIMELINE, keys)) if keys else [[]]
        each, recomputed = [], 0
        for part in passes:
            done, rows = _refresh_citizens(part, claims)
            each.append(done)
            recomputed += rows
        found.record(TIMELINE)
        context.log.info(
            f"timeline: {len(keys)} citizens touched since the last refresh"
            f"{'' if claims else ' (their claims rows kept: no claims since)'}, in"
            f" {len(passes)} passes: {'; '.join(each)}"
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": delta.state(TIMELINE).rows or 0,
                "citizens_recomputed": len(keys),
                "rows_recomputed": recomputed,
                "passes": len(passes),
                "claims_read": claims,
            },
        )
    context.log.info(f"timeline: recomputed whole ({found.reason or f'{len(keys)} citizens'})")
    rows = 0
    kinds: dict[str, int] = {}
    size = pass_size(delta.state("silver.citizens").rows or 0, BUCKETS_PER_PASS)
    for group in bucket_groups(size):
        # One chunk: delta-rs writes the batches of a chunked frame in parallel, interleaving
        # them, and a file's rows would no longer be sorted by citizen.
        frame = timeline(_timeline_sources(group)).collect(engine="streaming").rechunk()
        stored = lake.frame(TIMELINE, pl.col("key_bucket").is_in(list(group)))
        written = write_changes(TIMELINE, frame, stored, "key_bucket", _buckets)
        rows += frame.height
        for kind, n in frame.group_by("kind").len().iter_rows():
            kinds[kind] = kinds.get(kind, 0) + n
        context.log.info(
            f"timeline buckets {group.start}..{group.stop - 1}: {frame.height} rows, {written}"
        )
    if delta.exists(TIMELINE):
        found.record(TIMELINE)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "citizens_recomputed": -1,
            **{f"rows_{k}": v for k, v in sorted(kinds.items())},
        },
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


def first_changed_day(found: Since) -> date | None:
    """The first day whose uptake the sources' changes can move (the stocks are cumulative, so
    every later day too), None when nothing changed: the day of each changed event, measurement
    or sign-up, and of every event and measurement of an account, member or study that changed
    (a row joins its citizen once their account or membership arrives)."""
    days: list[object] = []
    if (events := found.changed(EVENTS)) is not None:
        days.append(events["event_date"].min())
    if (measured := found.changed("silver.centre_measurements")) is not None:
        days.append(measured["measured_on"].min())
    if (users := found.changed(USERS)) is not None and users.height:
        ids = sorted(values(users, "app_user_id"))
        days.append(users.select(kst_day("signed_up_at").min()).item())
        days.append(
            _scan(EVENTS)
            .filter(pl.col("app_user_id").is_in(ids))
            .select(pl.col("event_date").min())
            .collect()
            .item()
        )
    if members := values(found.changed("silver.centre_members"), "member_no"):
        days.append(
            _scan("silver.centre_measurements")
            .filter(pl.col("member_no").is_in(sorted(members)))
            .select(pl.col("measured_on").min())
            .collect()
            .item()
        )
    studies = values(found.changed("silver.imaging_studies"), "study_instance_uid")
    studies |= values(found.changed("ai.findings"), "study_instance_uid")
    if studies:
        days.append(
            _scan("ai.findings")
            .filter(pl.col("study_instance_uid").is_in(sorted(studies)))
            .select(kst_day("scored_at").min())
            .collect()
            .item()
        )
    found_days = [d for d in days if isinstance(d, date)]
    return min(found_days) if found_days else None


@_asset(UPTAKE, UPTAKE_SOURCES)
def gold_programme_uptake_daily(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse
) -> dg.MaterializeResult[None]:
    """Daily residents, the funnel's stocks and the daily flows per cell: recomputed from the
    first day the sources' changes since the last refresh can move, or over the whole window."""
    del lakehouse
    found = since(UPTAKE, UPTAKE_CHANGES)
    citizens = _scan("silver.citizens").collect()
    events = _scan("silver.programme_events")
    users = _scan(USERS)
    measurements = _scan("silver.centre_measurements")
    # The sources' last days from their logs' statistics: no year of claims read for one value.
    seen = [
        lake.greatest(EVENTS, "event_date"),
        lake.greatest("silver.centre_measurements", "measured_on"),
        lake.greatest("silver.claims", "start_date"),
    ]
    window = data_window(citizens, *(pl.Series([d], dtype=pl.Date) for d in seen))
    if window is None:
        context.log.info("uptake: no citizens in silver yet, nothing to write")
        return dg.MaterializeResult(metadata={"dagster/row_count": 0})
    first, last = window
    start = first
    before = found.before.get("extra")
    if not found.whole and isinstance(before, dict):
        old_first, old_last = (date.fromisoformat(str(before.get(k))) for k in ("first", "last"))
        if old_first == first and old_last <= last:
            changed = first_changed_day(found)
            since_last = old_last + timedelta(days=1)
            start = max(first, min(changed, since_last) if changed else since_last)
    if start > last:
        context.log.info(f"uptake {first}..{last}: nothing changed since the last refresh")
        found.record(UPTAKE, first=first.isoformat(), last=last.isoformat())
        return dg.MaterializeResult(
            metadata={"first_day": first.isoformat(), "last_day": last.isoformat(), "days": 0}
        )
    consenting = events.filter(pl.col("event_type").is_in(list(CONSENT_EVENTS)))
    frame = uptake_daily(
        citizens.lazy(),
        users,
        events,
        measurements,
        _scan("silver.centre_members"),
        scored_studies(_scan("silver.imaging_studies"), _scan("ai.findings")),
        consent_spans(users.collect(), consenting.collect()).lazy(),
        start,
        last,
    ).collect(engine="streaming")
    stored = lake.frame(UPTAKE, pl.col("day").is_between(start, last))
    written = write_changes(UPTAKE, frame, stored, "day", _days)
    found.record(UPTAKE, first=first.isoformat(), last=last.isoformat())
    context.log.info(f"uptake {start}..{last} of {first}..{last}: {frame.height} rows, {written}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": frame.height,
            "first_day": first.isoformat(),
            "last_day": last.isoformat(),
            "days": (last - start).days + 1,
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
