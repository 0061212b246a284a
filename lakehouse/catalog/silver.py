"""``silver``: typed, conformed to the code systems, deduplicated, corrected.

The registries, the claims, the seniors' centre and the citizen app; the DICOM index is in
``lakehouse.catalog.imaging``."""

from __future__ import annotations

from typing import Final

from lakehouse.catalog.columns import (
    INGREDIENT_PATTERN,
    KCD_PATTERN,
    YKIHO_PATTERN,
    citizen,
    column,
)
from lakehouse.schema import Column, Table

_DELIVERY: Final = (
    column("delivery_id", "text", "the delivery this version of the row came in", required=True),
    column("delivered_at", "timestamp", "when that delivery was sent", required=True),
)


def _money(name: str, description: str) -> Column:
    return column(name, "int", description, required=True, low=0, high=100_000_000)


SILVER: Final = (
    Table(
        "silver.citizens",
        "One row per citizen ever resident in the window: who, where and when, without direct "
        "identifiers.",
        (
            citizen(fk=False),
            column("sex", "text", "M or F", required=True, personal="quasi", pattern=r"^[MF]$"),
            column(
                "birth_year",
                "int",
                "year of birth",
                required=True,
                personal="quasi",
                low=1890,
                high=2030,
            ),
            column(
                "birth_month",
                "int",
                "month of birth",
                required=True,
                personal="quasi",
                low=1,
                high=12,
            ),
            column(
                "district_code",
                "text",
                "district (gu) code",
                required=True,
                personal="quasi",
                pattern=r"^240[1-5]0$",
            ),
            column(
                "dong_code",
                "text",
                "neighbourhood (dong) code",
                required=True,
                personal="quasi",
                pattern=r"^240[1-5]0[0-9]{2}$",
            ),
            column("resident_from", "date", "first day resident", required=True),
            column("resident_to", "date", "first day no longer resident (null: still resident)"),
            column("arrival", "text", "baseline | birth | move_in", required=True),
            column("departure", "text", "death | move_out (null: still resident)"),
            column("died_on", "date", "date of death"),
        ),
        key=("citizen_key",),
        start_before_end=("resident_from", "resident_to"),
    ),
    Table(
        "silver.institutions",
        "Clinics, hospitals, pharmacies and public health centres, with their AI-platform "
        "enrolment.",
        (
            column("ykiho", "text", "HIRA institution code", required=True, pattern=YKIHO_PATTERN),
            column("name", "text", "institution name", required=True),
            column(
                "class_code",
                "text",
                "HIRA class (CL_CD)",
                required=True,
                codes="institution_classes",
            ),
            column("district_code", "text", "district", required=True, pattern=r"^240[1-5]0$"),
            column("dong_code", "text", "neighbourhood"),
            column("address", "text", "road address"),
            column("departments", "text", "HIRA department codes, | separated"),
            column("opened_on", "date", "opening date"),
            column(
                "enrolment_round", "int", "AI-platform round (null: not enrolled)", low=1, high=9
            ),
            column("enrolled_on", "date", "day the round selected it"),
            column("ai_services", "text", "AI services it uses, | separated"),
        ),
        key=("ykiho",),
    ),
    Table(
        "silver.claims",
        "One row per claim statement (medical and pharmacy), in its latest delivered version: a "
        "re-delivered statement replaces the earlier one.",
        (
            column("spec_id", "text", "statement id (SPEC_ID_SNO)", required=True),
            citizen(),
            column(
                "ykiho",
                "text",
                "institution",
                required=True,
                references="silver.institutions.ykiho",
            ),
            column("sex", "text", "M or F at the visit", required=True, pattern=r"^[MF]$"),
            column("age", "int", "age at the visit", required=True, low=0, high=120),
            column(
                "insurance_type",
                "text",
                "4 health insurance, 5 medical aid",
                required=True,
                pattern=r"^[457]$",
            ),
            column(
                "form_type", "text", "statement form (FOM_TP_CD)", required=True, codes="form_types"
            ),
            column(
                "class_code",
                "text",
                "institution class",
                required=True,
                codes="institution_classes",
            ),
            column("department", "text", "treatment department", codes="departments"),
            column(
                "main_dx",
                "text",
                "main diagnosis, KCD with the dot",
                required=True,
                pattern=KCD_PATTERN,
                codes="kcd",
            ),
            column("sub_dx", "text", "first sub-diagnosis, KCD with the dot", pattern=KCD_PATTERN),
            column("start_date", "date", "first day of care", required=True),
            column("end_date", "date", "last day of care", required=True),
            column("visit_days", "int", "days of care", required=True, low=1, high=366),
            column("prescription_no", "text", "prescription issue number (medical statements)"),
            column("prescriber_ykiho", "text", "prescribing institution (pharmacy statements)"),
            _money("total_amount", "total claimed, KRW"),
            _money("patient_amount", "patient's share, KRW"),
            _money("insurer_amount", "insurer's share, KRW"),
            column("claim_month", "text", "YYYY-MM of the first day of care", required=True),
            *_DELIVERY,
        ),
        key=("spec_id",),
        partition_by=("claim_month",),
        grain="month",
        during_life=("start_date", "citizen_key"),
        start_before_end=("start_date", "end_date"),
    ),
    Table(
        "silver.claim_lines",
        "Treatment lines of every delivered version of a statement; the version in use is the "
        "one whose delivery_id equals silver.claims.delivery_id.",
        (
            column("spec_id", "text", "statement id", required=True),
            column(
                "line_no", "int", "line number on the statement", required=True, low=1, high=999
            ),
            column("line_type", "text", "item type (DIV_TY_CD)", required=True, codes="line_types"),
            column("code", "text", "EDI procedure, drug product or fee code", required=True),
            column("name", "text", "item name as billed"),
            column(
                "ingredient_code",
                "text",
                "drug ingredient code (pharmacy drug lines)",
                pattern=INGREDIENT_PATTERN,
            ),
            column(
                "quantity", "float", "total quantity or times", required=True, low=0, high=10_000
            ),
            _money("unit_price", "unit price, KRW"),
            _money("amount", "amount, KRW"),
            column("claim_month", "text", "the statement's claim month", required=True),
            *_DELIVERY,
        ),
        key=("spec_id", "delivery_id", "line_no"),
        partition_by=("claim_month",),
        grain="month",
    ),
    Table(
        "silver.diagnoses",
        "Diagnoses of every delivered version of a statement (KCD with the dot), with the "
        "patient and date carried over for timeline lookups.",
        (
            column("spec_id", "text", "statement id", required=True),
            column("seq", "int", "diagnosis order on the statement", required=True, low=1, high=99),
            column(
                "kcd",
                "text",
                "KCD code with the dot",
                required=True,
                pattern=KCD_PATTERN,
                codes="kcd",
            ),
            column("kind", "text", "main | sub", required=True, pattern=r"^(main|sub)$"),
            citizen(),
            column("diagnosed_on", "date", "the statement's first day of care", required=True),
            column("claim_month", "text", "the statement's claim month", required=True),
            *_DELIVERY,
        ),
        key=("spec_id", "delivery_id", "seq"),
        partition_by=("claim_month",),
        grain="month",
        during_life=("diagnosed_on", "citizen_key"),
    ),
    Table(
        "silver.prescriptions",
        "Prescriptions issued (T530) of every delivered version of a statement.",
        (
            column("spec_id", "text", "statement id", required=True),
            column("line_no", "int", "line on the prescription", required=True, low=1, high=99),
            citizen(),
            column("ykiho", "text", "prescribing institution", required=True),
            column("prescription_no", "text", "issue number", required=True),
            column("issued_on", "date", "day issued", required=True),
            column(
                "ingredient_code",
                "text",
                "HIRA main-ingredient code",
                required=True,
                pattern=INGREDIENT_PATTERN,
                codes="drugs",
            ),
            column("product_code", "text", "product code (9 digits)"),
            column("name", "text", "product name"),
            column("dose", "float", "dose per administration", required=True, low=0, high=1000),
            column("per_day", "int", "administrations per day", required=True, low=0, high=12),
            column(
                "days", "int", "days (or doses for weekly drugs)", required=True, low=1, high=366
            ),
            _money("unit_price", "unit price, KRW"),
            _money("amount", "amount, KRW"),
            column("claim_month", "text", "the statement's claim month", required=True),
            *_DELIVERY,
        ),
        key=("spec_id", "delivery_id", "line_no"),
        partition_by=("claim_month",),
        grain="month",
        during_life=("issued_on", "citizen_key"),
    ),
    Table(
        "silver.dispensings",
        "Drugs dispensed at pharmacies, one row per drug line, linked to the prescription by "
        "prescriber and issue number.",
        (
            column("spec_id", "text", "pharmacy statement id", required=True),
            column(
                "line_no", "int", "line on the pharmacy statement", required=True, low=1, high=99
            ),
            citizen(),
            column(
                "pharmacy_ykiho",
                "text",
                "pharmacy",
                required=True,
                references="silver.institutions.ykiho",
            ),
            column("dispensed_on", "date", "day dispensed", required=True),
            column("prescriber_ykiho", "text", "prescribing institution", required=True),
            column("prescription_no", "text", "prescription issue number", required=True),
            column(
                "ingredient_code",
                "text",
                "HIRA main-ingredient code",
                required=True,
                pattern=INGREDIENT_PATTERN,
                codes="drugs",
            ),
            column("product_code", "text", "product code"),
            column("name", "text", "product name"),
            column("dose", "float", "dose per administration", required=True, low=0, high=1000),
            column("per_day", "int", "administrations per day", required=True, low=0, high=12),
            column("days", "int", "days supplied", required=True, low=1, high=366),
            _money("amount", "amount, KRW"),
            column("claim_month", "text", "YYYY-MM of the dispensing", required=True),
            *_DELIVERY,
        ),
        key=("spec_id", "delivery_id", "line_no"),
        partition_by=("claim_month",),
        grain="month",
        during_life=("dispensed_on", "citizen_key"),
    ),
    Table(
        "silver.centre_members",
        "Seniors' centre members: member number to citizen key.",
        (
            column(
                "member_no", "text", "centre member number", required=True, pattern=r"^BG\d{7}$"
            ),
            citizen(),
            column("joined_on", "date", "day of joining", required=True),
        ),
        key=("member_no",),
    ),
    Table(
        "silver.centre_measurements",
        "One row per measured value at the seniors' centre: gait, balance, EMG, check-up, body "
        "composition, mobility tests, foot pressure and posture, in long form with units.",
        (
            column("measurement_id", "text", "device record id", required=True),
            column(
                "member_no",
                "text",
                "centre member number",
                required=True,
                references="silver.centre_members.member_no",
            ),
            column(
                "device",
                "text",
                "gait | balance | emg | checkup | body | mobility | foot | posture",
                required=True,
                pattern=r"^(gait|balance|emg|checkup|body|mobility|foot|posture)$",
            ),
            column("measured_at", "timestamp", "when measured", required=True),
            column("measure", "text", "what was measured", required=True),
            column("context", "text", "eyes open/closed, muscle and side, ..."),
            column("value", "float", "the value", required=True),
            column("unit", "text", "its unit", required=True),
            column("measured_on", "date", "day measured (KST)", required=True),
        ),
        key=("measurement_id", "measure", "context"),
        partition_by=("measured_on",),
        grain="day",
    ),
    Table(
        "silver.app_users",
        "Citizen-app accounts: app user id to citizen key, from the sign-ups.",
        (
            column("app_user_id", "text", "app account id", required=True),
            citizen(),
            column("signed_up_at", "timestamp", "sign-up time", required=True),
        ),
        key=("app_user_id",),
    ),
    Table(
        "silver.programme_events",
        "Citizen-app events: sign-ups, consents, record-link requests, logins, shares.",
        (
            column("event_id", "text", "event id", required=True),
            column("event_type", "text", "event type", required=True),
            column("occurred_at", "timestamp", "when", required=True),
            column(
                "app_user_id",
                "text",
                "app account",
                required=True,
                references="silver.app_users.app_user_id",
            ),
            column("details", "text", "the event's other fields as JSON (no identifiers)"),
            column("event_date", "date", "day of the event (KST)", required=True),
        ),
        key=("event_id",),
        partition_by=("event_date",),
        grain="day",
    ),
)
