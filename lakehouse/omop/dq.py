"""OHDSI's Data Quality Dashboard over the ``omop.*`` tables: every check type, generated from
the specification, run in DuckDB, with the DQD's statuses (passed, failed, not applicable).

Which checks run comes from the CDM specification (``lakehouse.omop.spec``): every CDM table
gets ``cdmTable`` (a table the platform does not hold is *not applicable*, with that reason);
every field of a held table gets ``cdmField`` and ``measureValueCompleteness``; a required
field ``isRequired``; an integer field ``cdmDatatype``; a key ``isPrimaryKey``; a foreign key
``isForeignKey`` (into a table not held: not applicable); a concept field with a domain
``fkDomain``; a standard concept field (a foreign key to ``concept`` that is not a
``*_source_concept_id``) ``isStandardValidConcept``; a table the specification flags
``measurePersonCompleteness``. What the specification cannot say (the completeness of concept
fields, plausible bounds, the end of a start date, the dates within life and within a visit,
the sex- and unit-specific concepts) comes from the DQD's own threshold files, copied for the
held tables into ``lakehouse/reference/omop/dq_thresholds.csv`` with their sources. Check
types that cannot run here at all are one row each with the reason (``NOT_RUN``), so every
check type of ``DQD_Check_Descriptions_v5.4.csv`` has a row.

Each check carries the DQD's Kahn context, category, subcategory and severity (from the check
descriptions) and a threshold: the share of failing rows, in percent, that still passes
(``DEFAULT_THRESHOLDS``, the DQD's documented defaults, unless the threshold file says
otherwise). A check fails when its failing share exceeds the threshold (any failing row at
0 %). As in the DQD (vignettes/CheckStatusDefinitions.rmd), a check is *not applicable* when
its table is missing or empty, its field is missing or holds no value at all (but for
``isRequired``, ``measureValueCompleteness`` and ``cdmField``), or its concept occurs in no
record; here also
when a table it needs (``person``, ``death``, ``visit_occurrence``, ``concept``) is missing.

A failing check carries an explanation when its failure is expected here
(``lakehouse/reference/omop/dq_explanations.csv``): concept 0 where the platform ships no
mapping (KCD diagnoses, HIRA drug codes), by the project's vocabulary convention.

Evaluation reuses ``lakehouse.quality``: its planners for keys, required fields and foreign
keys, and ``tally``, which counts every check reading the same rows in one query. Results are
counts and codes only: no key, value or sample of any record.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache, partial
from typing import Final, Literal

import polars as pl
from deltalake import DeltaTable

from lakehouse import delta, quality, quality_kept
from lakehouse.catalog import table as catalog_table
from lakehouse.catalog.dq import RESULTS
from lakehouse.catalog.omop import TABLES as HELD
from lakehouse.omop import spec
from lakehouse.quality import ident, literal, relation
from lakehouse.read import connect
from lakehouse.schema import Table

Level = Literal["TABLE", "FIELD", "CONCEPT"]
THRESHOLDS: Final = spec.ROOT / "dq_thresholds.csv"
EXPLANATIONS: Final = spec.ROOT / "dq_explanations.csv"
PERSON: Final = "omop.person"
DEATH: Final = "omop.death"
VISITS: Final = "omop.visit_occurrence"
CONCEPT: Final = "omop.concept"
CDM_SOURCE: Final = "omop.cdm_source"
# The gender concepts the DQD's plausibleGender compares with (concept_plausible_gender.sql).
GENDER: Final = {"Male": 8507, "Female": 8532}
# Events up to 60 days after death are plausible (field_plausible_before_death.sql: late
# claims, post-mortem records); events within a week of their visit (field_within_visit_dates).
AFTER_DEATH_DAYS: Final = 60
VISIT_DAYS: Final = 7
# The DQD's default threshold of each check type, in percent (its vignettes,
# vignettes/checks/<check>.Rmd, "Default Threshold Value"); measureValueCompleteness is 0 % for
# a required field and 100 % for any other (``_default``).
DEFAULT_THRESHOLDS: Final[dict[str, float]] = {
    "cdmTable": 0.0,
    "cdmField": 0.0,
    "isRequired": 0.0,
    "cdmDatatype": 0.0,
    "isPrimaryKey": 0.0,
    "isForeignKey": 0.0,
    "fkDomain": 0.0,
    "isStandardValidConcept": 0.0,
    "measureValueCompleteness": 100.0,
    "measureObservationPeriodOverlap": 0.0,
}
# Check types that cannot run over this platform's omop tables, with the reason (a code named
# by dq.reason.<code>): each is one not-applicable row of the report.
NOT_RUN: Final[dict[str, tuple[str | None, str]]] = {
    # The era tables are derived tables the platform does not build.
    "measureConditionEraCompleteness": ("condition_era", "era_not_built"),
    # fkClass applies to drug_era, dose_era and drug_strength only (the DQD's field file).
    "fkClass": (None, "no_class_field"),
    # Replaced by plausibleAfterBirth, plausibleBeforeDeath and plausibleStartBeforeEnd, which
    # run (DQD 2.5.0 NEWS: "intended to replace plausibleTemporalAfter and plausibleDuringLife").
    "plausibleTemporalAfter": (None, "superseded"),
    "plausibleDuringLife": (None, "superseded"),
    # Needs concept_ancestor; the platform ships single concepts, no hierarchy.
    "plausibleGenderUseDescendants": (None, "no_ancestors"),
}
# A field holding no value at all leaves only these checks applicable (DQD status rules).
ON_EMPTY_FIELDS: Final = frozenset({"cdmField", "isRequired", "measureValueCompleteness"})


@dataclass(frozen=True)
class DqCheck:
    """One check of the report, as generated.

    Attributes:
        level: ``TABLE``, ``FIELD`` or ``CONCEPT``.
        name: The DQD's check type (``checkName``).
        table: The CDM table, lower case (None for a check type that runs nowhere).
        field: The field (FIELD and CONCEPT levels).
        concept_id: The concept (CONCEPT level).
        threshold: The largest failing share, in percent, that passes (None: never run).
        argument: A bound, an end field, a domain, the plausible gender or units.
        source: Where the threshold comes from (``dq_thresholds.csv``'s sources, ``dqd`` for
            the type's default, ``spec`` for the specification's table file).
        not_applicable: Why it cannot run, known when generated (a reason code), or None.
    """

    level: Level
    name: str
    table: str | None
    field: str | None = None
    concept_id: int | None = None
    threshold: float | None = None
    argument: str | None = None
    source: str = "dqd"
    not_applicable: str | None = None

    @property
    def check_id(self) -> str:
        """The DQD's check id: check, table, field and concept, lower case, joined by ``_``."""
        parts = (self.name, self.table, self.field, self.concept_id)
        return "_".join(str(p).lower() for p in parts if p is not None)

    @property
    def kind(self) -> dict[str, str]:
        """The check type's row of ``DQD_Check_Descriptions_v5.4.csv``."""
        return _descriptions()[self.name]

    @property
    def severity(self) -> str:
        return self.kind["severity"]

    @property
    def fatal(self) -> bool:
        return self.severity == "fatal"


@dataclass(frozen=True)
class DqResult:
    """What one check found.

    Attributes:
        check: The check.
        rows: What it counted (rows, persons or distinct values); None when not applicable.
        failing: Of them, those failing the rule; None when not applicable.
        not_applicable: Why the check does not apply (a reason code), or None.
        explanation: Why the failure is expected here (a code), for a failed check only.
    """

    check: DqCheck
    rows: int | None
    failing: int | None
    not_applicable: str | None = None
    explanation: str | None = None

    @property
    def pct(self) -> float | None:
        """Failing as a percentage of those counted (0 when none were)."""
        if self.rows is None or self.failing is None:
            return None
        return 100.0 * self.failing / self.rows if self.rows else 0.0

    @property
    def passed(self) -> bool | None:
        """The DQD's rule: the failing share within the threshold; None when not applicable."""
        pct, threshold = self.pct, self.check.threshold
        if pct is None or threshold is None:
            return None
        return self.failing == 0 if threshold == 0 else pct <= threshold


# --- the reference files ---------------------------------------------------------------------


@cache
def _descriptions() -> dict[str, dict[str, str]]:
    return {row["checkName"]: row for row in spec.check_types()}


def _rows(path_rows: Iterable[str]) -> list[dict[str, str]]:
    return list(csv.DictReader(line for line in path_rows if not line.startswith("#")))


@cache
def threshold_rows() -> tuple[dict[str, str], ...]:
    """``dq_thresholds.csv``: one row per check the DQD declares for a held table, field or
    concept (its threshold, argument and source)."""
    with THRESHOLDS.open(newline="", encoding="utf-8") as f:
        return tuple(_rows(f))


@cache
def explanation_rows() -> tuple[dict[str, str], ...]:
    """``dq_explanations.csv``: the failures expected here, with the code naming why."""
    with EXPLANATIONS.open(newline="", encoding="utf-8") as f:
        return tuple(_rows(f))


def explanation(check: DqCheck) -> str | None:
    """The code of why ``check`` is expected to fail here, or None (a cause to look for)."""
    for row in explanation_rows():
        if (
            row["check"] == check.name
            and fnmatch.fnmatchcase(check.table or "", row["table"])
            and fnmatch.fnmatchcase(check.field or "", row["field"])
        ):
            return row["explanation"]
    return None


def _declared(level: str, name: str, table: str, field_name: str = "") -> list[dict[str, str]]:
    return [
        r
        for r in threshold_rows()
        if (r["level"], r["check"], r["table"], r["field"]) == (level, name, table, field_name)
    ]


# --- generation ----------------------------------------------------------------------------


def _default(name: str, required: bool = False) -> float | None:
    if name == "measureValueCompleteness" and required:
        return 0.0
    return DEFAULT_THRESHOLDS.get(name)


def _from_file(row: dict[str, str], level: Level) -> DqCheck:
    concept = row["concept_id"]
    return DqCheck(
        level,
        row["check"],
        row["table"],
        row["field"] or None,
        int(concept) if concept else None,
        float(row["threshold"]),
        row["argument"] or None,
        row["source"],
    )


def _table_checks() -> list[DqCheck]:
    out: list[DqCheck] = []
    for name in spec.tables():
        held = name in HELD
        out.append(
            DqCheck("TABLE", "cdmTable", name, threshold=0.0)
            if held
            else DqCheck("TABLE", "cdmTable", name, not_applicable="not_held")
        )
        if not held:
            continue
        declared = _declared("TABLE", "measurePersonCompleteness", name)
        table_spec = spec.table_specs()[name]
        if declared:
            out.append(_from_file(declared[0], "TABLE"))
        elif table_spec.person_completeness:
            threshold = table_spec.person_completeness_threshold or 0.0
            out.append(
                DqCheck(
                    "TABLE", "measurePersonCompleteness", name, threshold=threshold, source="spec"
                )
            )
        out += [
            _from_file(r, "TABLE")
            for r in _declared("TABLE", "measureObservationPeriodOverlap", name)
        ]
    return out


def _field_check(
    table: str, f: spec.Field, kind: str, argument: str | None = None, na: str | None = None
) -> DqCheck:
    """A FIELD check generated from the specification, with its type's default threshold."""
    return DqCheck(
        "FIELD",
        kind,
        table,
        f.name,
        threshold=_default(kind, f.required),
        argument=argument,
        not_applicable=na,
    )


def _field_checks(name: str) -> list[DqCheck]:
    """The FIELD checks of one held table, field by field in the specification's order."""
    table = catalog_table(f"omop.{name}")
    out: list[DqCheck] = []
    for f in spec.fields(name):
        check = partial(_field_check, name, f)
        out.append(check("cdmField"))
        if f.required:
            out.append(check("isRequired"))
        if f.datatype.lower() == "integer":
            out.append(check("cdmDatatype"))
        if f.primary_key:
            out.append(check("isPrimaryKey"))
        if f.fk_table:
            held = table.column(f.name).references is not None
            na = None if held or f.fk_table == name else "fk_not_held"
            if held or na:
                out.append(check("isForeignKey", f.fk_table, na))
        if f.fk_table == "concept" and f.fk_domain:
            out.append(check("fkDomain", f.fk_domain))
        if f.fk_table == "concept" and not f.name.endswith("_source_concept_id"):
            out.append(check("isStandardValidConcept"))
        out.append(check("measureValueCompleteness"))
        out += [
            _from_file(r, "FIELD")
            for r in threshold_rows()
            if (r["level"], r["table"], r["field"]) == ("FIELD", name, f.name)
        ]
    return out


def _concept_checks(shipped: frozenset[int] | None) -> list[DqCheck]:
    """The CONCEPT checks of the DQD's concept file whose concept the platform ships; one
    not-applicable row per type when ``omop.concept`` is unknown or ships none of them."""
    out: list[DqCheck] = []
    for name in ("plausibleGender", "plausibleUnitConceptIds"):
        rows = [r for r in threshold_rows() if (r["level"], r["check"]) == ("CONCEPT", name)]
        mine = [
            _from_file(r, "CONCEPT")
            for r in rows
            if shipped is not None and int(r["concept_id"]) in shipped
        ]
        if mine:
            out += mine
            continue
        reason = "no_concepts" if shipped is None else "no_dqd_concept"
        out.append(DqCheck("CONCEPT", name, None, not_applicable=reason))
    return out


def _not_run() -> list[DqCheck]:
    return [
        DqCheck(_level(name), name, table, not_applicable=reason)
        for name, (table, reason) in NOT_RUN.items()
    ]


def _level(name: str) -> Level:
    level = _descriptions()[name]["checkLevel"]
    assert level in ("TABLE", "FIELD", "CONCEPT")
    return level  # type: ignore[return-value]


def generate(shipped: frozenset[int] | None = None) -> list[DqCheck]:
    """Every check of the report, generated from the specification and the threshold file.

    Args:
        shipped: The concept ids ``omop.concept`` holds (the CONCEPT checks run for those);
            None when it has not been written.

    Returns:
        TABLE checks, then each held table's FIELD checks, then the CONCEPT checks and the
        check types that run nowhere, each type of the DQD's list at least once.
    """
    out = _table_checks()
    for name in HELD:
        out += _field_checks(name)
    return out + _concept_checks(shipped) + _not_run()


# --- evaluation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """A check as SQL for ``quality.tally``; ``needs``: tables it reads besides its own;
    ``rising``: the literal of a bound that only rises with the day (``today+1``,
    ``this_year+1``) in ``violates`` = value above it, so its failing rows can only fall."""

    source: str
    eligible: str
    violates: str
    setup: tuple[str, ...] = ()
    needs: tuple[str, ...] = field(default=())
    rising: str | None = None
    keyed: tuple[str, str] | None = None  # a foreign key's table and column


@dataclass(frozen=True)
class _Ctx:
    check: DqCheck
    table: Table
    present: set[str]
    today: date

    @property
    def base(self) -> str:
        return f"{relation(self.table.name)} AS t"

    @property
    def value(self) -> str:
        return f"t.{ident(self.check.field or '')}"

    @property
    def day(self) -> str:
        return f"CAST({self.value} AS DATE)"

    @property
    def not_null(self) -> str:
        return f"{self.value} IS NOT NULL"


def _quality(kind: quality.DQDCheck, argument: str | None = None) -> Callable[[_Ctx], _Plan]:
    """A planner of ``lakehouse.quality`` (keys, required fields, foreign keys) for a check."""

    def planned(x: _Ctx) -> _Plan:
        check = quality.Check(x.table.name, kind, (x.check.field or "",), argument)
        p = quality.plan(check, x.table, x.present, x.today)
        return _Plan(p.source, p.eligible, p.violates, tuple(p.setup))

    return planned


def _foreign_key(x: _Ctx) -> _Plan:
    references = x.table.column(x.check.field or "").references or ""
    table, column = references.rsplit(".", 1)
    return replace(_quality("isForeignKey", references)(x), keyed=(table, column))


def _datatype(x: _Ctx) -> _Plan:
    """Integers only (as the DQD): a value whose text is no whole number fails."""
    text = f"CAST({x.value} AS VARCHAR)"
    return _Plan(x.base, "TRUE", f"{x.not_null} AND NOT regexp_matches({text}, '^-?[0-9]+$')")


def _concept_join(x: _Ctx, violates: str) -> _Plan:
    source = f"{x.base} LEFT JOIN {relation(CONCEPT)} AS c ON {x.value} = c.concept_id"
    return _Plan(source, "TRUE", f"c.concept_id <> 0 AND ({violates})", needs=(CONCEPT,))


def _domain(x: _Ctx) -> _Plan:
    return _concept_join(x, f"c.domain_id IS DISTINCT FROM {literal(x.check.argument or '')}")


def _standard(x: _Ctx) -> _Plan:
    return _concept_join(
        x, "c.standard_concept IS DISTINCT FROM 'S' OR c.invalid_reason IS NOT NULL"
    )


def _nulls(x: _Ctx) -> _Plan:
    return _Plan(x.base, "TRUE", f"{x.value} IS NULL")


def _source_value(x: _Ctx, suffix: str) -> str | None:
    """The ``*_source_value`` field paired with a concept field (``unit_concept_id`` →
    ``unit_source_value``), if the table has one."""
    stem = (x.check.field or "").removesuffix(suffix)
    name = f"{stem}_source_value"
    return name if name in x.table.names else None


def _concept_record(suffix: str) -> Callable[[_Ctx], _Plan]:
    """standard/sourceConceptRecordCompleteness: concept 0; in a field that is not required,
    also no concept where the source has a value (the DQD's vignette)."""

    def planned(x: _Ctx) -> _Plan:
        paired = _source_value(x, suffix)
        required = x.table.column(x.check.field or "").required
        if required or paired is None:
            return _Plan(x.base, x.not_null, f"{x.value} = 0")
        given = f"t.{ident(paired)} IS NOT NULL"
        return _Plan(
            x.base, f"{x.not_null} OR {given}", f"{x.value} = 0 OR ({x.value} IS NULL AND {given})"
        )

    return planned


def _source_values(x: _Ctx) -> _Plan:
    """Distinct source values, each failing when a row of it has standard concept 0."""
    standard = ident(x.check.argument or "")
    values = (
        f"(SELECT {ident(x.check.field or '')} AS v, bool_or({standard} = 0) AS unmapped "
        f"FROM {relation(x.table.name)} GROUP BY ALL) AS t"
    )
    return _Plan(values, "TRUE", "coalesce(t.unmapped, FALSE)")


def _bound(x: _Ctx) -> str:
    """A bound of the threshold file as SQL: a number, a date, ``today+1``, ``this_year+1``."""
    argument = x.check.argument or ""
    if argument == "today+1":
        return f"DATE '{(x.today + timedelta(days=1)).isoformat()}'"
    if argument == "this_year+1":
        return str(x.today.year + 1)
    if argument.count("-") == 2:
        return f"DATE '{date.fromisoformat(argument).isoformat()}'"
    return str(float(argument))


def _compared(x: _Ctx) -> str:
    column_type = x.table.column(x.check.field or "").type
    return x.day if column_type in ("date", "timestamp") else x.value


def _low(x: _Ctx) -> _Plan:
    return _Plan(x.base, x.not_null, f"{_compared(x)} < {_bound(x)}")


def _high(x: _Ctx) -> _Plan:
    bound = _bound(x)
    rising = bound if x.check.argument in ("today+1", "this_year+1") else None
    return _Plan(x.base, x.not_null, f"{_compared(x)} > {bound}", rising=rising)


def _start_before_end(x: _Ctx) -> _Plan:
    end = f"CAST(t.{ident(x.check.argument or '')} AS DATE)"
    return _Plan(x.base, f"{x.not_null} AND {end} IS NOT NULL", f"{x.day} > {end}")


def _after_birth(x: _Ctx) -> _Plan:
    """Birth is birth_datetime, or year, month and day of birth (1 where missing), as the DQD."""
    born = (
        "min(coalesce(CAST(birth_datetime AS DATE), make_date(year_of_birth, "
        "coalesce(month_of_birth, 1), coalesce(day_of_birth, 1))))"
    )
    people = f"(SELECT person_id, {born} AS born FROM {relation(PERSON)} GROUP BY ALL) AS p"
    source = f"{x.base} LEFT JOIN {people} ON t.person_id = p.person_id"
    return _Plan(source, x.not_null, f"{x.day} < p.born", needs=(PERSON,))


def _before_death(x: _Ctx) -> _Plan:
    deaths = f"(SELECT person_id, max(death_date) AS died FROM {relation(DEATH)} GROUP BY ALL) AS d"
    source = f"{x.base} JOIN {deaths} ON t.person_id = d.person_id"
    late = f"d.died + INTERVAL {AFTER_DEATH_DAYS} DAY"
    return _Plan(source, x.not_null, f"{x.day} > {late}", needs=(DEATH,))


def _within_visit(x: _Ctx) -> _Plan:
    visits = f"{relation(VISITS)} AS v"
    source = f"{x.base} JOIN {visits} ON t.visit_occurrence_id = v.visit_occurrence_id"
    window = f"INTERVAL {VISIT_DAYS} DAY"
    outside = f"{x.day} < v.visit_start_date - {window} OR {x.day} > v.visit_end_date + {window}"
    return _Plan(source, "TRUE", outside, needs=(VISITS,))


def _gender(x: _Ctx) -> _Plan:
    genders = f"SELECT person_id, any_value(gender_concept_id) AS g FROM {relation(PERSON)}"
    people = f"({genders} GROUP BY ALL) AS p"
    source = f"{x.base} LEFT JOIN {people} ON t.person_id = p.person_id"
    expected = GENDER[x.check.argument or ""]
    return _Plan(
        source,
        f"{x.value} = {x.check.concept_id}",
        f"p.g IS DISTINCT FROM {expected}",
        needs=(PERSON,),
    )


def _units(x: _Ctx) -> _Plan:
    """Units other than those listed (and 0, which standardConceptRecordCompleteness counts);
    ``-1`` lists no unit as the only plausible one."""
    units = [int(u) for u in (x.check.argument or "").split("|")]
    unit = "t.unit_concept_id"
    wrong = (
        f"{unit} <> 0" if units == [-1] else f"{unit} NOT IN ({', '.join(map(str, [*units, 0]))})"
    )
    return _Plan(x.base, f"{x.value} = {x.check.concept_id}", f"{unit} IS NOT NULL AND ({wrong})")


PLANNERS: Final[dict[str, Callable[[_Ctx], _Plan]]] = {
    "isRequired": _quality("isRequired"),
    "isPrimaryKey": _quality("isPrimaryKey"),
    "isForeignKey": _foreign_key,
    "cdmDatatype": _datatype,
    "fkDomain": _domain,
    "isStandardValidConcept": _standard,
    "measureValueCompleteness": _nulls,
    "standardConceptRecordCompleteness": _concept_record("_concept_id"),
    "sourceConceptRecordCompleteness": _concept_record("_source_concept_id"),
    "sourceValueCompleteness": _source_values,
    "plausibleValueLow": _low,
    "plausibleValueHigh": _high,
    "plausibleStartBeforeEnd": _start_before_end,
    "plausibleAfterBirth": _after_birth,
    "plausibleBeforeDeath": _before_death,
    "withinVisitDates": _within_visit,
    "plausibleGender": _gender,
    "plausibleUnitConceptIds": _units,
}
# What a missing table a check needs makes it: not applicable, with this reason.
NEEDS_REASON: Final = {
    PERSON: "no_person",
    DEATH: "no_death",
    VISITS: "no_visits",
    CONCEPT: "no_concepts",
}


def _table_plan(check: DqCheck, present: set[str]) -> _Plan | str:
    """A TABLE check's plan, or why it does not apply."""
    own = f"omop.{check.table}"
    if check.name == "measurePersonCompleteness":
        if PERSON not in present:
            return "no_person"
        records = f"(SELECT DISTINCT person_id FROM {relation(own)}) AS r"
        source = f"{relation(PERSON)} AS p LEFT JOIN {records} ON p.person_id = r.person_id"
        return _Plan(source, "TRUE", "r.person_id IS NULL")
    periods = relation(own)
    # Overlapping or back-to-back periods of one person (table_observation_period_overlap.sql).
    overlapping = (
        f"(SELECT DISTINCT a.person_id FROM {periods} AS a JOIN {periods} AS b "
        "ON a.person_id = b.person_id AND a.observation_period_id <> b.observation_period_id "
        "WHERE (a.observation_period_start_date <= b.observation_period_end_date "
        "AND a.observation_period_end_date >= b.observation_period_start_date) "
        "OR a.observation_period_end_date + 1 = b.observation_period_start_date) AS o"
    )
    people = f"(SELECT DISTINCT person_id FROM {periods}) AS t"
    return _Plan(
        f"{people} LEFT JOIN {overlapping} ON t.person_id = o.person_id",
        "TRUE",
        "o.person_id IS NOT NULL",
    )


def _columns(name: str) -> set[str]:
    """The columns a written table has (its Delta schema), for ``cdmField``."""
    dt: DeltaTable = delta.open_table(name)
    return {f.name for f in dt.schema().fields}


@dataclass
class _Run:
    """One evaluation: the tables present, the plans to count, the results so far."""

    present: set[str]
    today: date
    results: dict[int, DqResult] = field(default_factory=dict)
    plans: dict[int, _Plan] = field(default_factory=dict)
    columns: dict[str, set[str]] = field(default_factory=dict)

    def decide(self, i: int, check: DqCheck) -> None:
        """Settle ``check`` now (not applicable, or a presence check) or plan it."""
        if check.not_applicable:
            self.results[i] = DqResult(check, None, None, check.not_applicable)
            return
        own = f"omop.{check.table}"
        if check.name == "cdmTable":
            self.results[i] = DqResult(check, 1, 0 if own in self.present else 1)
            return
        if own not in self.present:
            self.results[i] = DqResult(check, None, None, "not_written")
            return
        if own not in self.columns:  # once per table: opening a Delta table reads its log
            self.columns[own] = _columns(own)
        have = self.columns[own]
        if check.name == "cdmField":
            self.results[i] = DqResult(check, 1, 0 if check.field in have else 1)
            return
        if check.field is not None and check.field not in have:
            self.results[i] = DqResult(check, None, None, "no_field")
            return
        if check.level == "TABLE":
            planned = _table_plan(check, self.present)
        else:
            plan = PLANNERS[check.name](_Ctx(check, catalog_table(own), self.present, self.today))
            missing = [n for n in plan.needs if n not in self.present]
            planned = NEEDS_REASON[missing[0]] if missing else plan
        if isinstance(planned, str):
            self.results[i] = DqResult(check, None, None, planned)
        else:
            self.plans[i] = planned


def _statuses(results: list[DqResult]) -> list[DqResult]:
    """The DQD's not-applicable rules on counted results: an empty table's FIELD and CONCEPT
    checks (but ``cdmField``), a field without any value's checks (but ``ON_EMPTY_FIELDS``),
    a concept check whose concept occurs in no record."""
    sizes: dict[str, int] = {}
    empty_fields: set[tuple[str | None, str | None]] = set()
    for r in results:
        c = r.check
        if c.name == "measureValueCompleteness" and r.rows is not None:
            sizes[c.table or ""] = r.rows
            if r.rows and r.failing == r.rows:
                empty_fields.add((c.table, c.field))
    out = []
    for r in results:
        c = r.check
        reason = None
        if r.not_applicable or c.level == "TABLE" or c.name == "cdmField":
            out.append(r)
            continue
        if sizes.get(c.table or "") == 0:
            reason = "empty_table"
        elif (c.table, c.field) in empty_fields and c.name not in ON_EMPTY_FIELDS:
            reason = "empty_field"
        elif c.level == "CONCEPT" and r.rows == 0:
            reason = "concept_absent"
        out.append(replace(r, rows=None, failing=None, not_applicable=reason) if reason else r)
    return out


def _explained(results: list[DqResult]) -> list[DqResult]:
    return [
        replace(r, explanation=explanation(r.check)) if r.passed is False else r for r in results
    ]


def shipped_concepts() -> frozenset[int] | None:
    """The concept ids ``omop.concept`` holds, or None when it has not been written."""
    if not delta.exists(CONCEPT):
        return None
    from lakehouse import read

    ids = read.scan(CONCEPT).select("concept_id").collect().to_series()
    return frozenset(int(i) for i in ids.drop_nulls())


# --- counts kept between runs ----------------------------------------------------------------
# A check's counts change only when a table it reads changes. The nightly report keeps, in the
# results table's state (``lakehouse.delta.record_state``), each plan's counts and the Delta
# version of every table it read, and counts again only the plans whose tables changed since:
# a day without claims leaves the visits, conditions and drug exposures (most of the CDM's rows)
# as they were. A plan is known by its SQL, so a changed check is a new plan; a bound that rises
# with the day (``_Plan.rising``) is left out of that and kept beside the counts: with the same
# tables, a plan that failed no row under an earlier bound fails none under a later one.
#
# A day appends to the tables it changes (the centre's measurements, the day's images): a plan
# that judges each row of its own table on its own (the table named once, as ``t``: values,
# concepts, foreign keys into tables that did not change, or that no row broke and whose table
# lost no key) is then counted on the appended rows alone and added to its kept counts
# (``lakehouse.quality_kept.appended_view``), as the catalogue's checks of a derived table are.
COUNTED: Final = "counted"


def _stamp(name: str) -> str:
    """A table's identity and version: its rows are the same while this is."""
    table = delta.open_table(name)
    return f"{table.metadata().id}@{table.version()}"


def _key(plan: _Plan) -> str:
    """A plan's SQL, its rising bound left out, as a short hash."""
    text = [plan.source, plan.eligible, plan.violates, *plan.setup]
    if plan.rising is not None:
        text = [t.replace(plan.rising, "{rising}") for t in text]
    return hashlib.sha256(json.dumps(text).encode()).hexdigest()[:24]


def _named(plan: _Plan, stamps: Mapping[str, str]) -> list[str]:
    """The tables a plan's SQL names, in order."""
    text = " ".join((plan.source, plan.eligible, plan.violates, *plan.setup))
    return [n for n in sorted(stamps) if relation(n) in text]


def _read(plan: _Plan, stamps: Mapping[str, str]) -> str:
    """The identities and versions of the tables a plan's SQL names."""
    return ",".join(stamps[n] for n in _named(plan, stamps))


def _rising_holds(plan: _Plan, rising: object, failing: int) -> bool:
    """Whether counts taken under the bound ``rising`` hold under the plan's: the same bound,
    or an earlier one under which no row failed."""
    return rising == plan.rising or (
        failing == 0
        and isinstance(rising, str)
        and plan.rising is not None
        and rising <= plan.rising
    )


@lru_cache(maxsize=1024)
def _same_rows(name: str, old: str, now: str) -> bool:
    """Whether a table holds the rows it held at an earlier stamp: the same stamp, or the same
    table with only commits since that change no row (the properties a night records on a
    table it wrote nothing to, the upkeep's compactions)."""
    if old == now:
        return True
    old_id, _, old_version = old.rpartition("@")
    new_id, _, new_version = now.rpartition("@")
    return (
        old_id == new_id
        and int(old_version) <= int(new_version)
        and not delta.row_commits(name, int(old_version), int(new_version))
    )


def _kept(
    plan: _Plan, stamps: Mapping[str, str], kept: Mapping[str, object]
) -> tuple[int, int] | None:
    """A plan's counts from the last run, if they still hold: every table it reads holds the
    rows it held then."""
    found = kept.get(_key(plan))
    if not isinstance(found, list) or len(found) != 4 or not isinstance(found[0], str):
        return None
    named, before = _named(plan, stamps), (found[0].split(",") if found[0] else [])
    if len(before) != len(named) or not all(
        _same_rows(name, old, stamps[name]) for name, old in zip(named, before, strict=True)
    ):
        return None
    _, rows, failing, rising = found
    if not _rising_holds(plan, rising, int(failing)):
        return None
    return int(rows), int(failing)


def _own(plan: _Plan, check: DqCheck) -> str | None:
    """The plan's own table when it judges each of its rows on its own (the table named once,
    as ``t``, at the start of the plan's rows), so its counts add up over appended rows."""
    own = f"omop.{check.table}"
    text = " ".join((plan.source, plan.eligible, plan.violates, *plan.setup))
    if plan.source.startswith(f"{relation(own)} AS t") and text.count(relation(own)) == 1:
        return own
    return None


def _since(
    plan: _Plan, own: str, stamps: Mapping[str, str], kept: Mapping[str, object]
) -> tuple[int, int, int] | None:
    """For a plan whose own table only may have changed since its counts were kept: the version
    of its own table they were counted at, and the counts; None when another table it reads
    changed, its table was made anew, or the counts do not hold under today's bound."""
    found = kept.get(_key(plan))
    if not isinstance(found, list) or len(found) != 4 or not isinstance(found[0], str):
        return None
    named = _named(plan, stamps)
    before = found[0].split(",")
    if len(before) != len(named) or not _rising_holds(plan, found[3], int(found[2])):
        return None
    version = None
    for name, old in zip(named, before, strict=True):
        if name != own:
            if not _same_rows(name, old, stamps[name]) and not _keys_kept(
                plan, name, old, stamps[name], found[2]
            ):
                return None
            continue
        old_id, _, old_version = old.rpartition("@")
        if old_id != stamps[own].rpartition("@")[0]:
            return None
        version = int(old_version)
    return None if version is None else (version, int(found[1]), int(found[2]))


def _keys_kept(plan: _Plan, name: str, old: str, now: str, failing: object) -> bool:
    """Whether a foreign key's counts over the old rows hold although the table it references
    changed (``old`` and ``now``, that table's stamps): no row failed, and the same table lost no
    key since (a night rewrites ``omop.person`` for the persons it touched, keys and all)."""
    if plan.keyed is None or plan.keyed[0] != name or failing != 0:
        return False
    return _no_key_lost(name, plan.keyed[1], old, now)


@lru_cache(maxsize=256)
def _no_key_lost(name: str, column: str, old: str, now: str) -> bool:
    """``delta.keys_kept`` between two stamps of the same table, asked once per run however
    many tables' keys point into it (every OMOP table's ``person_id``)."""
    old_id, _, old_version = old.rpartition("@")
    return old_id == now.rpartition("@")[0] and delta.keys_kept(name, column, int(old_version))


def _appended_counts(
    plans: Mapping[int, _Plan],
    owns: Mapping[int, tuple[str, int]],
    present: set[str],
    now: Mapping[str, int],
) -> dict[int, tuple[int, int]]:
    """The counts over the rows each plan's own table appended since its kept version (a plan
    whose table lost or rewrote a file since is left out: counted whole)."""
    found: dict[int, tuple[int, int]] = {}
    groups: dict[tuple[str, int], list[int]] = {}
    for i, at in owns.items():
        groups.setdefault(at, []).append(i)
    for (own, version), members in sorted(groups.items()):
        added = delta.appended_rows(own, version, now[own], most=quality_kept.APPENDED_MOST)
        if added is None:
            continue
        if added.is_empty():
            found |= dict.fromkeys(members, (0, 0))
            continue
        con = quality_kept.appended_view(catalog_table(own), added, present)
        try:
            counted = quality.tally(con, [plans[i] for i in members])
        finally:
            con.close()
        found |= dict(zip(members, counted, strict=True))
    return found


def evaluate(today: date | None = None) -> list[DqResult]:
    """Run every check of the report on the omop tables' current Delta versions.

    Args:
        today: The day ``today+1`` bounds count from; today in Korea by default (fixed in
            tests).

    Returns:
        One result per generated check (``generate``), in its order.
    """
    return evaluate_kept(today, {})[0]


def evaluate_kept(
    today: date | None, kept: Mapping[str, object]
) -> tuple[list[DqResult], dict[str, list[object]]]:
    """``evaluate``, keeping the counts in ``kept`` (the last run's) of every plan whose tables
    did not change since; returns the results and the counts to keep for the next run."""
    checks = generate(shipped_concepts())
    present = {f"omop.{t}" for t in HELD if delta.exists(f"omop.{t}")}
    run = _Run(present, today or quality.today_in_korea())
    for i, check in enumerate(checks):
        run.decide(i, check)
    # The versions are taken before counting: a write meanwhile is counted again next run.
    stamps = {name: _stamp(name) for name in sorted(present)}
    order = sorted(run.plans)
    reads = {i: _read(run.plans[i], stamps) for i in order}
    counts = {i: found for i in order if (found := _kept(run.plans[i], stamps, kept))}
    earlier: dict[int, tuple[int, int, int]] = {}
    owns: dict[int, tuple[str, int]] = {}
    for i in (i for i in order if i not in counts):
        own = _own(run.plans[i], checks[i])
        if own and (since := _since(run.plans[i], own, stamps, kept)):
            earlier[i], owns[i] = since, (own, since[0])
    versions = {n: int(stamps[n].rpartition("@")[2]) for n in present}
    for i, (rows, failing) in _appended_counts(run.plans, owns, present, versions).items():
        counts[i] = (earlier[i][1] + rows, earlier[i][2] + failing)
    todo = [i for i in order if i not in counts]
    if todo:
        con = connect(sorted(present))
        try:
            counts |= dict(zip(todo, quality.tally(con, [run.plans[i] for i in todo]), strict=True))
        finally:
            con.close()
    memo: dict[str, list[object]] = {}
    for i in order:
        rows, failing = counts[i]
        run.results[i] = DqResult(checks[i], rows, failing)
        memo[_key(run.plans[i])] = [reads[i], rows, failing, run.plans[i].rising]
    return _explained(_statuses([run.results[i] for i in range(len(checks))])), memo


# --- the results table ---------------------------------------------------------------------


def source_release() -> date | None:
    """``omop.cdm_source``'s source release date (the data the report checked), if any."""
    if not delta.exists(CDM_SOURCE):
        return None
    from lakehouse import read

    found = read.scan(CDM_SOURCE).select(pl.col("source_release_date").max()).collect().item()
    return found if isinstance(found, date) else None


def frame(results: Sequence[DqResult], run_at: datetime) -> pl.DataFrame:
    """The results as rows of ``gold.omop_dq_results``, for one run started at ``run_at``."""
    release = source_release()
    run_id = run_at.astimezone(UTC).isoformat(timespec="seconds")
    rows = []
    for r in results:
        c = r.check
        rows.append(
            {
                "run_id": run_id,
                "run_at": run_at,
                "check_id": c.check_id,
                "level": c.level,
                "check_name": c.name,
                "cdm_table": c.table,
                "cdm_field": c.field,
                "concept_id": c.concept_id,
                "context": c.kind["kahnContext"],
                "category": c.kind["kahnCategory"],
                "subcategory": c.kind["kahnSubcategory"] or None,
                "severity": c.severity,
                "threshold_pct": c.threshold,
                "threshold_source": None if c.threshold is None else c.source,
                "argument": c.argument,
                "rows_checked": r.rows,
                "rows_failing": r.failing,
                "pct_failing": r.pct,
                "passed": r.passed,
                "not_applicable_reason": r.not_applicable,
                "explanation": r.explanation,
                "cdm_source_release": release,
            }
        )
    table = catalog_table(RESULTS)
    return pl.DataFrame(rows, schema=table.polars_schema())


def record(rows: pl.DataFrame) -> delta.WriteResult:
    """Write one run's rows (``frame``) to ``gold.omop_dq_results``, replacing the previous
    run's in one commit (readers see one whole run; earlier runs stay in the table's Delta
    history)."""
    return delta.replace(RESULTS, rows, "check_id IS NOT NULL")


def run(
    today: date | None = None, now: datetime | None = None
) -> tuple[pl.DataFrame, delta.WriteResult]:
    """Evaluate every check now and record the run (what ``gjh dq`` and the Dagster asset do),
    counting again only the checks whose tables changed since the last run (``COUNTED``);
    returns the run's rows as recorded."""
    started = now or datetime.now(UTC)
    before = delta.read_state(RESULTS).get(COUNTED)
    results, memo = evaluate_kept(today, before if isinstance(before, dict) else {})
    rows = frame(results, started)
    written = record(rows)
    delta.record_state(RESULTS, {COUNTED: memo})
    return rows, written


SUMMARY_SCHEMA: Final[dict[str, pl.DataType]] = {
    "category": pl.Utf8(),
    "level": pl.Utf8(),
    "run": pl.Int64(),
    "passed": pl.Int64(),
    "failed": pl.Int64(),
    "failed_fatal": pl.Int64(),
    "not_applicable": pl.Int64(),
}
CATEGORIES: Final = ("Conformance", "Completeness", "Plausibility")
LEVELS: Final = ("TABLE", "FIELD", "CONCEPT")


def summary(rows: pl.DataFrame) -> pl.DataFrame:
    """Checks run, passed, failed (fatal among them) and not applicable per Kahn category and
    level, from rows of ``gold.omop_dq_results`` (one run), in the DQD's order; every
    category and level pair, with zeros where it has no check."""
    passed = pl.col("passed").fill_null(False)
    failed = (~pl.col("passed")).fill_null(False)
    counted = rows.group_by("category", "level").agg(
        pl.col("passed").is_not_null().sum().alias("run"),
        passed.sum().alias("passed"),
        failed.sum().alias("failed"),
        (failed & (pl.col("severity") == "fatal")).sum().alias("failed_fatal"),
        pl.col("passed").is_null().sum().alias("not_applicable"),
    )
    every = pl.DataFrame(
        [(c, lv) for c in CATEGORIES for lv in LEVELS], schema=["category", "level"], orient="row"
    )
    return (
        every.join(counted, on=["category", "level"], how="left")
        .fill_null(0)
        .select(pl.col(c).cast(t) for c, t in SUMMARY_SCHEMA.items())
    )
