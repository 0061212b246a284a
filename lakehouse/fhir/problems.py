"""The problems section (LOINC 11450-4): Conditions coded in KCD-8, from the claims' diagnoses."""

from __future__ import annotations

from datetime import date

import polars as pl

from lakehouse.fhir.codes import (
    CONDITION_CATEGORY,
    JSON,
    KCD8,
    Section,
    coding,
    concept,
    entry_id,
    profile,
)
from lakehouse.reference import codes

TITLE = "활동성 문제 · Active problems"
CODE = ("11450-4", "Problem list - Reported")
NONE = (
    "국민건강보험 청구자료에 최근 진단이 없습니다 · "
    "No recent diagnosis in the national health-insurance claims the platform holds"
)


def kcd_names() -> dict[str, tuple[str, str]]:
    """KCD code with the dot → (Korean, English) name, from the reference list (kept without
    the dot, as claims carry it)."""
    kcd = codes("kcd")
    return {
        (c if len(c) <= 3 else f"{c[:3]}.{c[3:]}"): (ko, en)
        for c, ko, en in kcd.select("code", "name_ko", "name_en").iter_rows()
    }


def condition(row: dict[str, object], patient: str, names: dict[str, tuple[str, str]]) -> JSON:
    """One diagnosis as an encounter-diagnosis Condition.

    The claims say a clinician coded this diagnosis on these days; they do not say whether it is
    still active, so ``clinicalStatus`` is left out rather than guessed, and the category is
    ``encounter-diagnosis``, not a curated problem list."""
    kcd = str(row["kcd"])
    ko, en = names.get(kcd, (kcd, kcd))
    first: date = row["first_on"]  # type: ignore[assignment]
    last: date = row["last_on"]  # type: ignore[assignment]
    return {
        "resourceType": "Condition",
        "meta": profile("Condition-uv-ips"),
        "category": [concept(coding(CONDITION_CATEGORY, "encounter-diagnosis"))],
        "code": concept(coding(KCD8, kcd, ko), text=f"{ko} ({en})"),
        "subject": {"reference": patient},
        "recordedDate": first.isoformat(),
        "note": [
            {
                "text": f"건강보험 청구 진단 {row['times']}회, 최근 {last.isoformat()} · "
                f"coded on {row['times']} claims, last on {last.isoformat()}"
            }
        ],
    }


def section(problems: pl.DataFrame, patient: str) -> Section:
    """The problems section.

    Args:
        problems: One row per KCD code: ``kcd`` (with the dot), ``first_on``, ``last_on``
            (dates), ``times`` (claims that coded it); most recent first.
        patient: The Patient's fullUrl.
    """
    names = kcd_names()
    entries, lines = [], []
    for row in problems.iter_rows(named=True):
        kcd = str(row["kcd"])
        ko, en = names.get(kcd, (kcd, kcd))
        entries.append((entry_id("Condition", patient, kcd), condition(row, patient, names)))
        lines.append(f"{ko} · {en} [KCD-8 {kcd}], 최근 last {row['last_on'].isoformat()}")
    return Section(TITLE, CODE, entries, lines or [NONE], empty_reason="unavailable")
