"""Data-quality checks derived from the catalogue, in the OHDSI Data Quality Dashboard's terms.

Every check is generated from a table's declaration (``lakehouse.catalog``), never written by
hand, so a column that gains ``required=True`` or a ``pattern`` is checked from the next run on,
and ``DATA_QUALITY.md`` (``render_markdown``) documents exactly what runs. The check types and
their Kahn categories (conformance, completeness, plausibility) are the DQD's
(``DQD_Check_Descriptions_v5.4.csv``):

* ``isPrimaryKey``: no two rows share the table's key;
* ``isRequired``: a required column is never null (DQD's ``measureValueCompleteness`` of a
  required field);
* ``isForeignKey``: a value exists in the table it references;
* ``fieldFormat``: a text value matches the column's pattern (a local addition: the DQD's own
  format check, ``cdmDatatype``, only covers integers);
* ``isStandardValidConcept``: a code belongs to its reference code list (OMOP's "standard,
  valid concept" is, here, "listed in ``lakehouse/reference/codes``");
* ``plausibleValueLow`` / ``plausibleValueHigh``: a number lies within the column's bounds;
* ``plausibleAfterBirth`` / ``plausibleBeforeDeath``: an event falls within the citizen's life,
  from the first day of the birth month (the register keeps the month only) to ``died_on``
  (DQD v5.4 split its ``plausibleDuringLife`` into these two, and so do we, so a failure says
  which end is wrong); declared by ``Table.during_life``;
* ``plausibleStartBeforeEnd``: a row's start is not after its end;
* ``plausibleNotInFuture``: no date lies after today in Korea (a local addition: a future date
  is a parsing or clock error, never a real event).

Severity follows the DQD's own split. Checks the DQD marks ``fatal`` (keys, required fields,
foreign keys) are fatal here with a threshold of 0 %: one violation means the table cannot be
joined or trusted as the apps assume, so the Dagster check is blocking and stops downstream
assets. Conformance and plausibility checks are warnings: a wrong code or an odd value is worth
seeing but does not break any reader, and real registers have a small tail of odd-but-true
records, so plausibility passes up to 1 % of rows (the DQD's customary threshold) and
conformance, which silver already enforces by quarantining, passes only at 0 %.

Evaluation runs in DuckDB over the Delta tables (``lakehouse.read.connect``): one scan per table
counts every single-table check at once; keys, foreign keys and life checks join. A result holds
the number of violating rows, their share of the rows the check applies to, and up to
``SAMPLES`` keys of violating rows: the table's key columns (or the citizen key), never the
offending values or any other personal data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Final, Literal, Protocol
from zoneinfo import ZoneInfo

import duckdb

from lakehouse.catalog import INTAKE, TABLES
from lakehouse.delta import exists, spec
from lakehouse.read import connect
from lakehouse.reference import code_set, kcd_with_dot
from lakehouse.schema import Column, Table

DQDCheck = Literal[
    "isPrimaryKey",
    "isRequired",
    "isForeignKey",
    "fieldFormat",
    "isStandardValidConcept",
    "plausibleValueLow",
    "plausibleValueHigh",
    "plausibleAfterBirth",
    "plausibleBeforeDeath",
    "plausibleStartBeforeEnd",
    "plausibleNotInFuture",
]
Severity = Literal["fatal", "warning"]


@dataclass(frozen=True)
class CheckType:
    """What a DQD check type means and how strict it is by default.

    Attributes:
        kahn: The Kahn framework's category and subcategory (as the DQD files them).
        severity: ``fatal`` blocks downstream assets; ``warning`` is reported only.
        threshold: The largest share of violating rows, in percent, that still passes.
        meaning: The rule in words, with ``{column}`` and ``{argument}`` placeholders.
        dqd: Whether the type is the DQD's own (else a local addition).
    """

    kahn: str
    severity: Severity
    threshold: float
    meaning: str
    dqd: bool = True


CHECK_TYPES: Final[dict[DQDCheck, CheckType]] = {
    "isPrimaryKey": CheckType(
        "Conformance / Relational", "fatal", 0.0, "no two rows share {column}"
    ),
    "isRequired": CheckType("Completeness", "fatal", 0.0, "{column} is never null"),
    "isForeignKey": CheckType(
        "Conformance / Relational", "fatal", 0.0, "each value of {column} exists in `{argument}`"
    ),
    "fieldFormat": CheckType(
        "Conformance / Value", "warning", 0.0, "{column} matches `{argument}`", dqd=False
    ),
    "isStandardValidConcept": CheckType(
        "Conformance / Value", "warning", 0.0, "{column} is a code of the `{argument}` list"
    ),
    "plausibleValueLow": CheckType(
        "Plausibility / Atemporal", "warning", 1.0, "{column} is at least {argument}"
    ),
    "plausibleValueHigh": CheckType(
        "Plausibility / Atemporal", "warning", 1.0, "{column} is at most {argument}"
    ),
    "plausibleAfterBirth": CheckType(
        "Plausibility / Temporal",
        "warning",
        1.0,
        "{column} is not before the birth month of the `{argument}` citizen",
    ),
    "plausibleBeforeDeath": CheckType(
        "Plausibility / Temporal",
        "warning",
        1.0,
        "{column} is not after the `{argument}` citizen's `died_on`",
    ),
    "plausibleStartBeforeEnd": CheckType(
        "Plausibility / Temporal", "warning", 1.0, "{column} is not after `{argument}`"
    ),
    "plausibleNotInFuture": CheckType(
        "Plausibility / Temporal",
        "warning",
        0.0,
        "{column} is not after today (Asia/Seoul)",
        dqd=False,
    ),
}
SAMPLES: Final = 5
CITIZENS: Final = "silver.citizens"
# Layers checked in full. Bronze holds deliveries as delivered (text, unvalidated on purpose:
# conforming them is silver's job, with a quarantine); the ledger, quarantine and vault get the
# structural checks only, because quarantine holds exactly the records that failed the rules
# and the vault is written before silver.citizens exists, so cross-table checks cannot hold.
FULL_LAYERS: Final = frozenset({"silver", "gold", "ai"})
STRUCTURAL: Final[frozenset[DQDCheck]] = frozenset({"isPrimaryKey", "isRequired"})
KST: Final = ZoneInfo("Asia/Seoul")


@dataclass(frozen=True)
class Check:
    """One check of one table, as declared by the catalogue.

    Attributes:
        table: The checked table (``<layer>.<name>``).
        type: The DQD check type.
        columns: The checked column (several for a composite primary key).
        argument: What the column is checked against: a referenced ``table.column``, a pattern,
            a code list, a bound, the end column, or the citizen column of a life check.
    """

    table: str
    type: DQDCheck
    columns: tuple[str, ...]
    argument: str | float | None = None

    @property
    def name(self) -> str:
        """``<table>:<type>:<columns>``, unique in the lakehouse."""
        return f"{self.table}:{self.type}:{','.join(self.columns)}"

    @property
    def dagster_name(self) -> str:
        """The check's name within its asset (Dagster allows only letters, digits and ``_``)."""
        return f"{self.type}_{'_'.join(c.lstrip('_') for c in self.columns)}"

    @property
    def severity(self) -> Severity:
        return CHECK_TYPES[self.type].severity

    @property
    def fatal(self) -> bool:
        return self.severity == "fatal"

    @property
    def threshold(self) -> float:
        """The largest share of violating rows, in percent, that still passes."""
        return CHECK_TYPES[self.type].threshold

    @property
    def rule(self) -> str:
        """The rule in words."""
        argument = self.argument
        if isinstance(argument, float) and argument.is_integer():
            argument = int(argument)
        return CHECK_TYPES[self.type].meaning.format(
            column=" + ".join(f"`{c}`" for c in self.columns), argument=argument
        )

    @property
    def references(self) -> tuple[str, ...]:
        """Other tables the check reads (for ordering: they must be written first)."""
        if self.type == "isForeignKey":
            return (str(self.argument).rsplit(".", 1)[0],)
        if self.type in ("plausibleAfterBirth", "plausibleBeforeDeath"):
            return (CITIZENS,)
        return ()


@dataclass(frozen=True)
class CheckResult:
    """What one check found.

    Attributes:
        check: The check.
        rows: Rows the check applies to (the denominator: non-null values for value checks,
            as the DQD counts them).
        violations: Rows breaking the rule.
        samples: Up to ``SAMPLES`` keys of violating rows (key columns joined by `` / ``).
        note: Why the result is vacuous or partial (a table not written yet), if it is.
        kept_since: The table version whose kept count this result adds the rows appended
            since to (``lakehouse.quality_kept``); None when the whole table was counted.
    """

    check: Check
    rows: int
    violations: int
    samples: tuple[str, ...] = ()
    note: str | None = None
    kept_since: int | None = None

    @property
    def share(self) -> float:
        """Violating rows as a percentage of the rows checked (0 when none were)."""
        return 100.0 * self.violations / self.rows if self.rows else 0.0

    @property
    def passed(self) -> bool:
        """Whether the share of violations is within the check's threshold (DQD's rule)."""
        if self.check.threshold == 0:
            return self.violations == 0
        return self.share <= self.check.threshold


def checked(table: str | Table) -> bool:
    """Whether a table has quality checks at all (silver, gold, ai and the intake tables: the
    delivery ledger, the quarantine and the vault)."""
    t = spec(table)
    return t.layer in FULL_LAYERS or t.name in {o.name for o in INTAKE}


def _column_checks(table: Table, c: Column) -> Iterable[Check]:
    one = (c.name,)
    if c.required:
        yield Check(table.name, "isRequired", one)
    if c.references:
        yield Check(table.name, "isForeignKey", one, c.references)
    if c.pattern:
        yield Check(table.name, "fieldFormat", one, c.pattern)
    if c.codes:
        yield Check(table.name, "isStandardValidConcept", one, c.codes)
    if c.low is not None:
        yield Check(table.name, "plausibleValueLow", one, float(c.low))
    if c.high is not None:
        yield Check(table.name, "plausibleValueHigh", one, float(c.high))
    if table.during_life and table.during_life[0] == c.name:
        yield Check(table.name, "plausibleAfterBirth", one, table.during_life[1])
        yield Check(table.name, "plausibleBeforeDeath", one, table.during_life[1])
    if table.start_before_end and table.start_before_end[0] == c.name:
        yield Check(table.name, "plausibleStartBeforeEnd", one, table.start_before_end[1])
    if c.type in ("date", "timestamp"):
        yield Check(table.name, "plausibleNotInFuture", one)


def checks(table: str | Table) -> list[Check]:
    """Every check the catalogue declares for a table, in column order (the key first).

    Silver and gold get every check type; ``bronze.deliveries``, ``quarantine.records`` and
    ``vault.identities`` only keys and required fields (see ``FULL_LAYERS``); bronze delivery
    tables none.
    """
    t = spec(table)
    if not checked(t):
        return []
    out: list[Check] = []
    if t.key:
        out.append(Check(t.name, "isPrimaryKey", t.key))
    for c in t.columns:
        out.extend(_column_checks(t, c))
    if t.layer not in FULL_LAYERS:
        out = [c for c in out if c.type in STRUCTURAL]
    return out


def all_checks() -> dict[str, list[Check]]:
    """The checks of every checked table in the catalogue, by table name."""
    return {name: checks(t) for name, t in TABLES.items() if checked(t)}


# --- evaluation ----------------------------------------------------------------------------


def ident(name: str) -> str:
    """A quoted identifier (columns such as ``table``, ``line`` and ``rows`` are keywords)."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A quoted SQL text literal."""
    return "'" + value.replace("'", "''") + "'"


def relation(name: str) -> str:
    """A catalogue table's view in a ``read.connect`` connection (``"silver"."claims"``)."""
    layer, short = name.split(".", 1)
    return f"{ident(layer)}.{ident(short)}"


def _sample_columns(table: Table) -> tuple[str, ...]:
    """Key columns to show for a violating row: never quasi-identifiers or ciphertexts."""
    keys = [k for k in table.key if table.column(k).personal in (None, "pseudonym")]
    if keys:
        return tuple(keys)
    return ("citizen_key",) if "citizen_key" in table.names else ()


@dataclass(frozen=True)
class Plan:
    """A check as SQL: the rows it reads (``source``), which count, and which violate."""

    check: Check
    source: str
    eligible: str
    violates: str
    setup: list[str] = field(default_factory=list)
    note: str | None = None


def _codes(name: str) -> list[str]:
    """A code list's accepted values; KCD codes are also accepted in their dotted form, which
    silver stores (``E11.9``), while the list keeps HIRA's (``E119``)."""
    found = set(code_set(name))
    if name == "kcd":
        found |= {kcd_with_dot(c) for c in found}
    return sorted(found)


@dataclass(frozen=True)
class _Ctx:
    """What planning one check needs: the check, its table, today and the tables present."""

    check: Check
    table: Table
    today: date
    present: set[str]

    @property
    def base(self) -> str:
        return f"{relation(self.table.name)} AS t"

    @property
    def value(self) -> str:
        return f"t.{ident(self.check.columns[0])}"

    @property
    def not_null(self) -> str:
        return f"{self.value} IS NOT NULL"

    @property
    def argument(self) -> str:
        return str(self.check.argument)


def _primary_key(x: _Ctx) -> Plan:
    """Rows whose key another row shares. Only rows whose key's 64-bit hash is shared can be
    such rows: the hashes are grouped first (16 bytes a row, where grouping the keys themselves
    held every key: a year of the city's 143 M claim lines outgrew memory and the disk it
    spilled to), then the exact keys among those few candidates."""
    keys = x.check.columns
    listed = ", ".join(ident(k) for k in keys)
    on = " AND ".join(f"t.{ident(k)} IS NOT DISTINCT FROM d.{ident(k)}" for k in keys)
    source = relation(x.table.name)
    hashed = f"hash({listed})"
    shared = f"(SELECT {hashed} FROM {source} GROUP BY 1 HAVING count(*) > 1)"
    dupes = (
        f"(SELECT {listed}, count(*) AS _n FROM {source} WHERE {hashed} IN {shared} "
        f"GROUP BY ALL) AS d"
    )
    return Plan(x.check, f"{x.base} LEFT JOIN {dupes} ON {on}", "TRUE", "d._n > 1")


def _required(x: _Ctx) -> Plan:
    return Plan(x.check, x.base, "TRUE", f"{x.value} IS NULL")


def _foreign_key(x: _Ctx) -> Plan:
    ref_table, ref_col = x.argument.rsplit(".", 1)
    if ref_table not in x.present:
        note = f"{ref_table} has not been written: no value can exist in it"
        return Plan(x.check, x.base, x.not_null, x.not_null, note=note)
    if (ref_table, ref_col) == (CITIZENS, "citizen_key"):
        # The life checks' join, so that one query counts the key and the life checks.
        return Plan(
            x.check, _with_lives(x, x.check.columns[0]), x.not_null, "c.citizen_key IS NULL"
        )
    ref = f"(SELECT DISTINCT {ident(ref_col)} AS _ref FROM {relation(ref_table)}) AS r"
    return Plan(
        x.check,
        f"{x.base} LEFT JOIN {ref} ON {x.value} = r._ref",
        x.not_null,
        "r._ref IS NULL",
    )


def _format(x: _Ctx) -> Plan:
    text = f"CAST({x.value} AS VARCHAR)"
    return Plan(x.check, x.base, x.not_null, f"NOT regexp_matches({text}, {literal(x.argument)})")


def _code_list(x: _Ctx) -> Plan:
    codes = f"_codes_{x.argument}"
    listed = ", ".join(literal(c) for c in _codes(x.argument))
    setup = [f"CREATE TEMP TABLE IF NOT EXISTS {codes} AS SELECT unnest([{listed}]) AS code"]
    violates = f"CAST({x.value} AS VARCHAR) NOT IN (SELECT code FROM {codes})"
    return Plan(x.check, x.base, x.not_null, violates, setup)


def _low(x: _Ctx) -> Plan:
    return Plan(x.check, x.base, x.not_null, f"{x.value} < {x.check.argument}")


def _high(x: _Ctx) -> Plan:
    return Plan(x.check, x.base, x.not_null, f"{x.value} > {x.check.argument}")


def _with_lives(x: _Ctx, column: str) -> str:
    """The table's rows, each with its citizen's birth and death from silver.citizens (``c``):
    one row per key (duplicates, which the key check reports, must not multiply the table's
    rows), joined LEFT so that the citizen-key check (no ``c.citizen_key``) and the life checks
    (``c.born``, ``c.died``) read the same source and are counted in one query (``tally``)."""
    lives = (
        "(SELECT citizen_key, min(make_date(birth_year, birth_month, 1)) AS born, "
        f"max(died_on) AS died FROM {relation(CITIZENS)} GROUP BY citizen_key) AS c"
    )
    return f"{x.base} LEFT JOIN {lives} ON t.{ident(column)} = c.citizen_key"


def _life(x: _Ctx) -> Plan:
    """Birth and death from silver.citizens; a row whose citizen is not there (which the key
    check reports) has no life to compare with."""
    if CITIZENS not in x.present:
        note = f"{CITIZENS} has not been written: no life to compare with"
        return Plan(x.check, x.base, "FALSE", "FALSE", note=note)
    source = _with_lives(x, x.argument)
    day = f"CAST({x.value} AS DATE)"
    if x.check.type == "plausibleAfterBirth":
        return Plan(x.check, source, f"{x.not_null} AND c.born IS NOT NULL", f"{day} < c.born")
    return Plan(x.check, source, f"{x.not_null} AND c.died IS NOT NULL", f"{day} > c.died")


def _start_before_end(x: _Ctx) -> Plan:
    end = f"t.{ident(x.argument)}"
    return Plan(x.check, x.base, f"{x.not_null} AND {end} IS NOT NULL", f"{x.value} > {end}")


def _not_in_future(x: _Ctx) -> Plan:
    if x.table.column(x.check.columns[0]).type == "date":
        return Plan(x.check, x.base, x.not_null, f"{x.value} > DATE '{x.today.isoformat()}'")
    # Timestamps are stored in UTC: the future starts at midnight after today, in Korea.
    tomorrow = datetime.combine(x.today + timedelta(days=1), time(), KST).astimezone(UTC)
    return Plan(x.check, x.base, x.not_null, f"{x.value} >= TIMESTAMPTZ '{tomorrow.isoformat()}'")


PLANNERS: Final[dict[DQDCheck, Callable[[_Ctx], Plan]]] = {
    "isPrimaryKey": _primary_key,
    "isRequired": _required,
    "isForeignKey": _foreign_key,
    "fieldFormat": _format,
    "isStandardValidConcept": _code_list,
    "plausibleValueLow": _low,
    "plausibleValueHigh": _high,
    "plausibleAfterBirth": _life,
    "plausibleBeforeDeath": _life,
    "plausibleStartBeforeEnd": _start_before_end,
    "plausibleNotInFuture": _not_in_future,
}


class Counted(Protocol):
    """What ``tally`` counts: the rows a check reads, which count, and which violate (SQL)."""

    @property
    def source(self) -> str: ...
    @property
    def eligible(self) -> str: ...
    @property
    def violates(self) -> str: ...
    @property
    def setup(self) -> Sequence[str]: ...


def tally(con: duckdb.DuckDBPyConnection, plans: Sequence[Counted]) -> list[tuple[int, int]]:
    """The rows each plan applies to and the rows violating it, in order: one query per
    distinct source, however many checks read it (``lakehouse.omop.dq`` counts with it too)."""
    counts: dict[int, tuple[int, int]] = {}
    by_source: dict[str, list[int]] = {}
    for i, p in enumerate(plans):
        for statement in p.setup:
            con.execute(statement)
        by_source.setdefault(p.source, []).append(i)
    for source, members in by_source.items():
        aggregates = ", ".join(
            f"count(*) FILTER (WHERE {plans[i].eligible}), "
            f"count(*) FILTER (WHERE ({plans[i].eligible}) AND ({plans[i].violates}))"
            for i in members
        )
        row = con.execute(f"SELECT {aggregates} FROM {source}").fetchone()
        assert row is not None
        for n, i in enumerate(members):
            counts[i] = (int(row[2 * n]), int(row[2 * n + 1]))
    return [counts[i] for i in range(len(plans))]


def count(con: duckdb.DuckDBPyConnection, table: Table, plans: list[Plan]) -> list[CheckResult]:
    """Count every plan (``tally``), then sample the failing ones."""
    shown = _sample_columns(table)
    key = " || ' / ' || ".join(f"coalesce(CAST(t.{ident(c)} AS VARCHAR), 'null')" for c in shown)
    results = []
    for p, (rows, violations) in zip(plans, tally(con, plans), strict=True):
        samples: tuple[str, ...] = ()
        if violations and key:
            found = con.execute(
                f"SELECT DISTINCT {key} AS k FROM {p.source} "
                f"WHERE ({p.eligible}) AND ({p.violates}) ORDER BY k LIMIT {SAMPLES}"
            ).fetchall()
            samples = tuple(str(r[0]) for r in found)
        results.append(CheckResult(p.check, rows, violations, samples, p.note))
    return results


def plan(check: Check, table: Table, present: set[str], today: date) -> Plan:
    """One check as SQL over the views of ``read.connect`` (for ``tally``), whatever the
    table's layer: the OMOP report (``lakehouse.omop.dq``) plans its keys, required fields and
    foreign keys with the same planners.

    Args:
        check: The check.
        table: Its table.
        present: The tables written so far (a foreign key into a missing table violates).
        today: The day ``plausibleNotInFuture`` compares with.
    """
    return PLANNERS[check.type](_Ctx(check, table, today, present))


def today_in_korea() -> date:
    """Today's date in Korea, where every event of the city happens."""
    return datetime.now(KST).date()


def evaluate(
    table: str | Table, only: Sequence[Check] | None = None, today: date | None = None
) -> list[CheckResult]:
    """Evaluate a table's checks on its current Delta version.

    Args:
        table: The table.
        only: Evaluate just these of its checks (a Dagster run selecting a few); all by default.
        today: The day ``plausibleNotInFuture`` compares with; today in Korea by default
            (fixed in tests).

    Returns:
        One result per check, in the order of ``checks(table)``. A table not written yet gives
        vacuous passes with a note: its asset may legitimately write nothing (a month without
        deliveries), and there is nothing in it to be wrong.
    """
    t = spec(table)
    todo = list(only) if only is not None else checks(t)
    if not exists(t):
        return [CheckResult(c, 0, 0, note=f"{t.name} has not been written") for c in todo]
    needed = {t.name, *(r for c in todo for r in c.references)}
    present = {n for n in needed if exists(n)}
    day = today or today_in_korea()
    con = connect(sorted(present))
    try:
        return count(con, t, [plan(c, t, present, day) for c in todo])
    finally:
        con.close()


# --- documentation -------------------------------------------------------------------------

HEADER: Final = """\
# Data quality

Generated from the table catalogue (`lakehouse/catalog/`) by
`lakehouse.quality.render_markdown()`; do not edit by hand (`gjh catalog --docs` rewrites it, and
a test fails when it is out of date).

Every check below runs as a Dagster asset check after its table's asset is materialised, and
on demand through `lakehouse.quality.evaluate`. A derived table (gold, OMOP) that only gained
rows since its last evaluation has them counted on their own and added to the counts it keeps
(`lakehouse.quality_kept`); the result is the whole count's. The check types are those of
the OHDSI Data Quality Dashboard (DQD v5.4), in the Kahn framework's categories; two are local
additions.
A check **passes** when the share of violating rows is at most its threshold. **Fatal** checks
(threshold 0 %) are blocking: when one fails, no asset downstream of the table runs.
**Warnings** are reported in the UI and never stop a run.

Bronze delivery tables have no checks: they keep each delivery as delivered, and conforming it is
silver's job (rows that break the rules go to `quarantine.records` with a reason). The ledger,
the quarantine and the vault get the structural checks only (keys and required fields).
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown() -> str:
    """``DATA_QUALITY.md``: every check type, then every checked table's checks with their DQD
    type, severity, threshold and rule (from the catalogue, so it cannot drift)."""
    lines = [HEADER, "## Check types", ""]
    lines += [
        "| Type | Kahn category | Source | Severity | Threshold | Rule |",
        "|---|---|---|---|---|---|",
    ]
    for type_name, kind in CHECK_TYPES.items():
        meaning = kind.meaning.format(column="the column", argument="…")
        lines.append(
            f"| `{type_name}` | {kind.kahn} | {'DQD' if kind.dqd else 'local'} | {kind.severity} "
            f"| {kind.threshold:g} % | {_cell(meaning)} |"
        )
    for name, found in all_checks().items():
        table = TABLES[name]
        fatal = sum(c.fatal for c in found)
        lines += [
            "",
            f"## `{name}`",
            "",
            table.description,
            "",
            f"{len(found)} checks, {fatal} fatal.",
            "",
            "| Check | DQD type | Severity | Threshold | Rule |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| `{c.dagster_name}` | `{c.type}` | {c.severity} | {c.threshold:g} % "
            f"| {_cell(c.rule)} |"
            for c in found
        ]
    unchecked = sorted(n for n in TABLES if not checked(n))
    lines += ["", "## Tables without checks", ""]
    lines += [f"- `{n}`" for n in unchecked]
    return "\n".join(lines) + "\n"
