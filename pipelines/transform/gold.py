"""Silver into gold: the tables shaped for the apps' lookups (plain Polars, lazy).

* ``timeline``: ``gold.citizen_timeline``, every event of a citizen's health history as one row
  of structured, language-free fields (codes, a diagnosis's role, dose, frequency and days,
  amounts, value and unit, the study and its AI result), so the citizen app and the clinician
  view read one partition (``key_bucket``, ``lakehouse.buckets``) and name everything at display
  in the session's language. Only names that arrive with the data are stored as text: a KCD
  code's and a drug's name from the code lists, the institution's name from the register, a
  study's description from its DICOM header. Only the version of a statement in use counts:
  silver keeps every delivered version of a statement's children (diagnoses, prescriptions,
  dispensings), and the one in use is the one whose ``delivery_id`` equals
  ``silver.claims.delivery_id`` for that ``spec_id``.
* ``uptake_daily``: ``gold.programme_uptake_daily``, the programme's daily figures by district,
  dong, age group and sex, raw: the funnel's stocks (residents, app users, consented, linked,
  AI service users, centre users) and the daily flows. No official reads it: the published,
  suppressed tables are made from it (``pipelines.transform.published``).

Nothing here reads or writes the lakehouse: ``pipelines.defs.gold`` scans silver, calls these per
group of key buckets (so memory is bounded by a fraction of the city, not all of it) and writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Final

import polars as pl

from lakehouse.buckets import BUCKETS, key_bucket_expr
from lakehouse.catalog import table as catalog_table
from lakehouse.reference import codes

TIMELINE: Final = catalog_table("gold.citizen_timeline")
UPTAKE: Final = catalog_table("gold.programme_uptake_daily")
KST: Final = "Asia/Seoul"
# Age groups of the uptake table: (label, lowest age, first age past the group).
AGE_GROUPS: Final = (
    ("0-19", 0, 20),
    ("20-39", 20, 40),
    ("40-64", 40, 65),
    ("65-74", 65, 75),
    ("75+", 75, 200),
)
SEXES: Final = ("M", "F")
SIGNUP: Final = "signup"
LOGIN: Final = "login"
# Kinds in the order a day's events read naturally: the visit, then what came of it.
KIND_ORDER: Final = (
    "admission",
    "visit",
    "diagnosis",
    "prescription",
    "dispensing",
    "imaging",
    "measurement",
)


@dataclass(frozen=True)
class TimelineSources:
    """The silver (and AI) tables the timeline is built from, as lazy frames (already narrowed
    to the key buckets of one pass, or whole). Tables not built yet are empty frames of their
    schema."""

    claims: pl.LazyFrame
    diagnoses: pl.LazyFrame
    prescriptions: pl.LazyFrame
    dispensings: pl.LazyFrame
    measurements: pl.LazyFrame
    members: pl.LazyFrame
    studies: pl.LazyFrame
    findings: pl.LazyFrame
    institutions: pl.LazyFrame
    # Hospital partners' linked records (silver.partner_*) and their names, when built.
    partners: PartnerSources | None = None


@dataclass(frozen=True)
class PartnerSources:
    """The partners' silver tables the timeline takes (linked rows only count) and each
    partner's delivered name (``silver.partner_counts.holder``)."""

    visits: pl.LazyFrame
    conditions: pl.LazyFrame
    drugs: pl.LazyFrame
    measurements: pl.LazyFrame
    counts: pl.LazyFrame


def _names(code_list: str, key: str, value: str = "name_ko") -> dict[str, str]:
    frame = codes(code_list)
    return dict(zip(frame[key].to_list(), frame[value].to_list(), strict=True))


def inpatient_forms() -> frozenset[str]:
    """Statement forms of inpatient care (the form types whose Korean name ends in 입원:
    의과입원, 치과입원, 한방입원): their statements are admissions, the others visits."""
    return frozenset(k for k, v in _names("form_types", "fom_tp_cd").items() if v.endswith("입원"))


def _kcd_name(column: str) -> pl.Expr:
    """The KCD name of a code stored with the dot (the list keeps codes without it); null when
    the list does not know the code (the app then shows the code)."""
    return (
        pl.col(column)
        .str.replace(".", "", literal=True)
        .replace_strict(_names("kcd", "code"), default=None, return_dtype=pl.Utf8)
    )


def _drug_name(column: str) -> pl.Expr:
    """Ingredient name and strength (``암로디핀베실산염 5 mg``), null if unlisted."""
    drugs = codes("drugs")
    names = dict(
        zip(
            drugs["gnl_nm_cd"].to_list(),
            (f"{n} {s}" for n, s in zip(drugs["name_ko"], drugs["strength"], strict=True)),
            strict=True,
        )
    )
    return pl.col(column).replace_strict(names, default=None, return_dtype=pl.Utf8)


def _ref(table: str, *key: str) -> pl.Expr:
    """Where a timeline row came from, ``<table>:<key>:<key>…``: a screen finds the source row by
    it, so the timeline need not copy the row."""
    return pl.format(table + ":{}" * len(key), *(pl.col(k) for k in key))


def _rows(frame: pl.LazyFrame, **fields: pl.Expr) -> pl.LazyFrame:
    """Timeline rows: the named fields, every other column of the table null (the
    ``key_bucket`` is added by ``timeline``)."""
    schema = TIMELINE.polars_schema()
    return frame.select(
        fields[name].cast(dtype).alias(name) if name in fields else pl.lit(None, dtype).alias(name)
        for name, dtype in schema.items()
        if name != "key_bucket"
    )


def _named(frame: pl.LazyFrame, institutions: pl.LazyFrame, code: str, name: str) -> pl.LazyFrame:
    """``frame`` with the register's name of the institution in column ``code`` as ``name``."""
    return frame.join(
        institutions.select(pl.col("ykiho").alias(code), pl.col("name").alias(name)),
        on=code,
        how="left",
    )


def visits(claims: pl.LazyFrame, institutions: pl.LazyFrame) -> pl.LazyFrame:
    """One row per statement in use: an admission for inpatient forms, a visit otherwise
    (pharmacy statements included: the trip to the pharmacy is a visit; its drugs are the
    dispensing rows). Coded by its main diagnosis, form type and department; the days of care,
    the total cost and the patient's share as numbers."""
    inpatient = pl.col("form_type").is_in(sorted(inpatient_forms()))
    return _rows(
        _named(claims, institutions, "ykiho", "_place"),
        citizen_key=pl.col("citizen_key"),
        event_date=pl.col("start_date"),
        end_date=pl.col("end_date"),
        kind=pl.when(inpatient).then(pl.lit("admission")).otherwise(pl.lit("visit")),
        code=pl.col("main_dx"),
        name=_kcd_name("main_dx"),
        form_type=pl.col("form_type"),
        department=pl.col("department"),
        days=pl.col("visit_days"),
        amount=pl.col("total_amount"),
        patient_amount=pl.col("patient_amount"),
        institution=pl.col("ykiho"),
        institution_name=pl.col("_place"),
        source_ref=_ref("silver.claims", "spec_id"),
    )


def in_use(children: pl.LazyFrame, claims: pl.LazyFrame) -> pl.LazyFrame:
    """The child rows of the statement versions in use, with their statement's institution."""
    heads = claims.select("spec_id", "delivery_id", pl.col("ykiho").alias("_claim_ykiho"))
    return children.join(heads, on=["spec_id", "delivery_id"], how="inner")


def diagnoses(rows: pl.LazyFrame, claims: pl.LazyFrame, institutions: pl.LazyFrame) -> pl.LazyFrame:
    """One row per diagnosis in use, with its KCD name and role (``main`` or ``sub``)."""
    return _rows(
        _named(in_use(rows, claims), institutions, "_claim_ykiho", "_place"),
        citizen_key=pl.col("citizen_key"),
        event_date=pl.col("diagnosed_on"),
        kind=pl.lit("diagnosis"),
        code=pl.col("kcd"),
        name=_kcd_name("kcd"),
        role=pl.col("kind"),
        institution=pl.col("_claim_ykiho"),
        institution_name=pl.col("_place"),
        source_ref=_ref("silver.diagnoses", "spec_id", "delivery_id", "seq"),
    )


def _medicine(date_column: str) -> dict[str, pl.Expr]:
    """The fields prescriptions and dispensings share: the ingredient, its name, the dosage
    (dose per time, times a day, days supplied) and the last day the supply covers."""
    return {
        "citizen_key": pl.col("citizen_key"),
        "event_date": pl.col(date_column),
        "end_date": pl.col(date_column) + pl.duration(days=pl.col("days").cast(pl.Int64) - 1),
        "code": pl.col("ingredient_code"),
        "name": _drug_name("ingredient_code"),
        "dose": pl.col("dose"),
        "per_day": pl.col("per_day"),
        "days": pl.col("days"),
        "amount": pl.col("amount"),
        "prescription_no": pl.col("prescription_no"),
    }


def prescriptions(
    rows: pl.LazyFrame, claims: pl.LazyFrame, institutions: pl.LazyFrame
) -> pl.LazyFrame:
    """One row per prescribed drug in use, spanning the days it supplies."""
    return _rows(
        _named(in_use(rows, claims), institutions, "ykiho", "_place"),
        **_medicine("issued_on"),
        kind=pl.lit("prescription"),
        institution=pl.col("ykiho"),
        institution_name=pl.col("_place"),
        source_ref=_ref("silver.prescriptions", "spec_id", "delivery_id", "line_no"),
    )


def dispensings(
    rows: pl.LazyFrame, claims: pl.LazyFrame, institutions: pl.LazyFrame
) -> pl.LazyFrame:
    """One row per dispensed drug in use, at the pharmacy, with the prescriber beside it."""
    named = _named(in_use(rows, claims), institutions, "pharmacy_ykiho", "_place")
    return _rows(
        _named(named, institutions, "prescriber_ykiho", "_prescriber"),
        **_medicine("dispensed_on"),
        kind=pl.lit("dispensing"),
        institution=pl.col("pharmacy_ykiho"),
        institution_name=pl.col("_place"),
        prescriber=pl.col("prescriber_ykiho"),
        prescriber_name=pl.col("_prescriber"),
        source_ref=_ref("silver.dispensings", "spec_id", "delivery_id", "line_no"),
    )


def ai_results(findings: pl.LazyFrame) -> pl.LazyFrame:
    """Each scored study's AI result in one row: from the newest model version that scored it,
    the finding with the highest score (the one a reader looks at first), and whether any
    finding was beyond its threshold."""
    scored = findings.filter(pl.col("status") == "scored")
    newest = pl.col("scored_at") == pl.col("scored_at").max().over(
        "study_instance_uid", "service", "finding_code"
    )
    return (
        scored.filter(newest)
        .sort(
            "study_instance_uid",
            "score",
            "service",
            descending=[False, True, False],
            nulls_last=True,
        )
        .group_by("study_instance_uid", maintain_order=True)
        .agg(
            pl.col("service").first().alias("_service"),
            pl.col("finding_code").first().alias("_finding"),
            pl.col("score").first().alias("_score"),
            pl.col("positive").fill_null(False).any().alias("_positive"),
        )
    )


def imaging(
    studies: pl.LazyFrame, findings: pl.LazyFrame, institutions: pl.LazyFrame
) -> pl.LazyFrame:
    """One row per imaging study of a known citizen sent through the AI platform (the
    programme's own data), with its modalities, its description as the DICOM header gives it,
    and its AI result (null while it is not scored)."""
    known = studies.filter(pl.col("citizen_key").is_not_null() & pl.col("study_date").is_not_null())
    return _rows(
        _named(known, institutions, "institution", "_place").join(
            ai_results(findings), on="study_instance_uid", how="left"
        ),
        citizen_key=pl.col("citizen_key"),
        event_date=pl.col("study_date"),
        kind=pl.lit("imaging"),
        code=pl.col("modalities"),
        name=pl.col("study_description"),
        institution=pl.col("institution"),
        institution_name=pl.coalesce("_place", "institution_name"),
        study_uid=pl.col("study_instance_uid"),
        ai_service=pl.col("_service"),
        ai_finding=pl.col("_finding"),
        ai_score=pl.col("_score"),
        ai_positive=pl.col("_positive"),
        source_ref=_ref("silver.imaging_studies", "study_instance_uid"),
    )


def measurements(rows: pl.LazyFrame, members: pl.LazyFrame) -> pl.LazyFrame:
    """One row per centre measurement of a known member (the member register gives the citizen;
    a device row whose member is not registered yet joins on a later run): the measure's code,
    device, context (a balance condition, an EMG channel), value and unit. The institution is
    left empty: the centre is not a HIRA institution."""
    context = pl.col("context").fill_null("")
    return _rows(
        rows.join(members.select("member_no", "citizen_key"), on="member_no", how="inner"),
        citizen_key=pl.col("citizen_key"),
        event_date=pl.col("measured_on"),
        kind=pl.lit("measurement"),
        code=pl.col("measure"),
        device=pl.col("device"),
        context=pl.col("context"),
        value=pl.col("value"),
        unit=pl.col("unit"),
        source_ref=pl.format(
            "silver.centre_measurements:{}:{}:{}",
            pl.col("measurement_id"),
            pl.col("measure"),
            context,
        ),
    )


# OMOP standard measurement concepts that are centre measures too (the domain brief's Korean ETL
# conventions: height 3036277, weight 3025315, systolic 3028737, diastolic 3012888), so a
# partner's blood pressure is named like the centre's; any other is shown by its source value.
CONCEPT_MEASURES: Final = {
    3036277: "height_cm",
    3025315: "weight_kg",
    3028737: "systolic_mmhg",
    3012888: "diastolic_mmhg",
}
INPATIENT_VISIT: Final = 9201  # OMOP visit concept: inpatient visit


def _partner(frame: pl.LazyFrame, counts: pl.LazyFrame, table: str, id_column: str) -> pl.LazyFrame:
    """A partner table's linked rows with the partner's newest delivered name as ``_holder``
    and the row's reference (``silver.partner_<table>:<partner>:<id>``) as ``_ref``."""
    holders = (
        counts.sort("delivered_at")
        .group_by("partner")
        .agg(pl.col("holder").drop_nulls().last().alias("_holder"))
    )
    return (
        frame.filter(pl.col("citizen_key").is_not_null())
        .join(holders, on="partner", how="left")
        .with_columns(
            pl.format(f"silver.partner_{table}:{{}}:{{}}", "partner", id_column).alias("_ref")
        )
    )


def partner_records(src: PartnerSources) -> list[pl.LazyFrame]:
    """Timeline rows of partners' linked records: visits (admissions for inpatient visits),
    conditions as diagnoses, drug exposures as prescriptions, measurements; each with
    ``partner`` set and the partner's name as ``institution_name`` (no institution code: a
    partner is not the register's institution, so no clinic's own-records rule shows them)."""
    counts = src.counts
    where = {"partner": pl.col("partner"), "institution_name": pl.col("_holder")}
    inpatient = pl.col("visit_concept_id") == INPATIENT_VISIT
    return [
        _rows(
            _partner(src.visits, counts, "visit_occurrence", "visit_occurrence_id"),
            citizen_key=pl.col("citizen_key"),
            event_date=pl.col("visit_start_date"),
            end_date=pl.col("visit_end_date"),
            kind=pl.when(inpatient).then(pl.lit("admission")).otherwise(pl.lit("visit")),
            source_ref=pl.col("_ref"),
            **where,
        ),
        _rows(
            _partner(src.conditions, counts, "condition_occurrence", "condition_occurrence_id"),
            citizen_key=pl.col("citizen_key"),
            event_date=pl.col("condition_start_date"),
            end_date=pl.col("condition_end_date"),
            kind=pl.lit("diagnosis"),
            code=pl.col("condition_source_value"),
            name=_kcd_name("condition_source_value"),
            source_ref=pl.col("_ref"),
            **where,
        ),
        _rows(
            _partner(src.drugs, counts, "drug_exposure", "drug_exposure_id"),
            citizen_key=pl.col("citizen_key"),
            event_date=pl.col("drug_exposure_start_date"),
            end_date=pl.col("drug_exposure_end_date"),
            kind=pl.lit("prescription"),
            code=pl.col("drug_source_value"),
            name=_drug_name("drug_source_value"),
            days=pl.col("days_supply"),
            source_ref=pl.col("_ref"),
            **where,
        ),
        _rows(
            _partner(src.measurements, counts, "measurement", "measurement_id"),
            citizen_key=pl.col("citizen_key"),
            event_date=pl.col("measurement_date"),
            kind=pl.lit("measurement"),
            code=pl.col("measurement_concept_id").replace_strict(
                CONCEPT_MEASURES, default=pl.col("measurement_source_value"), return_dtype=pl.Utf8
            ),
            value=pl.col("value_as_number"),
            unit=pl.col("unit_source_value"),
            source_ref=pl.col("_ref"),
            **where,
        ),
    ]


def in_buckets(frame: pl.LazyFrame, buckets: Iterable[int]) -> pl.LazyFrame:
    """Only the rows of citizens in ``buckets`` (a pass of the timeline build)."""
    return frame.filter(key_bucket_expr().is_in(sorted(buckets)))


# Citizens per build pass, about (the timeline's and the OMOP tables' whole builds): a pass holds
# its citizens' rows of every source at once. At 300,000 citizens and a year, passes of 8 buckets
# (37,500 citizens) peaked at 7.5 GiB for the timeline (docs/performance.md, "The city's year");
# memory grows with the citizens of a pass, not with the city.
PASS_CITIZENS: Final = 12_000


def pass_size(citizens: int, most: int) -> int:
    """Key buckets per build pass for a city of ``citizens``: at most ``most``, fewer as the
    city grows, so that a pass holds about ``PASS_CITIZENS`` of them (a power of two, so the
    groups divide the buckets; at least one bucket, a 64th of the city). More passes read the
    silver sources more often; fewer hold more at once."""
    fit = PASS_CITIZENS * BUCKETS // max(citizens, 1)
    size = 1
    while size * 2 <= min(most, fit):
        size *= 2
    return size


def bucket_groups(size: int) -> list[range]:
    """The key buckets split into consecutive groups of ``size``: one build pass and one commit
    each (``range(0, 8)``, ``range(8, 16)``, ...)."""
    if size < 1 or BUCKETS % size:
        raise ValueError(f"group size must divide {BUCKETS}")
    return [range(lo, lo + size) for lo in range(0, BUCKETS, size)]


# A night's touched citizens are recomputed in passes of at most about this many of their
# stored rows. A centre member's year holds some 1,900 device values; the city's 3,664 citizens
# touched by one day (nearly all members) were some 7 M rows, recomputed and compared in one
# frame, and that night peaked at 18.5 GiB (docs/performance.md, "The new day's memory").
TOUCHED_PASS_ROWS: Final = 1_000_000


def touched_passes(
    rows: pl.DataFrame, most_rows: int | None = None, most_citizens: int = PASS_CITIZENS
) -> list[list[str]]:
    """Touched citizens in passes that bound what a night's refresh holds at once: in order of
    key bucket then key (a pass reads few buckets' files), cut before a pass would pass
    ``most_rows`` stored rows (``TOUCHED_PASS_ROWS``) or ``most_citizens`` citizens; a citizen
    with more rows than that is a pass alone.

    Args:
        rows: ``citizen_key`` and ``rows``: each touched citizen's stored rows (0 if none yet).
        most_rows: The rows a pass may hold.
        most_citizens: The citizens a pass may hold.
    """
    most = TOUCHED_PASS_ROWS if most_rows is None else most_rows
    ordered = rows.with_columns(key_bucket_expr().alias("_bucket")).sort("_bucket", "citizen_key")
    passes: list[list[str]] = []
    held = most + 1  # the first citizen opens a pass
    for key, n in ordered.select("citizen_key", "rows").iter_rows():
        if held + n > most or len(passes[-1]) >= most_citizens:
            passes.append([])
            held = 0
        passes[-1].append(key)
        held += n
    return passes


def timeline(src: TimelineSources) -> pl.LazyFrame:
    """``gold.citizen_timeline`` rows from the silver tables, sorted by citizen and date so a
    citizen's rows sit together in the partition's files (row-group statistics on
    ``citizen_key`` then let a reader skip the rest of the partition)."""
    parts = [
        visits(src.claims, src.institutions),
        diagnoses(src.diagnoses, src.claims, src.institutions),
        prescriptions(src.prescriptions, src.claims, src.institutions),
        dispensings(src.dispensings, src.claims, src.institutions),
        imaging(src.studies, src.findings, src.institutions),
        measurements(src.measurements, src.members),
        *(partner_records(src.partners) if src.partners is not None else []),
    ]
    rows = pl.concat(parts, how="vertical").with_columns(key_bucket_expr().alias("key_bucket"))
    return in_order(rows)


def in_order(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Timeline rows in the table's columns and its order: by citizen, day, kind and source."""
    order = {k: i for i, k in enumerate(KIND_ORDER)}
    return rows.sort(
        "citizen_key",
        "event_date",
        pl.col("kind").replace_strict(order, return_dtype=pl.Int64),
        "source_ref",
    ).select(TIMELINE.names)


# The claims family: the silver tables of the national claims and the pharmacies' dispensings,
# and the timeline rows made from them (visits and admissions, diagnoses, prescriptions,
# dispensings; the register of institutions names them, but a change to it recomputes every
# citizen). They are by far the largest sources, and they arrive monthly: a day's deliveries (the
# centre, imaging, the AI findings, the app) never change them. A citizen's claims rows depend on
# the claims family's rows of that citizen only, so a night that did not change the family keeps
# the rows stored (``pipelines.defs.gold``) instead of reading the year's claims again.
CLAIMS_FAMILY: Final = (
    "silver.claims",
    "silver.diagnoses",
    "silver.prescriptions",
    "silver.dispensings",
)


def from_claims() -> pl.Expr:
    """Whether a timeline row was made from the claims family: by the table its ``source_ref``
    names (``<table>:<key>...``)."""
    return pl.col("source_ref").str.extract(r"^([^:]+):", 1).is_in(CLAIMS_FAMILY)


def without_claims(src: TimelineSources) -> TimelineSources:
    """The sources with the claims family's tables empty (their schemas kept, nothing read):
    ``timeline`` then makes every row but the claims family's."""
    return replace(
        src,
        claims=src.claims.clear(),
        diagnoses=src.diagnoses.clear(),
        prescriptions=src.prescriptions.clear(),
        dispensings=src.dispensings.clear(),
    )


# --- programme uptake -----------------------------------------------------------------------


def _birthday(age: str) -> pl.Expr:
    """The day a citizen turns ``age``. Silver keeps only birth year and month (quasi-identifiers
    kept coarse on purpose), so a birthday is taken as the first of the birth month."""
    return pl.date(pl.col("birth_year") + pl.col(age), pl.col("birth_month"), 1)


def residence_segments(citizens: pl.LazyFrame, first: date, last: date) -> pl.LazyFrame:
    """Each citizen's residence in ``[first, last]`` cut at the birthdays that move them to the
    next age group: rows ``(citizen_key, district_code, dong_code, age_group, sex, start,
    end)`` with
    ``end`` exclusive. A citizen yields at most one row per age group, so counting residents per
    day is a sum of interval starts and ends, never a citizen-by-day expansion (1.43 M citizens
    over years would be billions of rows)."""
    groups = pl.LazyFrame(
        {
            "age_group": [g for g, _, _ in AGE_GROUPS],
            "_lo": [lo for _, lo, _ in AGE_GROUPS],
            "_hi": [hi for _, _, hi in AGE_GROUPS],
        }
    )
    end = last + timedelta(days=1)
    return (
        citizens.select(
            "citizen_key",
            "district_code",
            "dong_code",
            "sex",
            "birth_year",
            "birth_month",
            "resident_from",
            "resident_to",
        )
        .join(groups, how="cross")
        .with_columns(
            pl.max_horizontal("resident_from", _birthday("_lo"), pl.lit(first)).alias("start"),
            pl.min_horizontal(
                pl.col("resident_to").fill_null(pl.lit(end)), _birthday("_hi"), pl.lit(end)
            ).alias("end"),
        )
        .filter(pl.col("start") < pl.col("end"))
        .select("citizen_key", *CELL, "start", "end")
    )


CELL: Final = ("district_code", "dong_code", "age_group", "sex")
# The uptake table's stocks (counted on each day, so a period's figure is its last day's) and
# flows (counted per day, so a period's figure is their sum).
STOCKS: Final = ("residents", "app_users", "consented", "linked", "ai_users", "centre_users")
FLOWS: Final = ("signups", "active_users", "centre_visitors")


def _interval_counts(segments: pl.LazyFrame, column: str, last: date) -> pl.LazyFrame:
    """Per cell and day, how many ``[start, end)`` intervals cover the day: +1 at each start,
    -1 at each end, summed cumulatively over the days later (``_grid``)."""
    starts = segments.select(*CELL, pl.col("start").alias("day"), pl.lit(1).alias("_d"))
    ends = segments.filter(pl.col("end") <= last).select(
        *CELL, pl.col("end").alias("day"), pl.lit(-1).alias("_d")
    )
    return (
        pl.concat([starts, ends])
        .group_by(*CELL, "day")
        .agg(pl.col("_d").sum().cast(pl.Int64).alias(column))
    )


def _place(events: pl.LazyFrame, segments: pl.LazyFrame, column: str) -> pl.LazyFrame:
    """Count ``(citizen_key, day)`` events per cell, each in the citizen's district, age group
    and sex on that day. Events of people not resident that day (moved out, unknown key) are not
    counted: the table describes the resident population, so rates against ``residents`` hold."""
    return (
        events.join(segments, on="citizen_key", how="inner")
        .filter((pl.col("start") <= pl.col("day")) & (pl.col("day") < pl.col("end")))
        .group_by(*CELL, "day")
        .agg(pl.len().cast(pl.Int64).alias(column))
    )


def kst_day(column: str) -> pl.Expr:
    """The Korean calendar day of a UTC timestamp (the programme's days are KST days)."""
    return pl.col(column).dt.convert_time_zone(KST).dt.date()


def data_window(citizens: pl.DataFrame, *days: pl.Series) -> tuple[date, date] | None:
    """The days the uptake table covers: from the first day anyone is on the register (the
    baseline extract) to the last day any source reports (register changes, app events, centre
    measurements, claims). None when nobody is on the register yet."""
    if not citizens.height:
        return None
    first = citizens["resident_from"].min()
    seen = [
        citizens["resident_from"].max(),
        citizens["died_on"].max(),
        citizens.select(pl.col("resident_to") - timedelta(days=1))["resident_to"].max(),
        *(s.max() for s in days if s.len()),
    ]
    last = max(d for d in seen if isinstance(d, date))
    return (first, last) if isinstance(first, date) else None


def _firsts(frame: pl.LazyFrame, measure: str) -> pl.LazyFrame:
    """Spans from each citizen's first ``day`` in ``frame`` on, open-ended (a stock that, once
    reached, stays: an account signed up, a study scored, a visit to the centre)."""
    return frame.group_by("citizen_key").agg(
        pl.lit(measure).alias("measure"),
        pl.col("day").min().alias("_from"),
        pl.lit(None, pl.Date).alias("_to"),
    )


def _during(segments: pl.LazyFrame, spans: pl.LazyFrame) -> pl.LazyFrame:
    """The residence segments cut to the spans of one measure (a citizen counts in a cell on
    the days they are resident in it and the measure stands for them)."""
    return (
        segments.join(spans, on="citizen_key", how="inner")
        .with_columns(
            pl.max_horizontal("start", "_from").alias("start"),
            pl.min_horizontal("end", pl.col("_to").fill_null(pl.col("end"))).alias("end"),
        )
        .filter(pl.col("start") < pl.col("end"))
        .select(segments.collect_schema().names())
    )


def uptake_daily(
    citizens: pl.LazyFrame,
    app_users: pl.LazyFrame,
    events: pl.LazyFrame,
    centre_measurements: pl.LazyFrame,
    centre_members: pl.LazyFrame,
    scored: pl.LazyFrame,
    consents: pl.LazyFrame,
    first: date,
    last: date,
) -> pl.LazyFrame:
    """``gold.programme_uptake_daily`` for every day in ``[first, last]`` and every cell
    (district × dong × age group × sex, dongs as found on the register), zeros included.

    Flows count what happened that day; stocks count the residents for whom something holds
    on that day (each resident once, in the cell they are in that day).

    Args:
        citizens: ``silver.citizens``; the district, dong and sex a citizen has, the age group
            on the day (see ``residence_segments``).
        app_users: ``silver.app_users``. ``signups`` counts accounts signed up that day (KST);
            ``app_users`` counts residents with an account signed up on or before that day.
        events: ``silver.programme_events``; ``active_users`` counts residents with a login
            that day (several logins or accounts count once).
        centre_measurements: ``silver.centre_measurements``; ``centre_visitors`` counts
            residents measured that day, whatever and however often; ``centre_users`` those
            measured on or before that day.
        centre_members: ``silver.centre_members``, member number to citizen key.
        scored: ``(citizen_key, day)`` of every study an AI service scored (``scored_studies``):
            ``ai_users`` counts residents with a study scored on or before that day.
        consents: ``consent_spans``: ``consented`` and ``linked`` count residents whose
            record-link consent stands, and whose records are linked under it, that day.
        first: The first day.
        last: The last day.
    """
    segments = residence_segments(citizens, first, last)
    signed = app_users.select("citizen_key", kst_day("signed_up_at").alias("day")).filter(
        pl.col("day") <= last
    )
    logins = (
        events.filter(pl.col("event_type") == LOGIN)
        .select("app_user_id", pl.col("event_date").alias("day"))
        .filter(pl.col("day").is_between(first, last))
        .unique()
        .join(app_users.select("app_user_id", "citizen_key"), on="app_user_id", how="inner")
        .select("citizen_key", "day")
        .unique()
    )
    measured = (
        centre_measurements.select("member_no", pl.col("measured_on").alias("day"))
        .filter(pl.col("day") <= last)
        .unique()
        .join(centre_members.select("member_no", "citizen_key"), on="member_no", how="inner")
        .select("citizen_key", "day")
        .unique()
    )
    visitors = measured.filter(pl.col("day") >= first)
    spans = pl.concat(
        [
            _firsts(signed, "app_users"),
            _firsts(scored.filter(pl.col("day") <= last), "ai_users"),
            _firsts(measured, "centre_users"),
            consents.select("citizen_key", "measure", "_from", "_to"),
        ]
    )
    days = pl.LazyFrame({"day": pl.date_range(first, last, "1d", eager=True)})
    cells = (
        citizens.select("district_code", "dong_code")
        .unique()
        .join(pl.LazyFrame({"age_group": [g for g, _, _ in AGE_GROUPS]}), how="cross")
        .join(pl.LazyFrame({"sex": list(SEXES)}), how="cross")
    )
    grid = days.join(cells, how="cross")
    counts = {
        "residents": _interval_counts(segments, "residents", last),
        "signups": _place(signed.filter(pl.col("day") >= first), segments, "signups"),
        "active_users": _place(logins, segments, "active_users"),
        "centre_visitors": _place(visitors, segments, "centre_visitors"),
        **{
            m: _interval_counts(_during(segments, spans.filter(pl.col("measure") == m)), m, last)
            for m in STOCKS
            if m != "residents"
        },
    }
    for column, frame in counts.items():
        grid = grid.join(frame, on=["day", *CELL], how="left")
        grid = grid.with_columns(pl.col(column).fill_null(0))
    return (
        grid.sort(*CELL, "day")
        .with_columns(pl.col(c).cum_sum().over(list(CELL)) for c in STOCKS)
        .sort("day", *CELL)
        .select(UPTAKE.names)
    )


def scored_studies(studies: pl.LazyFrame, findings: pl.LazyFrame) -> pl.LazyFrame:
    """``(citizen_key, day)``: each study an AI service scored, on the KST day of its first
    score, for the citizen the study belongs to (``silver.imaging_studies``)."""
    return (
        findings.filter(pl.col("status") == "scored")
        .group_by("study_instance_uid")
        .agg(pl.col("scored_at").min())
        .join(
            studies.filter(pl.col("citizen_key").is_not_null()).select(
                "study_instance_uid", "citizen_key"
            ),
            on="study_instance_uid",
            how="inner",
        )
        .select("citizen_key", kst_day("scored_at").alias("day"))
    )
