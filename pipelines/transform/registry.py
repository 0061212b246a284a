"""The registries from bronze to silver: citizens, their encrypted identities, institutions.

The resident register arrives as a first-day extract and monthly changes; ``citizens`` folds them
into one row per citizen (when they arrived, left or died, where they live). Names, birth dates and
addresses never reach a bronze or silver table: ``identities`` encrypts them on their way to the
vault, straight from the parsed delivery.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from lakehouse.identity import encrypt, key_id
from lakehouse.pseudonym import pseudonymise
from pipelines.ingest.parse import IMPOSSIBLE_DATE, Quarantined

ARRIVALS = ("BASELINE", "BIRTH", "MOVE_IN")
DEPARTURES = ("DEATH", "MOVE_OUT")


def identities(rows: pl.DataFrame) -> pl.DataFrame:
    """``vault.identities`` rows from parsed register rows (registration number, name, birth
    date, address), encrypted."""
    if not rows.height:
        return pl.DataFrame()
    latest = rows.unique("RRN", keep="last", maintain_order=True)
    return pl.DataFrame(
        {
            "citizen_key": pseudonymise(latest["RRN"]),
            "name_enc": encrypt(latest["NAME"]),
            "birth_date_enc": encrypt(latest["BIRTH_DT"]),
            "address_enc": encrypt(latest["ADDR"]),
            "key_id": [key_id()] * latest.height,
        }
    )


def _date(column: str) -> pl.Expr:
    return pl.col(column).str.strptime(pl.Date, "%Y%m%d", strict=False)


def citizens(register: pl.DataFrame) -> tuple[pl.DataFrame, list[Quarantined]]:
    """One row per citizen from every register event; events with a date that does not exist
    are quarantined."""
    events = register.with_columns(_date("EVENT_DT").alias("on"))
    bad = events.filter(pl.col("on").is_null())
    quarantined = [
        Quarantined(
            "silver",
            "registry/citizens",
            "bronze.resident_register",
            r["_period"],
            r["_delivery_id"],
            r["_file"],
            r["_line"],
            r["citizen_key"],
            IMPOSSIBLE_DATE,
            f"no such date: EVENT_DT={r['EVENT_DT']}",
            f"{r['EVENT_CD']},{r['EVENT_DT']}",
            1,
        )
        for r in bad.iter_rows(named=True)
    ]
    events = events.filter(pl.col("on").is_not_null())
    arrivals = (
        events.filter(pl.col("EVENT_CD").is_in(ARRIVALS))
        .sort("on", "_delivered_at", "_line")
        .unique("citizen_key", keep="first", maintain_order=True)
        .select(
            "citizen_key",
            pl.col("SEX_CD").replace_strict({"1": "M", "2": "F"}, default=None).alias("sex"),
            pl.col("birth_ym").str.slice(0, 4).cast(pl.Int64).alias("birth_year"),
            pl.col("birth_ym").str.slice(4, 2).cast(pl.Int64).alias("birth_month"),
            pl.col("SGG_CD").alias("district_code"),
            pl.col("EMD_CD").alias("dong_code"),
            pl.col("on").alias("resident_from"),
            pl.col("EVENT_CD").str.to_lowercase().alias("arrival"),
        )
    )
    departures = (
        events.filter(pl.col("EVENT_CD").is_in(DEPARTURES))
        .sort("on")
        .unique("citizen_key", keep="last", maintain_order=True)
        .select(
            "citizen_key",
            pl.col("EVENT_CD").str.to_lowercase().alias("departure"),
            # The register dates a death on its day (the person was resident that day) and a
            # move out on the day they left.
            pl.when(pl.col("EVENT_CD") == "DEATH")
            .then(pl.col("on") + timedelta(days=1))
            .otherwise(pl.col("on"))
            .alias("resident_to"),
            pl.when(pl.col("EVENT_CD") == "DEATH").then(pl.col("on")).alias("died_on"),
        )
    )
    out = arrivals.join(departures, on="citizen_key", how="left").select(
        "citizen_key",
        "sex",
        "birth_year",
        "birth_month",
        "district_code",
        "dong_code",
        "resident_from",
        "resident_to",
        "arrival",
        "departure",
        "died_on",
    )
    return out, quarantined


def institutions(snapshot: pl.DataFrame, enrolment: pl.DataFrame) -> pl.DataFrame:
    """The latest institution snapshot with each institution's enrolment round."""
    latest = snapshot.sort("_delivered_at", "_line").unique("YKIHO", keep="last")
    rounds = (
        enrolment.sort("_delivered_at", "_line")
        .unique("YKIHO", keep="last")
        .select(
            "YKIHO",
            pl.col("ROUND").cast(pl.Int64).alias("enrolment_round"),
            pl.col("SELECTED_DT").str.strptime(pl.Date, "%Y%m%d").alias("enrolled_on"),
            pl.col("SERVICES").alias("ai_services"),
        )
    )
    return (
        latest.join(rounds, on="YKIHO", how="left")
        .select(
            pl.col("YKIHO").alias("ykiho"),
            pl.col("YADM_NM").alias("name"),
            pl.col("CL_CD").alias("class_code"),
            pl.col("SGGU_CD").alias("district_code"),
            pl.col("EMDONG_CD").alias("dong_code"),
            pl.col("ADDR").alias("address"),
            pl.col("DGSBJT_CDS").alias("departments"),
            pl.col("ESTB_DD").str.strptime(pl.Date, "%Y%m%d", strict=False).alias("opened_on"),
            "enrolment_round",
            "enrolled_on",
            "ai_services",
        )
        .sort("ykiho")
    )
