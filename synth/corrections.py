"""Corrected statements: HIRA's review changes some claims, and the extract sends them again.

The whole statement (T200 with its T300, T400 and T530 rows) is re-delivered one or two months
later under the same ``SPEC_ID_SNO`` with changed amounts; the later delivery replaces the earlier
one downstream. The generator records each correction in the ground truth.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import polars as pl

CORRECTION_RATE: Final = 0.01  # statements re-delivered after review


def redeliver(
    rng: np.random.Generator,
    tables: dict[str, pl.DataFrame],
    months: list[str],
    prices: dict[str, float],
) -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """Re-deliver about 1% of medical statements one or two months later, as HIRA does after
    review: the last non-consultation line is cut (or a first-visit consultation is
    reclassified as a return visit), the amounts are recomputed, and the whole statement is
    sent again under the same ``SPEC_ID_SNO``."""
    t200 = tables["T200"]
    pick = rng.random(t200.height) < CORRECTION_RATE
    delay = rng.integers(1, 3, t200.height)
    # The delivery one or two months later, capped at the window's last month; none for the last,
    # nor for the history extract (``-1``: it is sent once, after review).
    index = (
        t200["_month"]
        .replace_strict({m: i for i, m in enumerate(months)}, default=-1, return_dtype=pl.Int64)
        .to_numpy()
    )
    later = np.minimum(index + delay, len(months) - 1)
    target = [
        months[int(j)] if 0 <= i < len(months) - 1 else None
        for i, j in zip(index, later, strict=True)
    ]
    # Only statements the review can change: a line to cut or a first-visit fee to reclassify.
    changeable = (
        tables["T300"]
        .filter((pl.col("DIV_TY_CD") != "01") | pl.col("DIV_CD").is_in(["AA154", "AA157"]))
        .select("seq")
        .unique()
    )
    chosen = (
        t200.with_columns(pl.Series("_to", target, dtype=pl.Utf8), pl.Series("_pick", pick))
        .filter(pl.col("_pick") & pl.col("_to").is_not_null())
        .join(changeable, on="seq", how="semi")
    )
    if not chosen.height:
        return pl.DataFrame(), {k: f.drop("seq", strict=False) for k, f in tables.items()}
    seqs = chosen.select("seq", "_to")
    lines = tables["T300"].join(seqs, on="seq")
    last_extra = (
        lines.filter(pl.col("DIV_TY_CD") != "01")
        .group_by("seq")
        .agg(pl.col("LN_NO").cast(pl.Int64).max().alias("cut"))
    )
    fixed = (
        lines.join(last_extra, on="seq", how="left")
        .filter(pl.col("cut").is_null() | (pl.col("LN_NO").cast(pl.Int64) != pl.col("cut")))
        .with_columns(
            pl.when(pl.col("cut").is_null() & pl.col("DIV_CD").is_in(["AA154", "AA157"]))
            .then(pl.col("DIV_CD").replace({"AA154": "AA254", "AA157": "AA257"}))
            .otherwise(pl.col("DIV_CD"))
            .alias("DIV_CD_NEW")
        )
    )
    reclassified = fixed["DIV_CD_NEW"] != fixed["DIV_CD"]
    fixed = fixed.with_columns(
        pl.when(pl.Series(reclassified))
        .then((pl.col("UNPRC") * prices["AA254"] / prices["AA154"]).round(0).cast(pl.Int64))
        .otherwise(pl.col("UNPRC"))
        .alias("UNPRC"),
        pl.col("DIV_CD_NEW").alias("DIV_CD"),
    ).with_columns((pl.col("UNPRC") * pl.col("TOT_USE_QTY_OR_EXEC_FQ").cast(pl.Int64)).alias("AMT"))
    new_total = fixed.group_by("seq").agg(pl.col("AMT").sum().alias("new_total"))
    ratio = pl.col("new_total") / pl.col("DMD_TRAMT").cast(pl.Float64)
    redelivered_200 = (
        chosen.join(new_total, on="seq")
        .with_columns(
            (pl.col("DMD_SBRDN_AMT") * ratio).floor().cast(pl.Int64).alias("DMD_SBRDN_AMT"),
            pl.col("new_total").alias("DMD_TRAMT"),
        )
        .with_columns((pl.col("DMD_TRAMT") - pl.col("DMD_SBRDN_AMT")).alias("DMD_CHRG_AMT"))
    )
    truth = chosen.join(new_total, on="seq").select(
        "SPEC_ID_SNO",
        pl.col("_month").alias("first_delivery"),
        pl.col("_to").alias("corrected_delivery"),
        pl.col("DMD_TRAMT").alias("first_total"),
        pl.col("new_total").alias("corrected_total"),
    )

    def resend(name: str, rows: pl.DataFrame) -> pl.DataFrame:
        original = tables[name]
        again = rows.join(seqs, on="seq") if "_to" not in rows.columns else rows
        return pl.concat(
            [
                original,
                again.with_columns(pl.col("_to").alias("_month")).select(original.columns),
            ]
        )

    out = {
        "T200": resend("T200", redelivered_200),
        "T300": resend("T300", fixed),
        "T400": resend("T400", tables["T400"]),
        "T530": resend("T530", tables["T530"]),
        "PHARM_T200": tables["PHARM_T200"],
        "PHARM_T300": tables["PHARM_T300"],
    }
    return truth, {k: f.drop("seq", strict=False) for k, f in out.items()}
