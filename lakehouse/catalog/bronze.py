"""``bronze``: each delivery as delivered, typed as text, with its lineage.

Resident registration numbers never get here: they become citizen keys at this boundary
(``lakehouse.pseudonym``), and direct identifiers go encrypted to ``vault.identities``."""

from __future__ import annotations

from typing import Final

from lakehouse.catalog.columns import citizen, column
from lakehouse.schema import Column, Table


def _text(name: str, description: str = "", source: str | None = None) -> Column:
    """A bronze column: the delivered text, unparsed."""
    return column(name, "text", description or f"as delivered ({source or name})", source=source)


LINEAGE: Final = (
    column("_delivery_id", "text", "the delivery folder this row came in", required=True),
    column("_file", "text", "file path relative to the drop folder", required=True),
    column(
        "_line", "int", "1-based physical line in the file (the header is line 1)", required=True
    ),
    column("_delivered_at", "timestamp", "when the source sent the delivery", required=True),
    column("_sha256", "text", "SHA-256 of the delivered file", required=True),
    column("_period", "text", "the delivery's period: YYYY-MM or YYYY-MM-DD", required=True),
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
    citizen("JID", fk=False),
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
    citizen("JID", fk=False),
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
            citizen("RRN", fk=False),
            *_texts("SEX_CD"),
            column(
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
            citizen("주민등록번호", fk=False),
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
        "centre_body",
        "Body composition (bioimpedance) exports, InBody-style.",
        (
            _text("record_no", source="No."),
            _text("member_no", source="ID"),
            _text("measured_at", source="Test Date / Time"),
            _text("height_cm", source="Height"),
            _text("sex", source="Gender"),
            _text("age", source="Age"),
            _text("weight_kg", source="Weight"),
            _text("skeletal_muscle_kg", source="SMM"),
            _text("body_fat_kg", source="BFM"),
            _text("body_fat_pct", source="PBF"),
            _text("bmi_kg_m2", source="BMI"),
            _text("smi_kg_m2", source="SMI"),
        ),
        "day",
    ),
    _bronze(
        "centre_mobility",
        "Mobility test exports: Timed Up and Go, 30-second chair stand, tandem stance.",
        (
            _text("test_id"),
            _text("member_no"),
            _text("test_datetime"),
            _text("tug_s"),
            _text("chair_stand_30s_n", source="chair_stand_30s"),
            _text("tandem_stance_s"),
        ),
        "day",
    ),
    _bronze(
        "centre_foot",
        "Plantar pressure platform exports, both feet per row.",
        (
            _text("exam_id"),
            _text("member_no"),
            _text("exam_datetime"),
            _text("load_left_pct", source="load_L_pct"),
            _text("load_right_pct", source="load_R_pct"),
            _text("forefoot_left_pct", source="forefoot_L_pct"),
            _text("forefoot_right_pct", source="forefoot_R_pct"),
            _text("peak_pressure_left_kpa", source="peak_L_kPa"),
            _text("peak_pressure_right_kpa", source="peak_R_kPa"),
            _text("arch_index_left", source="arch_index_L"),
            _text("arch_index_right", source="arch_index_R"),
        ),
        "day",
    ),
    _bronze(
        "centre_posture",
        "Posture analyser exports.",
        (
            _text("record_no", source="검사번호"),
            _text("member_no", source="회원번호"),
            _text("measured_at", source="검사일시"),
            _text("head_forward_cm", source="머리전방이동"),
            _text("shoulder_height_diff_cm", source="어깨높이차"),
            _text("pelvic_height_diff_cm", source="골반높이차"),
            _text("trunk_lean_deg", source="몸통기울기"),
        ),
        "day",
    ),
    _bronze(
        "app_events",
        "Citizen-app events, one JSON object per event; sign-ups' registration numbers are "
        "already citizen keys and their names are dropped.",
        (
            *_texts("event_id", "event_type", "occurred_at", "app_user_id"),
            citizen("rrn", required=False, fk=False),
            _text("payload", "the event's other fields as JSON"),
        ),
        "day",
    ),
)
