"""Pharmacy dispensing: the statements pharmacies send for the prescriptions they fill.

A prescription is filled at a pharmacy near the prescriber, usually the same day; a few are never
filled. The pharmacy's statement (class 81, form 081) carries the prescriber's institution code and
the prescription issue number, which is how the two claims are linked, and its lines are the
dispensing fees and the drugs dispensed.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import polars as pl

from synth.hira import AID_FLAT, CLINIC_SHARE, ELDERLY_PHARMACY_FLAT, PHARM_T300_COLUMNS

# About 4% of prescriptions are never filled (primary non-adherence, Korean claims studies).
FILL_RATE: Final = 0.96
# Dispensing fee lines of every pharmacy statement: management, basic dispensing, counselling and
# the per-days dispensing fee.
FEES: Final = ("Z1000", "Z2000", "Z3000", "Z4100")


def dispense(
    rng: np.random.Generator,
    v: pl.DataFrame,
    t530: pl.DataFrame,
    chunk: int,
    pharmacies: pl.DataFrame,
    edi: pl.DataFrame,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Pharmacy statements and lines for the prescriptions of one slice.

    Args:
        rng: The slice's stream.
        v: The slice's visits with their statement fields (``has_rx``, ``PRSC_ISSU_NO``, ...).
        t530: The prescriptions issued on those visits.
        chunk: The slice number, part of every pharmacy statement id.
        pharmacies: The city's pharmacies (institutions of class 81).
        edi: The EDI fee list, for the dispensing fees.
    """
    rx = v.filter(pl.col("has_rx"))
    n = rx.height
    lag = rng.choice([0, 1, 2, 3], size=n, p=[0.85, 0.10, 0.03, 0.02])
    filled = rng.random(n) < FILL_RATE
    ph = pharmacies
    district = rx["district_code"].to_numpy()
    ph_district = ph["district_code"].to_numpy()
    ph_codes = ph["ykiho"].to_numpy()
    u = rng.random(n)
    pharmacy = np.empty(n, dtype=object)
    for d in np.unique(district):
        here = ph_codes[ph_district == d]
        pool = here if len(here) else ph_codes
        sel = district == d
        pharmacy[sel] = pool[(u[sel] * len(pool)).astype(np.int64)]
    disp = (
        rx.with_columns(
            pl.Series("lag", lag),
            pl.Series("filled", filled),
            pl.Series("pharmacy", pharmacy.astype(str)),
        )
        .with_columns((pl.col("date") + pl.duration(days="lag")).alias("disp_date"))
        .filter(pl.col("filled") & (pl.col("disp_date") < pl.col("present_to")))
        .with_columns(
            pl.col("disp_date").dt.strftime("%Y%m").alias("_month"),
            pl.format(
                "{}{}{}",
                pl.col("disp_date").dt.strftime("%Y%m"),
                pl.lit(f"{chunk:03d}"),
                (pl.col("seq") + 5_000_000).cast(pl.Utf8).str.zfill(7),
            ).alias("PH_SPEC"),
        )
    )
    drug_lines = (
        disp.select("seq", "PH_SPEC", "_month")
        .join(
            t530.select(
                "seq",
                # Drug lines follow the four fee lines, in the prescription's order.
                (pl.col("LN_NO").cast(pl.Int32) + len(FEES)).alias("ln"),
                "GNL_NM_CD",
                "DIV_CD",
                "DIV_NM",
                "FQ1_MDCT_QTY",
                "DY1_MDCT_QTY",
                pl.col("TOT_INJC_DDCNT_EXEC_FQ").alias("TOT_USE_QTY_OR_EXEC_FQ"),
                "UNPRC",
                "AMT",
            ),
            on="seq",
        )
        .with_columns(pl.lit("10").alias("DIV_TY_CD"))
    )
    days = drug_lines.group_by("seq").agg(
        pl.col("TOT_USE_QTY_OR_EXEC_FQ").cast(pl.Int64).max().alias("days")
    )
    fees = (
        disp.select("seq", "PH_SPEC", "_month")
        .join(days, on="seq")
        .join(
            pl.DataFrame({"DIV_CD": list(FEES), "ln": range(1, len(FEES) + 1)}),
            how="cross",
        )
        .join(
            edi.select(
                pl.col("edi_code").alias("DIV_CD"), pl.col("name_ko").alias("DIV_NM"), "price"
            ),
            on="DIV_CD",
        )
        .with_columns(
            pl.lit("03").alias("DIV_TY_CD"),
            pl.lit("").alias("GNL_NM_CD"),
            pl.lit("1").alias("FQ1_MDCT_QTY"),
            pl.lit("1").alias("DY1_MDCT_QTY"),
            # The dispensing fee grows with the days supplied; the other fees are per visit.
            pl.when(pl.col("DIV_CD") == "Z4100")
            .then(pl.col("days").clip(upper_bound=30))
            .otherwise(1)
            .alias("qty"),
            pl.col("price").round(0).cast(pl.Int64).alias("UNPRC"),
            pl.col("ln").cast(pl.Int32),
        )
        .with_columns(
            pl.col("qty").cast(pl.Utf8).alias("TOT_USE_QTY_OR_EXEC_FQ"),
            (pl.col("UNPRC") * pl.col("qty")).alias("AMT"),
        )
    )
    lines = (
        pl.concat([fees.select(drug_lines.columns), drug_lines], how="vertical_relaxed")
        .sort("seq", "ln")
        .with_columns(pl.col("ln").cast(pl.Utf8).alias("LN_NO"))
        .select(pl.col("PH_SPEC").alias("SPEC_ID_SNO"), *PHARM_T300_COLUMNS[1:], "_month", "seq")
    )
    totals = lines.group_by("seq").agg(pl.col("AMT").sum().alias("DMD_TRAMT"))
    share = (
        pl.when(pl.col("insurance") == "5")
        .then(AID_FLAT["pharmacy"])
        .when((pl.col("PAT_AGE") >= 65) & (pl.col("DMD_TRAMT") <= ELDERLY_PHARMACY_FLAT[0]))
        .then(ELDERLY_PHARMACY_FLAT[1])
        .otherwise((pl.col("DMD_TRAMT") * CLINIC_SHARE / 100).floor() * 100)
    )
    statements = (
        disp.join(totals, on="seq")
        .with_columns(
            pl.min_horizontal(share, pl.col("DMD_TRAMT")).cast(pl.Int64).alias("DMD_SBRDN_AMT")
        )
        .select(
            pl.col("PH_SPEC").alias("SPEC_ID_SNO"),
            pl.col("rrn").alias("JID"),
            pl.col("pharmacy").alias("YID"),
            pl.when(pl.col("sex") == "M")
            .then(pl.lit("1"))
            .otherwise(pl.lit("2"))
            .alias("SEX_TP_CD"),
            pl.col("PAT_AGE").cast(pl.Utf8),
            pl.col("insurance").alias("INSUP_TP_CD"),
            pl.lit("081").alias("FOM_TP_CD"),
            pl.lit("81").alias("CL_CD"),
            pl.col("kcd").alias("MSICK_CD"),
            pl.col("disp_date").dt.strftime("%Y%m%d").alias("RECU_FR_DD"),
            pl.col("YID").alias("PRSC_YID"),
            "PRSC_ISSU_NO",
            "DMD_TRAMT",
            "DMD_SBRDN_AMT",
            (pl.col("DMD_TRAMT") - pl.col("DMD_SBRDN_AMT")).alias("DMD_CHRG_AMT"),
            "_month",
            "seq",
        )
    )
    return statements, lines
