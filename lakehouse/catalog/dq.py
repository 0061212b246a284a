"""``gold.omop_dq_results``: the data-quality report over the ``omop.*`` tables, in the style of
OHDSI's Data Quality Dashboard (``lakehouse.omop.dq``).

One row per check of the latest run (each run replaces the previous one in one commit; earlier
runs stay in the Delta history), every check type of the DQD's list included (a type that cannot run
here is a row with its reason, never left out), so a reader sees what ran, what passed, what
failed and why. Counts, codes and names of tables and fields only: nothing about any person.
Reasons and explanations are codes, named in the reader's language by the apps
(``dq.reason.<code>``, ``dq.explanation.<code>`` in ``apps/common/messages.toml``).
"""

from __future__ import annotations

from typing import Final

from lakehouse.catalog.columns import column
from lakehouse.schema import Table

RESULTS: Final = "gold.omop_dq_results"
DQ: Final = (
    Table(
        RESULTS,
        "The OHDSI Data Quality Dashboard's checks over the omop tables, one row per check of "
        "the latest run: level, check type, table, field or concept, Kahn category, severity, "
        "threshold, rows checked and failing, pass or fail, or why the check does not apply, "
        "and why a failure is expected.",
        (
            column("run_id", "text", "the run: its start, UTC, ISO 8601", required=True),
            column("run_at", "timestamp", "when the run started", required=True),
            column(
                "check_id",
                "text",
                "the DQD's check id: check, table, field and concept, lower case, joined by _",
                required=True,
            ),
            column(
                "level",
                "text",
                "TABLE, FIELD or CONCEPT",
                required=True,
                pattern=r"^(TABLE|FIELD|CONCEPT)$",
            ),
            column("check_name", "text", "the DQD's check type (isRequired...)", required=True),
            column("cdm_table", "text", "the CDM table checked, lower case"),
            column("cdm_field", "text", "the field checked (FIELD and CONCEPT levels)"),
            column("concept_id", "int", "the concept checked (CONCEPT level)"),
            column(
                "context",
                "text",
                "Kahn context: Verification or Validation",
                required=True,
                pattern=r"^(Verification|Validation)$",
            ),
            column(
                "category",
                "text",
                "Kahn category",
                required=True,
                pattern=r"^(Conformance|Completeness|Plausibility)$",
            ),
            column("subcategory", "text", "Kahn subcategory (Relational, Value, Temporal...)"),
            column(
                "severity",
                "text",
                "the DQD's severity: fatal, convention or characterization",
                required=True,
                pattern=r"^(fatal|convention|characterization)$",
            ),
            column("threshold_pct", "float", "the largest failing share that passes", low=0),
            column(
                "threshold_source",
                "text",
                "where the threshold comes from: dqd (the check type's default), dqd-table, "
                "dqd-field, dqd-concept, dqd-news, spec or local "
                "(lakehouse/reference/omop/dq_thresholds.csv)",
            ),
            column("argument", "text", "what the value is checked against (a bound, a field)"),
            column("rows_checked", "int", "rows (or persons, values) the check counts", low=0),
            column("rows_failing", "int", "of them, those failing the rule", low=0),
            column("pct_failing", "float", "rows_failing as a percentage of rows_checked", low=0),
            column("passed", "bool", "pct_failing within the threshold; null: not applicable"),
            column(
                "not_applicable_reason",
                "text",
                "why the check does not apply (a code, dq.reason.<code>)",
                pattern=r"^[a-z_]+$",
            ),
            column(
                "explanation",
                "text",
                "why a failure is expected here (a code, dq.explanation.<code>; "
                "lakehouse/reference/omop/dq_explanations.csv)",
                pattern=r"^[a-z_]+$",
            ),
            column(
                "cdm_source_release",
                "date",
                "omop.cdm_source's source_release_date at the run (the data checked)",
            ),
        ),
        key=("run_id", "check_id"),
    ),
)
