"""The medications section (LOINC 10160-0): MedicationStatements of the medicines current by
their days supplied, coded as KR Core codes them, on the day they are counted from (the summary's
as-of day: today, or the last day the national extracts reach when that is earlier), which the
section's narrative states."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from lakehouse.fhir.codes import (
    ATC,
    EDI_DRUG,
    INGREDIENT,
    JSON,
    Section,
    coding,
    concept,
    entry_id,
    profile,
)
from lakehouse.reference import codes

TITLE = "복용 중인 약 · Current medications"
CODE = ("10160-0", "History of Medication use Narrative")


def as_of_line(as_of: date) -> str:
    """The narrative's opening line: the day the medicines are counted from, and why it may be
    before the summary's own day."""
    day = as_of.isoformat()
    return (
        f"{day} 기준: 그날 복용 기간이 남은 처방 (건강보험 청구자료는 몇 달 늦게 도착합니다) · "
        f"As of {day}: prescriptions with supply left on that day (health-insurance claims "
        "arrive months after care)"
    )


def none_line(as_of: date) -> str:
    """The empty section's statement (its ``emptyReason`` text)."""
    day = as_of.isoformat()
    return (
        f"국민건강보험 청구자료에 {day}에 복용 기간이 남은 처방이 없습니다 · "
        f"No prescription in the national health-insurance claims covers {day}"
    )


def drug_names() -> dict[str, tuple[str, str, str, str]]:
    """HIRA main-ingredient code → (Korean name, English name, ATC, strength)."""
    drugs = codes("drugs")
    return {
        row[0]: (row[1], row[2], row[3], row[4])
        for row in drugs.select("gnl_nm_cd", "name_ko", "name_en", "atc", "strength").iter_rows()
    }


def medication(row: dict[str, object], names: dict[str, tuple[str, str, str, str]]) -> JSON:
    """The medicine as a CodeableConcept: the HIRA EDI product code (KR Core's system) when the
    claim names a product, always the HIRA main-ingredient code it was claimed under (so nothing
    is lost where no product code applies), and the ingredient's WHO ATC class."""
    ingredient = str(row["ingredient_code"])
    ko, en, atc, strength = names.get(ingredient, (ingredient, ingredient, "", ""))
    product, product_name = row.get("product_code"), row.get("product_name")
    codings = []
    if product:
        codings.append(coding(EDI_DRUG, str(product), str(product_name or f"{ko} {strength}")))
    codings.append(coding(INGREDIENT, ingredient, f"{ko} {strength}".strip()))
    if atc:
        codings.append(coding(ATC, atc, en))
    text = f"{product_name or ko} ({en} {strength})".replace(" )", ")")
    return concept(*codings, text=text)


def statement(
    row: dict[str, object],
    patient: str,
    names: dict[str, tuple[str, str, str, str]],
    as_of: date,
) -> JSON:
    """One medicine as a MedicationStatement, with the prescribed dose: ``active`` while its
    days supplied cover ``as_of`` (the day the record's medicines are counted from), ``completed``
    when they ended before it (the note says which prescription and until when: the claims say
    what was supplied, not what was swallowed)."""
    start: date = row["start"]  # type: ignore[assignment]
    days = int(row["days"])  # type: ignore[call-overload]
    until = start + timedelta(days=days - 1)
    where = row.get("prescriber_name") or row.get("prescriber")
    return {
        "resourceType": "MedicationStatement",
        "meta": profile("MedicationStatement-uv-ips"),
        "status": "active" if until >= as_of else "completed",
        "medicationCodeableConcept": medication(row, names),
        "subject": {"reference": patient},
        "effectivePeriod": {"start": start.isoformat(), "end": until.isoformat()},
        "dosage": [
            {
                "text": f"1회 {row['dose']:g}, 1일 {row['per_day']}회, {days}일분 · "
                f"{row['dose']:g} per dose, {row['per_day']} times a day, {days} days",
                "timing": {"repeat": {"frequency": row["per_day"], "period": 1, "periodUnit": "d"}},
                "doseAndRate": [{"doseQuantity": {"value": row["dose"]}}],
            }
        ],
        "note": [
            {
                "text": f"{where} 처방 {start.isoformat()}, {until.isoformat()}까지 · "
                f"prescribed by {where} on {start.isoformat()}, supplied until {until.isoformat()}"
            }
        ],
    }


def section(medicines: pl.DataFrame, patient: str, as_of: date) -> Section:
    """The medications section, its narrative opening with the day it counts from.

    Args:
        medicines: One row per current medicine: ``ingredient_code``, ``product_code`` and
            ``product_name`` (null where the claim names no product), ``dose``, ``per_day``,
            ``days``, ``start`` (date issued or dispensed), ``prescriber`` (YKIHO) and
            ``prescriber_name``.
        patient: The Patient's fullUrl.
        as_of: The day the medicines are counted from (``Record.as_of``).
    """
    names = drug_names()
    entries, lines = [], []
    for row in medicines.iter_rows(named=True):
        resource = statement(row, patient, names, as_of)
        key = (row["ingredient_code"], row["start"], row.get("prescriber"))
        entries.append((entry_id("MedicationStatement", patient, *key), resource))
        period = resource["effectivePeriod"]
        lines.append(
            f"{resource['medicationCodeableConcept']['text']}: {resource['dosage'][0]['text']}"
            f" ({period['start']} – {period['end']})"
        )
    return Section(
        TITLE,
        CODE,
        entries,
        lines or [none_line(as_of)],
        empty_reason="unavailable",
        heading=as_of_line(as_of),
    )
