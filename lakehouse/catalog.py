"""The table catalogue: the one declaration of every table in the lakehouse.

Names are ``<layer>.<name>``:

* ``bronze``: each delivery as delivered, typed as text, with its lineage (delivery, file, line,
  delivery time, checksum). Resident registration numbers never get here: they become citizen keys
  at this boundary (``lakehouse.pseudonym``), and direct identifiers go encrypted to ``vault``.
* ``silver``: typed, conformed to the code systems, deduplicated, corrected.
* ``gold``: shaped for the apps' lookups.
* ``ai``: what the AI reading services found (``ai.findings``), written back by batch scoring.
* ``quarantine.records``: every rejected record or file, with its reason.
* ``vault.identities``: the only home of names, birth dates and addresses, encrypted.

Schemas, quality checks (``lakehouse.quality``) and the documentation (``gjh catalog --docs``)
are all generated from this module.
"""

from __future__ import annotations

from typing import Final

from lakehouse.schema import Column, ColumnType, Personal, Table

KCD_PATTERN: Final = r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,2})?$"
INGREDIENT_PATTERN: Final = r"^[0-9]{6}[A-D][A-Z]{2}$"
YKIHO_PATTERN: Final = r"^[0-9]{8}$"
KEY_PATTERN: Final = r"^C[0-9a-f]{32}$"


def _c(
    name: str,
    type: ColumnType,
    description: str,
    *,
    required: bool = False,
    personal: Personal | None = None,
    source: str | None = None,
    pattern: str | None = None,
    low: float | None = None,
    high: float | None = None,
    references: str | None = None,
    codes: str | None = None,
) -> Column:
    return Column(
        name, type, description, required, personal, source, pattern, low, high, references, codes
    )


def _text(name: str, description: str = "", source: str | None = None) -> Column:
    """A bronze column: the delivered text, unparsed."""
    return _c(name, "text", description or f"as delivered ({source or name})", source=source)


def _citizen(source: str | None = None, required: bool = True, fk: bool = True) -> Column:
    return _c(
        "citizen_key",
        "text",
        "pseudonymous citizen key: keyed HMAC-SHA256 of the resident registration number",
        required=required,
        personal="pseudonym",
        source=source,
        pattern=KEY_PATTERN,
        references="silver.citizens.citizen_key" if fk else None,
    )


LINEAGE: Final = (
    _c("_delivery_id", "text", "the delivery folder this row came in", required=True),
    _c("_file", "text", "file path relative to the drop folder", required=True),
    _c("_line", "int", "1-based physical line in the file (the header is line 1)", required=True),
    _c("_delivered_at", "timestamp", "when the source sent the delivery", required=True),
    _c("_sha256", "text", "SHA-256 of the delivered file", required=True),
    _c("_period", "text", "the delivery's period: YYYY-MM or YYYY-MM-DD", required=True),
)


def _bronze(name: str, description: str, columns: tuple[Column, ...], grain: str | None) -> Table:
    return Table(
        f"bronze.{name}",
        description,
        columns + LINEAGE,
        key=("_file", "_line"),
        partition_by=("_period",),
        grain="month" if grain == "month" else "day" if grain == "day" else None,
    )


_CLAIM_STATEMENT = (
    _text("SPEC_ID_SNO", "statement id"),
    _citizen("JID", fk=False),
    *(
        _text(n)
        for n in (
            "YID",
            "SEX_TP_CD",
            "PAT_AGE",
            "INSUP_TP_CD",
            "FOM_TP_CD",
            "CL_CD",
            "DGSBJT_CD",
            "MSICK_CD",
            "SSICK_CD",
            "RECU_FR_DD",
            "RECU_TO_DD",
            "VST_DDCNT",
            "PRSC_ISSU_NO",
            "DMD_TRAMT",
            "DMD_SBRDN_AMT",
            "DMD_CHRG_AMT",
        )
    ),
)
_PHARMACY_STATEMENT = (
    _text("SPEC_ID_SNO", "statement id"),
    _citizen("JID", fk=False),
    *(
        _text(n)
        for n in (
            "YID",
            "SEX_TP_CD",
            "PAT_AGE",
            "INSUP_TP_CD",
            "FOM_TP_CD",
            "CL_CD",
            "MSICK_CD",
            "RECU_FR_DD",
            "PRSC_YID",
            "PRSC_ISSU_NO",
            "DMD_TRAMT",
            "DMD_SBRDN_AMT",
            "DMD_CHRG_AMT",
        )
    ),
)


def _texts(*names: str) -> tuple[Column, ...]:
    return tuple(_text(n) for n in names)


BRONZE: Final = (
    _bronze(
        "resident_register",
        "Resident register extracts: the first-day register and the monthly changes. Names, birth "
        "dates and addresses go encrypted to vault.identities, never here.",
        (
            _text("EVENT_CD", "BASELINE for the first-day register, else the change"),
            _text("EVENT_DT", "date of the change (the register date for BASELINE)"),
            _citizen("RRN", fk=False),
            *_texts("SEX_CD"),
            _c(
                "birth_ym",
                "text",
                "year and month of birth (YYYYMM), from BIRTH_DT",
                personal="quasi",
                source="BIRTH_DT",
            ),
            *_texts("SGG_CD", "EMD_CD"),
        ),
        None,
    ),
    _bronze(
        "institutions",
        "Institution snapshots (HIRA open-data fields).",
        _texts(
            "YKIHO",
            "YADM_NM",
            "CL_CD",
            "CL_CD_NM",
            "SGGU_CD",
            "EMDONG_CD",
            "ADDR",
            "DGSBJT_CDS",
            "ESTB_DD",
        ),
        None,
    ),
    _bronze(
        "ai_enrolment",
        "AI support platform enrolment rounds: the institutions selected in each.",
        _texts("YKIHO", "YADM_NM", "ROUND", "APPLIED_DT", "SELECTED_DT", "SERVICES", "STATUS"),
        None,
    ),
    _bronze("claims_t200", "HIRA T200: claim statements.", _CLAIM_STATEMENT, "month"),
    _bronze(
        "claims_t300",
        "HIRA T300: treatment lines.",
        _texts(
            "SPEC_ID_SNO",
            "LN_NO",
            "DIV_TY_CD",
            "DIV_CD",
            "DIV_NM",
            "FQ1_MDCT_QTY",
            "DY1_MDCT_QTY",
            "TOT_USE_QTY_OR_EXEC_FQ",
            "UNPRC",
            "AMT",
        ),
        "month",
    ),
    _bronze(
        "claims_t400",
        "HIRA T400: diagnoses (KCD, without the dot).",
        _texts("SPEC_ID_SNO", "SICK_SNO", "SICK_CD", "SICK_TY_CD"),
        "month",
    ),
    _bronze(
        "claims_t530",
        "HIRA T530: prescriptions issued for pharmacies to fill.",
        _texts(
            "SPEC_ID_SNO",
            "LN_NO",
            "GNL_NM_CD",
            "DIV_CD",
            "DIV_NM",
            "FQ1_MDCT_QTY",
            "DY1_MDCT_QTY",
            "TOT_INJC_DDCNT_EXEC_FQ",
            "UNPRC",
            "AMT",
        ),
        "month",
    ),
    _bronze("pharmacy_t200", "Pharmacy claim statements.", _PHARMACY_STATEMENT, "month"),
    _bronze(
        "pharmacy_t300",
        "Pharmacy claim lines: dispensing fees and the drugs dispensed.",
        _texts(
            "SPEC_ID_SNO",
            "LN_NO",
            "DIV_TY_CD",
            "DIV_CD",
            "GNL_NM_CD",
            "DIV_NM",
            "FQ1_MDCT_QTY",
            "DY1_MDCT_QTY",
            "TOT_USE_QTY_OR_EXEC_FQ",
            "UNPRC",
            "AMT",
        ),
        "month",
    ),
    _bronze(
        "centre_members",
        "Seniors' centre member register: member number to citizen.",
        (
            _text("member_no", source="회원번호"),
            _citizen("주민등록번호", fk=False),
            _text("sex", source="성별"),
            _text("joined_on", source="가입일"),
        ),
        None,  # small and cumulative: every run reads every monthly delivery, like the registries
    ),
    _bronze(
        "centre_gait",
        "Gait analysis exports.",
        _texts(
            "test_id",
            "member_no",
            "measured_at",
            "speed_m_s",
            "cadence_steps_min",
            "stride_length_cm",
            "step_time_symmetry",
            "double_support_pct",
        ),
        "day",
    ),
    _bronze(
        "centre_balance",
        "Balance measurement exports (eyes open and closed).",
        _texts(
            "record_no",
            "member_no",
            "test_datetime",
            "condition",
            "duration_s",
            "path_length_cm",
            "sway_area_cm2",
            "mean_velocity_cm_s",
            "balance_score",
        ),
        "day",
    ),
    _bronze(
        "centre_checkup",
        "Check-up station exports.",
        (
            _text("record_no", source="측정번호"),
            _text("member_no", source="회원번호"),
            _text("measured_at", source="측정일시"),
            _text("sex", source="성별"),
            _text("age", source="연령"),
            _text("systolic_mmhg", source="수축기혈압"),
            _text("diastolic_mmhg", source="이완기혈압"),
            _text("pulse_bpm", source="맥박"),
            _text("grip_left_kg", source="악력_좌"),
            _text("grip_right_kg", source="악력_우"),
            _text("height_cm", source="신장"),
            _text("weight_kg", source="체중"),
            _text("fasting_glucose_mg_dl", source="공복혈당"),
        ),
        "day",
    ),
    _bronze(
        "centre_emg",
        "Wireless EMG sessions: one JSON object per session, kept as delivered.",
        _texts("session_id", "member_no", "started_at", "payload"),
        "day",
    ),
    _bronze(
        "app_events",
        "Citizen-app events, one JSON object per event; sign-ups' registration numbers are "
        "already citizen keys and their names are dropped.",
        (
            *_texts("event_id", "event_type", "occurred_at", "app_user_id"),
            _citizen("rrn", required=False, fk=False),
            _text("payload", "the event's other fields as JSON"),
        ),
        "day",
    ),
)

OPS: Final = (
    Table(
        "bronze.deliveries",
        "The ingestion ledger: every delivered file the pipelines saw, and what became of it.",
        (
            _c("source", "text", "delivering source (claims, centre/gait, ...)", required=True),
            _c("delivery_id", "text", "the delivery folder", required=True),
            _c("file", "text", "file path relative to the drop folder", required=True),
            _c("sha256", "text", "SHA-256 of the file's bytes", required=True),
            _c("period", "text", "the delivery's period", required=True),
            _c("delivered_at", "timestamp", "when the source sent it", required=True),
            _c("rows_declared", "int", "data rows the manifest declares"),
            _c("rows_read", "int", "data lines found in the file"),
            _c("rows_accepted", "int", "rows written to bronze"),
            _c("rows_quarantined", "int", "rows (or the whole file) quarantined"),
            _c("status", "text", "ingested | duplicate | rejected", required=True),
            _c("duplicate_of", "text", "the earlier file with the same bytes"),
        ),
        key=("source", "delivery_id", "file"),
    ),
    Table(
        "quarantine.records",
        "Every rejected record or file with its reason; payloads carry citizen keys, never "
        "registration numbers.",
        (
            _c("stage", "text", "bronze (parsing) or silver (conforming)", required=True),
            _c("source", "text", "delivering source", required=True),
            _c("table", "text", "the table the record was meant for", required=True),
            _c("period", "text", "the pipeline partition that quarantined it", required=True),
            _c("delivery_id", "text", "the delivery folder", required=True),
            _c("file", "text", "file path relative to the drop folder", required=True),
            _c("line", "int", "1-based line; null when the whole file is quarantined"),
            _c("record_key", "text", "the record's own key, where it has one"),
            _c("reason", "text", "reason code", required=True),
            _c("message", "text", "what is wrong, in words", required=True),
            _c("payload", "text", "the raw record, pseudonymised"),
            _c(
                "rows",
                "int",
                "rows this record stands for (the file's rows for a file)",
                required=True,
            ),
        ),
        partition_by=("stage",),
    ),
    Table(
        "vault.identities",
        "Direct identifiers, encrypted (Fernet); only the access layer decrypts them, for the "
        "person themselves.",
        (
            _citizen(),
            _c("name_enc", "text", "name, encrypted", required=True, personal="encrypted"),
            _c(
                "birth_date_enc",
                "text",
                "birth date, encrypted",
                required=True,
                personal="encrypted",
            ),
            _c(
                "address_enc",
                "text",
                "road address, encrypted",
                required=True,
                personal="encrypted",
            ),
            _c("key_id", "text", "which encryption key", required=True),
        ),
        key=("citizen_key",),
    ),
)

# What the apps append (never update): who read whose data, the grants that allowed it, and
# the sign-in attempts. The access layer (``lakehouse.access``) is their only writer.
ROLES_PATTERN: Final = r"^(citizen|clinician|official|admin)$"
APP_LEDGERS: Final = (
    Table(
        "ops.audit_log",
        "Every read or write of person-level data, and every refusal, by anyone: account, role, "
        "time, origin, whose data, the action, its purpose and how many rows (Medical Service "
        "Act access log; kept at least two years).",
        (
            _c("event_id", "text", "a random id of the entry", required=True),
            _c("at", "timestamp", "when", required=True),
            _c(
                "month",
                "text",
                "YYYY-MM of at (partition: retention drops whole months)",
                required=True,
                pattern=r"^[0-9]{4}-[0-9]{2}$",
            ),
            _c("account", "text", "who asked (account name)", required=True),
            _c("role", "text", "their role", required=True, pattern=ROLES_PATTERN),
            _c("institution", "text", "their institution (clinicians)", pattern=YKIHO_PATTERN),
            _c("origin", "text", "where from: the app and the client address", required=True),
            _c(
                "subject_key",
                "text",
                "whose data (citizen key); null for aggregates and operations",
                personal="pseudonym",
                pattern=KEY_PATTERN,
            ),
            _c("action", "text", "what was done, e.g. read:timeline", required=True),
            _c(
                "purpose",
                "text",
                "on what basis: self | proxy | institution | share | emergency | monitoring | "
                "oversight | account",
                required=True,
            ),
            _c("outcome", "text", "allowed | denied", required=True, pattern=r"^(allowed|denied)$"),
            _c("rows", "int", "rows returned or written", required=True, low=0),
            _c("emergency", "bool", "an emergency (break-the-glass) access", required=True),
            _c("detail", "text", "the stated reason, or why it was refused"),
        ),
        key=("event_id",),
        partition_by=("month",),
    ),
    Table(
        "ops.grants",
        "Who may see whose record beyond the default rules, as events: a citizen's share code or "
        "proxy (family carer) grant, a clinician's emergency access, their use and revocation.",
        (
            _c("event_id", "text", "a random id of the event", required=True),
            _c("grant_id", "text", "the grant the event belongs to", required=True),
            _c(
                "event",
                "text",
                "created | redeemed | revoked",
                required=True,
                pattern=r"^(created|redeemed|revoked)$",
            ),
            _c(
                "kind",
                "text",
                "share | proxy | emergency",
                required=True,
                pattern=r"^(share|proxy|emergency)$",
            ),
            _c("at", "timestamp", "when", required=True),
            _c(
                "subject_key",
                "text",
                "whose record",
                required=True,
                personal="pseudonym",
                pattern=KEY_PATTERN,
            ),
            _c("actor", "text", "the account that did this", required=True),
            _c("grantee", "text", "the account it is for (proxy; a share once redeemed)"),
            _c("institution", "text", "the grantee's institution", pattern=YKIHO_PATTERN),
            _c("code_hash", "text", "keyed hash of a share code (the code is never stored)"),
            _c("expires_at", "timestamp", "when it stops allowing access (null: until revoked)"),
            _c("reason", "text", "the stated reason (emergency)"),
        ),
        key=("event_id",),
    ),
    Table(
        "ops.sign_ins",
        "Every sign-in attempt to the embedded local accounts (lockout counts the recent "
        "failures; the admin reviews them).",
        (
            _c("at", "timestamp", "when", required=True),
            _c("account", "text", "the account name given", required=True),
            _c("origin", "text", "the app and the client address", required=True),
            _c(
                "outcome",
                "text",
                "ok | wrong_password | unknown_account | locked | disabled | forged_session",
                required=True,
            ),
        ),
    ),
)

_DELIVERY: Final = (
    _c("delivery_id", "text", "the delivery this version of the row came in", required=True),
    _c("delivered_at", "timestamp", "when that delivery was sent", required=True),
)


def _money(name: str, description: str) -> Column:
    return _c(name, "int", description, required=True, low=0, high=100_000_000)


SILVER: Final = (
    Table(
        "silver.citizens",
        "One row per citizen ever resident in the window: who, where and when, without direct "
        "identifiers.",
        (
            _citizen(fk=False),
            _c("sex", "text", "M or F", required=True, personal="quasi", pattern=r"^[MF]$"),
            _c(
                "birth_year",
                "int",
                "year of birth",
                required=True,
                personal="quasi",
                low=1890,
                high=2030,
            ),
            _c(
                "birth_month",
                "int",
                "month of birth",
                required=True,
                personal="quasi",
                low=1,
                high=12,
            ),
            _c(
                "district_code",
                "text",
                "district (gu) code",
                required=True,
                personal="quasi",
                pattern=r"^240[1-5]0$",
            ),
            _c(
                "dong_code",
                "text",
                "neighbourhood (dong) code",
                required=True,
                personal="quasi",
                pattern=r"^240[1-5]0[0-9]{2}$",
            ),
            _c("resident_from", "date", "first day resident", required=True),
            _c("resident_to", "date", "first day no longer resident (null: still resident)"),
            _c("arrival", "text", "baseline | birth | move_in", required=True),
            _c("departure", "text", "death | move_out (null: still resident)"),
            _c("died_on", "date", "date of death"),
        ),
        key=("citizen_key",),
        start_before_end=("resident_from", "resident_to"),
    ),
    Table(
        "silver.institutions",
        "Clinics, hospitals, pharmacies and public health centres, with their AI-platform "
        "enrolment.",
        (
            _c("ykiho", "text", "HIRA institution code", required=True, pattern=YKIHO_PATTERN),
            _c("name", "text", "institution name", required=True),
            _c(
                "class_code",
                "text",
                "HIRA class (CL_CD)",
                required=True,
                codes="institution_classes",
            ),
            _c("district_code", "text", "district", required=True, pattern=r"^240[1-5]0$"),
            _c("dong_code", "text", "neighbourhood"),
            _c("address", "text", "road address"),
            _c("departments", "text", "HIRA department codes, | separated"),
            _c("opened_on", "date", "opening date"),
            _c("enrolment_round", "int", "AI-platform round (null: not enrolled)", low=1, high=9),
            _c("enrolled_on", "date", "day the round selected it"),
            _c("ai_services", "text", "AI services it uses, | separated"),
        ),
        key=("ykiho",),
    ),
    Table(
        "silver.claims",
        "One row per claim statement (medical and pharmacy), in its latest delivered version: a "
        "re-delivered statement replaces the earlier one.",
        (
            _c("spec_id", "text", "statement id (SPEC_ID_SNO)", required=True),
            _citizen(),
            _c(
                "ykiho",
                "text",
                "institution",
                required=True,
                references="silver.institutions.ykiho",
            ),
            _c("sex", "text", "M or F at the visit", required=True, pattern=r"^[MF]$"),
            _c("age", "int", "age at the visit", required=True, low=0, high=120),
            _c(
                "insurance_type",
                "text",
                "4 health insurance, 5 medical aid",
                required=True,
                pattern=r"^[457]$",
            ),
            _c(
                "form_type", "text", "statement form (FOM_TP_CD)", required=True, codes="form_types"
            ),
            _c(
                "class_code",
                "text",
                "institution class",
                required=True,
                codes="institution_classes",
            ),
            _c("department", "text", "treatment department", codes="departments"),
            _c(
                "main_dx",
                "text",
                "main diagnosis, KCD with the dot",
                required=True,
                pattern=KCD_PATTERN,
                codes="kcd",
            ),
            _c("sub_dx", "text", "first sub-diagnosis, KCD with the dot", pattern=KCD_PATTERN),
            _c("start_date", "date", "first day of care", required=True),
            _c("end_date", "date", "last day of care", required=True),
            _c("visit_days", "int", "days of care", required=True, low=1, high=366),
            _c("prescription_no", "text", "prescription issue number (medical statements)"),
            _c("prescriber_ykiho", "text", "prescribing institution (pharmacy statements)"),
            _money("total_amount", "total claimed, KRW"),
            _money("patient_amount", "patient's share, KRW"),
            _money("insurer_amount", "insurer's share, KRW"),
            _c("claim_month", "text", "YYYY-MM of the first day of care", required=True),
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
            _c("spec_id", "text", "statement id", required=True),
            _c("line_no", "int", "line number on the statement", required=True, low=1, high=999),
            _c("line_type", "text", "item type (DIV_TY_CD)", required=True, codes="line_types"),
            _c("code", "text", "EDI procedure, drug product or fee code", required=True),
            _c("name", "text", "item name as billed"),
            _c(
                "ingredient_code",
                "text",
                "drug ingredient code (pharmacy drug lines)",
                pattern=INGREDIENT_PATTERN,
            ),
            _c("quantity", "float", "total quantity or times", required=True, low=0, high=10_000),
            _money("unit_price", "unit price, KRW"),
            _money("amount", "amount, KRW"),
            _c("claim_month", "text", "the statement's claim month", required=True),
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
            _c("spec_id", "text", "statement id", required=True),
            _c("seq", "int", "diagnosis order on the statement", required=True, low=1, high=99),
            _c(
                "kcd",
                "text",
                "KCD code with the dot",
                required=True,
                pattern=KCD_PATTERN,
                codes="kcd",
            ),
            _c("kind", "text", "main | sub", required=True, pattern=r"^(main|sub)$"),
            _citizen(),
            _c("diagnosed_on", "date", "the statement's first day of care", required=True),
            _c("claim_month", "text", "the statement's claim month", required=True),
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
            _c("spec_id", "text", "statement id", required=True),
            _c("line_no", "int", "line on the prescription", required=True, low=1, high=99),
            _citizen(),
            _c("ykiho", "text", "prescribing institution", required=True),
            _c("prescription_no", "text", "issue number", required=True),
            _c("issued_on", "date", "day issued", required=True),
            _c(
                "ingredient_code",
                "text",
                "HIRA main-ingredient code",
                required=True,
                pattern=INGREDIENT_PATTERN,
                codes="drugs",
            ),
            _c("product_code", "text", "product code (9 digits)"),
            _c("name", "text", "product name"),
            _c("dose", "float", "dose per administration", required=True, low=0, high=1000),
            _c("per_day", "int", "administrations per day", required=True, low=0, high=12),
            _c("days", "int", "days (or doses for weekly drugs)", required=True, low=1, high=366),
            _money("unit_price", "unit price, KRW"),
            _money("amount", "amount, KRW"),
            _c("claim_month", "text", "the statement's claim month", required=True),
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
            _c("spec_id", "text", "pharmacy statement id", required=True),
            _c("line_no", "int", "line on the pharmacy statement", required=True, low=1, high=99),
            _citizen(),
            _c(
                "pharmacy_ykiho",
                "text",
                "pharmacy",
                required=True,
                references="silver.institutions.ykiho",
            ),
            _c("dispensed_on", "date", "day dispensed", required=True),
            _c("prescriber_ykiho", "text", "prescribing institution", required=True),
            _c("prescription_no", "text", "prescription issue number", required=True),
            _c(
                "ingredient_code",
                "text",
                "HIRA main-ingredient code",
                required=True,
                pattern=INGREDIENT_PATTERN,
                codes="drugs",
            ),
            _c("product_code", "text", "product code"),
            _c("name", "text", "product name"),
            _c("dose", "float", "dose per administration", required=True, low=0, high=1000),
            _c("per_day", "int", "administrations per day", required=True, low=0, high=12),
            _c("days", "int", "days supplied", required=True, low=1, high=366),
            _money("amount", "amount, KRW"),
            _c("claim_month", "text", "YYYY-MM of the dispensing", required=True),
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
            _c("member_no", "text", "centre member number", required=True, pattern=r"^BG\d{7}$"),
            _citizen(),
            _c("joined_on", "date", "day of joining", required=True),
        ),
        key=("member_no",),
    ),
    Table(
        "silver.centre_measurements",
        "One row per measured value at the seniors' centre: gait, balance, EMG and check-up, "
        "in long form with units.",
        (
            _c("measurement_id", "text", "device record id", required=True),
            _c(
                "member_no",
                "text",
                "centre member number",
                required=True,
                references="silver.centre_members.member_no",
            ),
            _c(
                "device",
                "text",
                "gait | balance | emg | checkup",
                required=True,
                pattern=r"^(gait|balance|emg|checkup)$",
            ),
            _c("measured_at", "timestamp", "when measured", required=True),
            _c("measure", "text", "what was measured", required=True),
            _c("context", "text", "eyes open/closed, muscle and side, ..."),
            _c("value", "float", "the value", required=True),
            _c("unit", "text", "its unit", required=True),
            _c("measured_on", "date", "day measured (KST)", required=True),
        ),
        key=("measurement_id", "measure", "context"),
        partition_by=("measured_on",),
        grain="day",
    ),
    Table(
        "silver.app_users",
        "Citizen-app accounts: app user id to citizen key, from the sign-ups.",
        (
            _c("app_user_id", "text", "app account id", required=True),
            _citizen(),
            _c("signed_up_at", "timestamp", "sign-up time", required=True),
        ),
        key=("app_user_id",),
    ),
    Table(
        "silver.programme_events",
        "Citizen-app events: sign-ups, consents, record-link requests, logins, shares.",
        (
            _c("event_id", "text", "event id", required=True),
            _c("event_type", "text", "event type", required=True),
            _c("occurred_at", "timestamp", "when", required=True),
            _c(
                "app_user_id",
                "text",
                "app account",
                required=True,
                references="silver.app_users.app_user_id",
            ),
            _c("details", "text", "the event's other fields as JSON (no identifiers)"),
            _c("event_date", "date", "day of the event (KST)", required=True),
        ),
        key=("event_id",),
        partition_by=("event_date",),
        grain="day",
    ),
)

_UID: Final = r"^[0-9]+(\.[0-9]+)*$"


def _uid(name: str, description: str, required: bool = True) -> Column:
    return _c(name, "text", description, required=required, pattern=_UID)


_PATIENT_KEY: Final = _c(
    "patient_key",
    "text",
    "pseudonymous patient (see silver.imaging_instances)",
    personal="pseudonym",
    pattern=r"^[CL][0-9a-f]{32}$",
)
# Header attributes an instance, its series and its study share (silver.imaging_instances holds
# them per instance; the series and study tables aggregate them).
_IMAGE_ATTRIBUTES: Final = (
    _c("modality", "text", "Modality (0008,0060)"),
    _c("series_number", "int", "SeriesNumber"),
    _c("series_description", "text", "SeriesDescription"),
    _c("body_part", "text", "BodyPartExamined, upper case (null when blank)"),
    _c("view_position", "text", "ViewPosition (PA, AP, LL, CC, MLO, ...)"),
    _c("laterality", "text", "ImageLaterality, else Laterality (R, L, B, U)"),
    _c("image_type", "text", "ImageType values, upper case, joined by a backslash"),
    _c("presentation_intent", "text", "PresentationIntentType (FOR PRESENTATION / PROCESSING)"),
    _c("burned_in_annotation", "bool", "BurnedInAnnotation YES (null when not stated)"),
    _c("pixel_spacing_mm", "float", "PixelSpacing (else ImagerPixelSpacing), row spacing in mm"),
    _c("sampling_frequency_hz", "float", "waveform sampling frequency (ECG)"),
    _c("waveform_channels", "int", "waveform channels (ECG leads)"),
)
_RECEIVED: Final = (
    _c("first_received_at", "timestamp", "when its first instance landed", required=True),
    _c("last_received_at", "timestamp", "when its latest instance landed", required=True),
)

IMAGING: Final = (
    Table(
        "silver.imaging_instances",
        "Every DICOM instance the clinics uploaded, indexed from its header (pixels are never "
        "read here); the original is kept, encrypted and unmodified, in the object store at "
        "file_uri. One row per SOP Instance UID: the same instance dropped again is a duplicate.",
        (
            _uid("sop_instance_uid", "SOPInstanceUID"),
            _uid("sop_class_uid", "SOPClassUID"),
            _uid("transfer_syntax_uid", "TransferSyntaxUID of the file"),
            _uid("study_instance_uid", "StudyInstanceUID"),
            _uid("series_instance_uid", "SeriesInstanceUID"),
            _c("instance_number", "int", "InstanceNumber"),
            _c(
                "file_uri",
                "text",
                "the original in the object store, relative to LAKEHOUSE_URI "
                "(lakehouse.dicom_store)",
                required=True,
            ),
            _c("size_bytes", "int", "size of the original", required=True, low=1),
            _c("sha256", "text", "SHA-256 of the original bytes", required=True),
            _c(
                "source_file", "text", "where it landed, relative to the drop folder", required=True
            ),
            _c("drop_id", "text", "the ingestion pass that indexed it", required=True),
            _c("received_at", "timestamp", "when it landed in the drop folder", required=True),
            _c("indexed_at", "timestamp", "when it was indexed", required=True),
            _citizen(required=False, fk=False),
            _c(
                "patient_key",
                "text",
                "pseudonymous patient: the citizen key for a registration number, else "
                "L + keyed HMAC of the institution and its local patient id",
                personal="pseudonym",
                pattern=r"^[CL][0-9a-f]{32}$",
            ),
            _c("patient_sex", "text", "PatientSex (M, F, O)", personal="quasi", pattern="^[MFO]$"),
            _c(
                "patient_age_months",
                "int",
                "age at the study in months (PatientAge, else birth date and study date)",
                personal="quasi",
                low=0,
                high=1560,
            ),
            _c("institution", "text", "the sending institution's YKIHO", pattern=YKIHO_PATTERN),
            _c("institution_name", "text", "InstitutionName"),
            _c("accession_number", "text", "AccessionNumber (the order at the clinic)"),
            _c("study_description", "text", "StudyDescription"),
            _c("study_datetime", "timestamp", "StudyDate and StudyTime (KST)"),
            _c("content_datetime", "timestamp", "ContentDate and ContentTime (KST)"),
            _c("rows", "int", "Rows"),
            _c("columns", "int", "Columns"),
            _c("number_of_frames", "int", "NumberOfFrames (1 when absent)", low=1),
            _c("photometric_interpretation", "text", "PhotometricInterpretation"),
            *_IMAGE_ATTRIBUTES,
        ),
        key=("sop_instance_uid",),
    ),
    Table(
        "silver.imaging_series",
        "One row per DICOM series: the attributes routing reads, from its instances.",
        (
            _uid("series_instance_uid", "SeriesInstanceUID"),
            _uid("study_instance_uid", "StudyInstanceUID"),
            _c("sop_class_uid", "text", "SOPClassUID (of its first instance)"),
            *_IMAGE_ATTRIBUTES,
            _c("rows", "int", "Rows (of its first instance)"),
            _c("columns", "int", "Columns (of its first instance)"),
            _c("instances", "int", "instances indexed", required=True, low=1),
            _c("frames", "int", "frames over its instances", required=True, low=0),
            *_RECEIVED,
        ),
        key=("series_instance_uid",),
    ),
    Table(
        "silver.imaging_studies",
        "One row per DICOM study: who (pseudonymous), where, what and when; a study is "
        "complete once no instance arrived for the quiet period (silver.imaging_routing).",
        (
            _uid("study_instance_uid", "StudyInstanceUID"),
            _citizen(required=False, fk=False),
            _PATIENT_KEY,
            _c("patient_sex", "text", "M, F or O", personal="quasi", pattern="^[MFO]$"),
            _c("patient_age_months", "int", "age at the study in months", personal="quasi"),
            _c("institution", "text", "the sending institution's YKIHO", pattern=YKIHO_PATTERN),
            _c("institution_name", "text", "InstitutionName"),
            _c("accession_number", "text", "AccessionNumber"),
            _c("study_description", "text", "StudyDescription"),
            _c("study_datetime", "timestamp", "StudyDate and StudyTime (KST)"),
            _c("study_date", "date", "StudyDate"),
            _c("modalities", "text", "modalities in the study, | separated", required=True),
            _c("body_parts", "text", "body parts examined, | separated"),
            _c("series_count", "int", "series indexed", required=True, low=1),
            _c("instance_count", "int", "instances indexed", required=True, low=1),
            _c(
                "patient_conflict",
                "bool",
                "instances naming another patient arrived for it (quarantined; the study is "
                "held back)",
                required=True,
            ),
            *_RECEIVED,
        ),
        key=("study_instance_uid",),
    ),
    Table(
        "silver.imaging_routing",
        "Every routing decision: each series of a complete study goes to the AI reading "
        "service whose rule fired, or is held back or left unrouted with the reason.",
        (
            _uid("study_instance_uid", "StudyInstanceUID"),
            _uid("series_instance_uid", "SeriesInstanceUID"),
            _c(
                "outcome",
                "text",
                "routed | held_back | unrouted",
                required=True,
                pattern=r"^(routed|held_back|unrouted)$",
            ),
            _c("service", "text", "the AI service (routed only)", codes="ai_services"),
            _c("rule", "text", "the rule that fired (pipelines/transform/routing.toml)"),
            _c("reason", "text", "why it was held back, or no_service"),
            _c("message", "text", "the decision in words", required=True),
            _c("instances", "int", "instances in the series", required=True, low=1),
            _c("rules_version", "text", "SHA-256 prefix of the rule file used", required=True),
            _c(
                "received_until",
                "timestamp",
                "the study's last instance when decided (a later instance reopens the study)",
                required=True,
            ),
            _c("decided_at", "timestamp", "when decided", required=True),
        ),
        key=("study_instance_uid", "series_instance_uid"),
    ),
)

AI: Final = (
    Table(
        "ai.findings",
        "What an AI reading service found in one complete, routed study: one row per study, "
        "service, model version and finding code; or one failed row with the reason when the "
        "study could not be scored. The models are reference models trained on synthetic data.",
        (
            _uid("study_instance_uid", "StudyInstanceUID"),
            _uid("series_instance_uid", "the series holding the located instance", False),
            _uid("sop_instance_uid", "the instance where the finding is located", False),
            _citizen(required=False, fk=False),
            _PATIENT_KEY,
            _c("institution", "text", "the sending institution's YKIHO", pattern=YKIHO_PATTERN),
            _c("service", "text", "the AI reading service", required=True, codes="ai_services"),
            _c(
                "finding_code",
                "text",
                "what was looked for (models/<service>/config.toml)",
                required=True,
            ),
            _c(
                "status",
                "text",
                "scored | failed",
                required=True,
                pattern=r"^(scored|failed)$",
            ),
            _c(
                "reason",
                "text",
                "why it could not be scored (failed only): unreadable_pixels | unsupported_input"
                " | missing_original | report_failed",
                pattern=r"^(unreadable_pixels|unsupported_input|missing_original|report_failed)$",
            ),
            _c("message", "text", "the error behind the reason, in words (failed only)"),
            _c("score", "float", "probability 0..1 (classifiers; shown as 0-100)", low=0, high=1),
            _c("threshold", "float", "the operating threshold it was compared with"),
            _c("positive", "bool", "the score (or value) is beyond the threshold"),
            _c("value", "float", "the measured value of a regression (bone age, leg length)"),
            _c("unit", "text", "the value's unit: month | mm", pattern=r"^(month|mm)$"),
            _c(
                "location",
                "text",
                "where, as JSON: a box in the instance's pixels {type: box, box: [x0, y0, x1, "
                "y1]} or ECG segments {type: segments, seconds: [[start, end], ...]}",
            ),
            _c("heatmap_uri", "text", "the explanation map in the object store (.npy, encrypted)"),
            _c("sr_uri", "text", "the study's DICOM SR (TID 1500) in the object store"),
            _c("instances_scored", "int", "instances the model read", required=True, low=0),
            _c("algorithm_name", "text", "the model's name", required=True),
            _c(
                "algorithm_version",
                "text",
                "the model's version (models/registry.toml)",
                required=True,
            ),
            _c(
                "device_uid",
                "text",
                "the algorithm's DICOM UID (changes when retrained)",
                required=True,
                pattern=_UID,
            ),
            _c(
                "tracking_id",
                "text",
                "the finding's tracking identifier (as in the SR)",
                required=True,
            ),
            _c(
                "tracking_uid",
                "text",
                "the finding's tracking UID (as in the SR)",
                required=True,
                pattern=_UID,
            ),
            _c(
                "verification",
                "text",
                "unverified until a clinician accepts, rejects or amends it (IHE AIRA)",
                required=True,
                pattern=r"^(unverified|accepted|rejected|amended)$",
            ),
            _c(
                "priority",
                "int",
                "worklist priority: 1 urgent (positive, high score), 2 positive, 3 negative, "
                "4 failed (a person must look)",
                required=True,
                low=1,
                high=4,
            ),
            _c(
                "synthetic_reference",
                "bool",
                "scored by a reference model trained on synthetic data (every screen says so)",
                required=True,
            ),
            _c("scored_at", "timestamp", "when scored", required=True),
        ),
        key=("study_instance_uid", "service", "algorithm_version", "finding_code"),
    ),
)

# What clinicians decide about the AI's findings, and the remote readings clinics ask for: both
# appended by the access layer (``lakehouse.access``), never updated, so two clinicians acting
# at once both keep their say.
DECISIONS: Final = "^(review|accepted|rejected|amended)$"
TRIAGE: Final = (
    Table(
        "ops.triage_events",
        "Every clinician's step on an AI finding: opened for review, accepted, rejected or "
        "amended, with the reason code and an optional note (IHE AIRA's assessment). Append-only: "
        "a finding's verification is its latest decision.",
        (
            _c("event_id", "text", "a random id of the event", required=True),
            _c("at", "timestamp", "when", required=True),
            _c("account", "text", "the clinician (account name)", required=True),
            _c(
                "institution",
                "text",
                "the clinician's institution",
                required=True,
                pattern=YKIHO_PATTERN,
            ),
            _uid("study_instance_uid", "the study"),
            _c("service", "text", "the AI service", required=True, codes="ai_services"),
            _c("finding_code", "text", "the finding", required=True),
            _c("algorithm_version", "text", "the model version that found it", required=True),
            _uid("tracking_uid", "the finding's tracking UID (ai.findings, the SR)"),
            _PATIENT_KEY,
            _c(
                "decision",
                "text",
                "review (opened) | accepted | rejected | amended",
                required=True,
                pattern=DECISIONS,
            ),
            _c("reason_code", "text", "why (lakehouse/reference/triage.toml); null for review"),
            _c("note", "text", "the clinician's note, as typed"),
            _c("amended_value", "float", "an amended measurement, in the finding's unit"),
            _c("basis", "text", "on what basis they could see it: institution | remote_reading"),
            _c("sr_uri", "text", "the SR re-issued with this verification, in the object store"),
        ),
        key=("event_id",),
    ),
    Table(
        "ops.reading_requests",
        "Remote readings as events: a clinic asks a hospital's readers for a reading of one "
        "study, and the reply (a report and a decision) returns to the clinic.",
        (
            _c("event_id", "text", "a random id of the event", required=True),
            _c("request_id", "text", "the request the event belongs to", required=True),
            _c(
                "event",
                "text",
                "requested | replied | cancelled",
                required=True,
                pattern=r"^(requested|replied|cancelled)$",
            ),
            _c("at", "timestamp", "when", required=True),
            _uid("study_instance_uid", "the study to read"),
            _PATIENT_KEY,
            _c(
                "from_institution",
                "text",
                "the clinic that asks",
                required=True,
                pattern=YKIHO_PATTERN,
            ),
            _c(
                "to_institution",
                "text",
                "the hospital asked to read",
                required=True,
                pattern=YKIHO_PATTERN,
            ),
            _c("actor", "text", "the account that did this", required=True),
            _c("text", "text", "the question (requested) or the report (replied)"),
            _c(
                "decision",
                "text",
                "the reader's decision on the AI finding (replied)",
                pattern=DECISIONS,
            ),
        ),
        key=("event_id",),
    ),
)

GOLD: Final = (
    Table(
        "gold.citizen_timeline",
        "Each citizen's lifetime health timeline: visits, diagnoses, prescriptions, dispensings "
        "and centre measurements, one row per event, laid out so one citizen's timeline is one "
        "partition read.",
        (
            _citizen(),
            _c("event_date", "date", "day of the event", required=True),
            _c(
                "kind",
                "text",
                "visit | admission | diagnosis | prescription | dispensing | measurement",
                required=True,
                pattern=r"^(visit|admission|diagnosis|prescription|dispensing|measurement)$",
            ),
            _c("code", "text", "KCD, ingredient, EDI or measure code"),
            _c(
                "title",
                "text",
                "what happened, in Korean (names from the code lists)",
                required=True,
            ),
            _c("detail", "text", "amounts, doses, values"),
            _c("institution", "text", "where (institution code)"),
            _c(
                "source_ref",
                "text",
                "the silver row it came from: <table>:<key values joined by :>",
                required=True,
            ),
            _c(
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
            _c("day", "date", "the day", required=True),
            _c("district_code", "text", "district", required=True, pattern=r"^240[1-5]0$"),
            _c(
                "age_group",
                "text",
                "0-19 | 20-39 | 40-64 | 65-74 | 75+ (age that day)",
                required=True,
                pattern=r"^(0-19|20-39|40-64|65-74|75\+)$",
            ),
            _c("sex", "text", "M or F", required=True, pattern=r"^[MF]$"),
            _c("residents", "int", "residents that day", required=True, low=0),
            _c("signups", "int", "app sign-ups that day", required=True, low=0),
            _c(
                "app_users",
                "int",
                "residents with an app account signed up by that day",
                required=True,
                low=0,
            ),
            _c(
                "active_users",
                "int",
                "residents who logged in to the app that day",
                required=True,
                low=0,
            ),
            _c(
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

TABLES: Final[dict[str, Table]] = {
    t.name: t for t in (*BRONZE, *OPS, *APP_LEDGERS, *SILVER, *IMAGING, *AI, *TRIAGE, *GOLD)
}


def table(name: str) -> Table:
    """The declaration of one table, by ``<layer>.<name>``."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"no table {name!r} in the catalogue") from None
