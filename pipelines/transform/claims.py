"""Claims and pharmacy from bronze to silver: typed, conformed, and checked row by row.

* Statements (medical T200 and pharmacy) become ``silver.claims``: dates parsed, KCD given its
  dot, sex and amounts typed. A statement whose date does not exist is quarantined
  (``impossible_date``); one whose code is in no code list is quarantined (``unknown_code``).
* Lines, diagnoses, prescriptions and dispensings keep the delivery they came in; the statement's
  latest delivery (``silver.claims.delivery_id``) says which version is in use, so a correction
  re-delivered later replaces the earlier version without rewriting old partitions.

Every function here is plain Polars over bronze frames; ``pipelines.defs.claims`` runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import polars as pl

from lakehouse.catalog import table as catalog_table
from lakehouse.reference import code_set
from pipelines.ingest.parse import IMPOSSIBLE_DATE, UNKNOWN_CODE, Quarantined, rejected_rows

MISSING_STATEMENT: Final = "missing_statement"


@dataclass
class SilverClaims:
    """One run's silver rows per table, and the rows it quarantined."""

    tables: dict[str, pl.DataFrame]
    quarantined: list[Quarantined] = field(default_factory=list)


def _kcd(column: str) -> pl.Expr:
    """KCD without the dot (as claims carry it) -> with the dot (``E119`` -> ``E11.9``)."""
    code = pl.col(column)
    return (
        pl.when(code.str.len_chars() > 3)
        .then(pl.concat_str(code.str.slice(0, 3), pl.lit("."), code.str.slice(3)))
        .otherwise(code)
    )


def _date(column: str) -> pl.Expr:
    return pl.col(column).str.strptime(pl.Date, "%Y%m%d", strict=False)


def _quarantine(
    rows: pl.DataFrame, source: str, table: str, reason: str, message: pl.Expr
) -> list[Quarantined]:
    """Quarantine records for bronze rows rejected at the silver stage (each in the period of
    the delivery it came in)."""
    if not rows.height:
        return []
    details = rows.select(
        "_period",
        "_delivery_id",
        "_file",
        "_line",
        pl.col("SPEC_ID_SNO").alias("key"),
        pl.lit(reason).alias("reason"),
        message.alias("message"),
        pl.concat_str(
            [pl.col(c).fill_null("") for c in rows.columns if not c.startswith("_")],
            separator=",",
        ).alias("payload"),
    )
    return rejected_rows(details, source, table)


def _split(rows: pl.DataFrame, bad: pl.Expr) -> tuple[pl.DataFrame, pl.DataFrame]:
    flagged = rows.with_columns(bad.fill_null(True).alias("_bad"))
    return flagged.filter(~pl.col("_bad")).drop("_bad"), flagged.filter(pl.col("_bad")).drop("_bad")


def statements(
    t200: pl.DataFrame, pharmacy: pl.DataFrame
) -> tuple[pl.DataFrame, list[Quarantined]]:
    """Medical and pharmacy statements -> ``silver.claims`` rows, every delivered version (the
    children of each version join to it), and the statements quarantined. ``latest`` keeps the
    version in use."""
    kcd = sorted(code_set("kcd"))
    classes = sorted(code_set("institution_classes"))
    quarantined: list[Quarantined] = []
    frames = []
    for source, delivered in (("claims", t200), ("pharmacy", pharmacy)):
        if not delivered.height:
            continue
        if "RECU_TO_DD" not in delivered.columns:  # a pharmacy statement covers one day
            rows = delivered.with_columns(
                pl.col("RECU_FR_DD").alias("RECU_TO_DD"),
                pl.lit(None, pl.Utf8).alias("DGSBJT_CD"),
                pl.lit(None, pl.Utf8).alias("SSICK_CD"),
                pl.lit("1").alias("VST_DDCNT"),
            )
        else:
            rows = delivered.with_columns(pl.lit(None, pl.Utf8).alias("PRSC_YID"))
        good, bad = _split(rows, _date("RECU_FR_DD").is_null() | _date("RECU_TO_DD").is_null())
        quarantined += _quarantine(
            bad,
            source,
            f"bronze.{source}_t200",
            IMPOSSIBLE_DATE,
            pl.format("no such date: RECU_FR_DD={} RECU_TO_DD={}", "RECU_FR_DD", "RECU_TO_DD"),
        )
        unknown = ~pl.col("MSICK_CD").is_in(kcd) | ~pl.col("CL_CD").is_in(classes)
        good, bad = _split(good, unknown)
        quarantined += _quarantine(
            bad,
            source,
            f"bronze.{source}_t200",
            UNKNOWN_CODE,
            pl.format("code in no list: MSICK_CD={} CL_CD={}", "MSICK_CD", "CL_CD"),
        )
        frames.append(good)
    if not frames:  # nothing delivered in the window: no statements, same columns
        return pl.DataFrame(schema=catalog_table("silver.claims").polars_schema()), quarantined
    out = (
        pl.concat(frames, how="diagonal_relaxed")
        .sort("_delivered_at", "_line")
        .select(
            pl.col("SPEC_ID_SNO").alias("spec_id"),
            "citizen_key",
            pl.col("YID").alias("ykiho"),
            pl.col("SEX_TP_CD").replace_strict({"1": "M", "2": "F"}, default=None).alias("sex"),
            pl.col("PAT_AGE").cast(pl.Int64).alias("age"),
            pl.col("INSUP_TP_CD").alias("insurance_type"),
            pl.col("FOM_TP_CD").alias("form_type"),
            pl.col("CL_CD").alias("class_code"),
            pl.col("DGSBJT_CD").alias("department"),
            _kcd("MSICK_CD").alias("main_dx"),
            pl.when(pl.col("SSICK_CD") == "")
            .then(None)
            .otherwise(_kcd("SSICK_CD"))
            .alias("sub_dx"),
            _date("RECU_FR_DD").alias("start_date"),
            _date("RECU_TO_DD").alias("end_date"),
            pl.col("VST_DDCNT").cast(pl.Int64).alias("visit_days"),
            pl.col("PRSC_ISSU_NO").replace("", None).alias("prescription_no"),
            pl.col("PRSC_YID").alias("prescriber_ykiho"),
            pl.col("DMD_TRAMT").cast(pl.Int64).alias("total_amount"),
            pl.col("DMD_SBRDN_AMT").cast(pl.Int64).alias("patient_amount"),
            pl.col("DMD_CHRG_AMT").cast(pl.Int64).alias("insurer_amount"),
            _date("RECU_FR_DD").dt.strftime("%Y-%m").alias("claim_month"),
            pl.col("_delivery_id").alias("delivery_id"),
            pl.col("_delivered_at").alias("delivered_at"),
        )
    )
    return out, quarantined


def latest(heads: pl.DataFrame) -> pl.DataFrame:
    """The version of each statement in use: the one delivered last."""
    return heads.sort("delivered_at").unique("spec_id", keep="last", maintain_order=True)


def _with_statement(rows: pl.DataFrame, heads: pl.DataFrame) -> pl.DataFrame:
    """Attach each child row's statement (same statement id, same delivery).

    Joined delivery by delivery on the statement id alone: a join on two text keys costs
    about twice one on a single key, and a month is usually one delivery.
    """
    statement = heads.drop("delivery_id")
    deliveries = rows["_delivery_id"].unique(maintain_order=True)
    if deliveries.len() > 1:
        return pl.concat(
            _with_statement(part, heads)
            for part in rows.partition_by("_delivery_id", maintain_order=True)
        )
    if deliveries.len():
        statement = statement.filter(heads["delivery_id"] == deliveries[0])
    return rows.join(statement, left_on="SPEC_ID_SNO", right_on="spec_id", how="left")


def children(
    statements_: pl.DataFrame,
    t300: pl.DataFrame,
    t400: pl.DataFrame,
    t530: pl.DataFrame,
    ph300: pl.DataFrame,
) -> SilverClaims:
    """Lines, diagnoses, prescriptions and dispensings of the batch's statements."""
    heads = statements_.select(
        "spec_id",
        "delivery_id",
        "citizen_key",
        "ykiho",
        "start_date",
        "claim_month",
        "prescription_no",
        "prescriber_ykiho",
    )
    kcd = sorted(code_set("kcd"))
    drugs = sorted(code_set("drugs"))
    quarantined: list[Quarantined] = []
    tables: dict[str, pl.DataFrame] = {}

    def orphans(rows: pl.DataFrame, source: str, table: str) -> pl.DataFrame:
        """Rows whose statement is not in the batch are quarantined, never silently dropped."""
        joined = _with_statement(rows, heads)
        good, bad = _split(joined, pl.col("citizen_key").is_null())
        quarantined.extend(
            _quarantine(
                bad.select(rows.columns),
                source,
                table,
                MISSING_STATEMENT,
                pl.format("statement {} is not in this delivery", "SPEC_ID_SNO"),
            )
        )
        return good

    pharmacy_lines = orphans(ph300, "pharmacy", "bronze.pharmacy_t300")
    lines = pl.concat(
        [
            orphans(t300, "claims", "bronze.claims_t300").with_columns(
                pl.lit(None, pl.Utf8).alias("GNL_NM_CD")
            ),
            pharmacy_lines,
        ],
        how="diagonal_relaxed",
    )
    tables["silver.claim_lines"] = lines.select(
        pl.col("SPEC_ID_SNO").alias("spec_id"),
        pl.col("LN_NO").cast(pl.Int64).alias("line_no"),
        pl.col("DIV_TY_CD").alias("line_type"),
        pl.col("DIV_CD").alias("code"),
        pl.col("DIV_NM").alias("name"),
        pl.col("GNL_NM_CD").replace("", None).alias("ingredient_code"),
        pl.col("TOT_USE_QTY_OR_EXEC_FQ").cast(pl.Float64).alias("quantity"),
        pl.col("UNPRC").cast(pl.Int64).alias("unit_price"),
        pl.col("AMT").cast(pl.Int64).alias("amount"),
        "claim_month",
        pl.col("_delivery_id").alias("delivery_id"),
        pl.col("_delivered_at").alias("delivered_at"),
    )

    dx = orphans(t400, "claims", "bronze.claims_t400")
    dx, bad = _split(dx, ~pl.col("SICK_CD").is_in(kcd))
    quarantined += _quarantine(
        bad.select(t400.columns),
        "claims",
        "bronze.claims_t400",
        UNKNOWN_CODE,
        pl.format("KCD code in no list: {}", "SICK_CD"),
    )
    tables["silver.diagnoses"] = dx.select(
        pl.col("SPEC_ID_SNO").alias("spec_id"),
        pl.col("SICK_SNO").cast(pl.Int64).alias("seq"),
        _kcd("SICK_CD").alias("kcd"),
        pl.when(pl.col("SICK_TY_CD") == "1")
        .then(pl.lit("main"))
        .otherwise(pl.lit("sub"))
        .alias("kind"),
        "citizen_key",
        pl.col("start_date").alias("diagnosed_on"),
        "claim_month",
        pl.col("_delivery_id").alias("delivery_id"),
        pl.col("_delivered_at").alias("delivered_at"),
    )

    rx = orphans(t530, "claims", "bronze.claims_t530")
    rx, bad = _split(rx, ~pl.col("GNL_NM_CD").is_in(drugs))
    quarantined += _quarantine(
        bad.select(t530.columns),
        "claims",
        "bronze.claims_t530",
        UNKNOWN_CODE,
        pl.format("ingredient code in no list: {}", "GNL_NM_CD"),
    )
    tables["silver.prescriptions"] = rx.select(
        pl.col("SPEC_ID_SNO").alias("spec_id"),
        pl.col("LN_NO").cast(pl.Int64).alias("line_no"),
        "citizen_key",
        "ykiho",
        "prescription_no",
        pl.col("start_date").alias("issued_on"),
        pl.col("GNL_NM_CD").alias("ingredient_code"),
        pl.col("DIV_CD").alias("product_code"),
        pl.col("DIV_NM").alias("name"),
        pl.col("FQ1_MDCT_QTY").cast(pl.Float64).alias("dose"),
        pl.col("DY1_MDCT_QTY").cast(pl.Int64).alias("per_day"),
        pl.col("TOT_INJC_DDCNT_EXEC_FQ").cast(pl.Int64).alias("days"),
        pl.col("UNPRC").cast(pl.Int64).alias("unit_price"),
        pl.col("AMT").cast(pl.Int64).alias("amount"),
        "claim_month",
        pl.col("_delivery_id").alias("delivery_id"),
        pl.col("_delivered_at").alias("delivered_at"),
    )

    # The pharmacy lines that found their statement, joined once above.
    dispensed = pharmacy_lines.filter(pl.col("DIV_TY_CD") == "10")
    tables["silver.dispensings"] = dispensed.select(
        pl.col("SPEC_ID_SNO").alias("spec_id"),
        pl.col("LN_NO").cast(pl.Int64).alias("line_no"),
        "citizen_key",
        pl.col("ykiho").alias("pharmacy_ykiho"),
        pl.col("start_date").alias("dispensed_on"),
        "prescriber_ykiho",
        "prescription_no",
        pl.col("GNL_NM_CD").alias("ingredient_code"),
        pl.col("DIV_CD").alias("product_code"),
        pl.col("DIV_NM").alias("name"),
        pl.col("FQ1_MDCT_QTY").cast(pl.Float64).alias("dose"),
        pl.col("DY1_MDCT_QTY").cast(pl.Int64).alias("per_day"),
        pl.col("TOT_USE_QTY_OR_EXEC_FQ").cast(pl.Int64).alias("days"),
        pl.col("AMT").cast(pl.Int64).alias("amount"),
        "claim_month",
        pl.col("_delivery_id").alias("delivery_id"),
        pl.col("_delivered_at").alias("delivered_at"),
    )
    return SilverClaims(tables, quarantined)
