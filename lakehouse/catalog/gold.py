"""``gold``: shaped for the apps' lookups."""

from __future__ import annotations

from typing import Final

from lakehouse.catalog.columns import citizen, column
from lakehouse.schema import Table

GOLD: Final = (
    Table(
        "gold.citizen_timeline",
        "Each citizen's lifetime health timeline: visits, diagnoses, prescriptions, dispensings "
        "and centre measurements, one row per event, laid out so one citizen's timeline is one "
        "partition read.",
        (
            citizen(),
            column("event_date", "date", "day of the event", required=True),
            column(
                "kind",
                "text",
                "visit | admission | diagnosis | prescription | dispensing | measurement",
                required=True,
                pattern=r"^(visit|admission|diagnosis|prescription|dispensing|measurement)$",
            ),
            column("code", "text", "KCD, ingredient, EDI or measure code"),
            column(
                "title",
                "text",
                "what happened, in Korean (names from the code lists)",
                required=True,
            ),
            column("detail", "text", "amounts, doses, values"),
            column("institution", "text", "where (institution code)"),
            column(
                "source_ref",
                "text",
                "the silver row it came from: <table>:<key values joined by :>",
                required=True,
            ),
            column(
                "key_bucket",
                "int",
                "bucket of the citizen key (partition): lakehouse.buckets.key_bucket",
                required=True,
                low=0,
                high=63,
            ),
        ),
        key=("source_ref",),
        partition_by=("key_bucket",),
    ),
    Table(
        "gold.programme_uptake_daily",
        "Daily programme uptake by district, age group and sex: residents, app sign-ups and "
        "active users, centre visits. Raw counts; small cells are suppressed by the access "
        "layer, not here.",
        (
            column("day", "date", "the day", required=True),
            column("district_code", "text", "district", required=True, pattern=r"^240[1-5]0$"),
            column(
                "age_group",
                "text",
                "0-19 | 20-39 | 40-64 | 65-74 | 75+ (age that day)",
                required=True,
                pattern=r"^(0-19|20-39|40-64|65-74|75\+)$",
            ),
            column("sex", "text", "M or F", required=True, pattern=r"^[MF]$"),
            column("residents", "int", "residents that day", required=True, low=0),
            column("signups", "int", "app sign-ups that day", required=True, low=0),
            column(
                "app_users",
                "int",
                "residents with an app account signed up by that day",
                required=True,
                low=0,
            ),
            column(
                "active_users",
                "int",
                "residents who logged in to the app that day",
                required=True,
                low=0,
            ),
            column(
                "centre_visitors",
                "int",
                "residents measured at the seniors' centre that day",
                required=True,
                low=0,
            ),
        ),
        key=("day", "district_code", "age_group", "sex"),
    ),
)
