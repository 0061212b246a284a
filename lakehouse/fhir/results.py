"""The vital signs (LOINC 8716-3) and results (LOINC 30954-2) sections: each centre measure's
latest value as an Observation."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Final

import polars as pl

from lakehouse.fhir.codes import (
    JSON,
    LOINC,
    MEASURE,
    OBSERVATION_CATEGORY,
    UCUM,
    Section,
    coding,
    concept,
    entry_id,
)
from lakehouse.reference import codes

VITALS_TITLE: Final = "활력징후 · Vital signs"
VITALS_CODE: Final = ("8716-3", "Vital signs")
RESULTS_TITLE: Final = "검사 결과 · Results"
RESULTS_CODE: Final = ("30954-2", "Relevant diagnostic tests/laboratory data Narrative")
VITAL_SIGNS: Final = "http://hl7.org/fhir/StructureDefinition/vitalsigns"
CONTEXTS: Final = {"eyes_open": ("눈 뜨고", "eyes open"), "eyes_closed": ("눈 감고", "eyes closed")}
SOURCE: Final = "광주 경로당 건강측정 · Gwangju seniors' centre device"


@cache
def measures() -> dict[str, dict[str, str]]:
    """Each centre measure's names, LOINC code (vital signs only), UCUM unit, observation
    category and whether the one-page summary shows it, by measure code: the one list of the
    centre's measures (``lakehouse/reference/codes/centre_measures.csv``)."""
    frame = codes("centre_measures").fill_null("")
    return {row["code"]: row for row in frame.iter_rows(named=True)}


def observation(row: dict[str, object], patient: str) -> JSON:
    """One measured value as an Observation: LOINC's vital-sign code where FHIR's vital signs
    profile names one (and that profile claimed), the platform's measure code always, the value
    in UCUM where the device's unit has a UCUM form."""
    measure, device = str(row["measure"]), str(row["device"])
    known = measures().get(measure)
    ko, en = (known["name_ko"], known["name_en"]) if known else (measure, measure)
    context = str(row.get("context") or "")
    if context:
        c_ko, c_en = CONTEXTS.get(context, (context, context))
        ko, en = f"{ko} ({c_ko})", f"{en} ({c_en})"
    codings = [coding(LOINC, known["loinc"], en)] if known and known["loinc"] else []
    codings.append(coding(MEASURE, measure, ko))
    category = known["category"] if known else "exam"
    quantity: JSON = {"value": row["value"], "unit": str(row["unit"])}
    if known and known["ucum"]:
        quantity |= {"system": UCUM, "code": known["ucum"]}
    when: datetime = row["measured_at"]  # type: ignore[assignment]
    resource: JSON = {
        "resourceType": "Observation",
        "status": "final",
        "category": [concept(coding(OBSERVATION_CATEGORY, category))],
        "code": concept(*codings, text=f"{ko} · {en}"),
        "subject": {"reference": patient},
        "effectiveDateTime": when.isoformat(),
        "valueQuantity": quantity,
        "note": [{"text": f"{SOURCE} ({device})"}],
    }
    if category == "vital-signs":
        resource["meta"] = {"profile": [VITAL_SIGNS]}
    return resource


def sections(measurements: pl.DataFrame, patient: str) -> list[Section]:
    """The vital signs and results sections, each only when it has a value (both are optional
    in IPS; the required sections carry ``emptyReason`` instead).

    Args:
        measurements: The latest value of each measure (and context): ``measure``, ``context``,
            ``value``, ``unit``, ``measured_at`` (aware datetime), ``device``.
        patient: The Patient's fullUrl.
    """
    vitals: list[tuple[str, JSON]] = []
    others: list[tuple[str, JSON]] = []
    for row in measurements.iter_rows(named=True):
        resource = observation(row, patient)
        key = (row["measure"], row.get("context") or "", row["measured_at"])
        found = (entry_id("Observation", patient, *key), resource)
        vital = resource["category"][0]["coding"][0]["code"] == "vital-signs"
        (vitals if vital else others).append(found)
    return [
        Section(title, code, entries, [_line(r) for _, r in entries])
        for title, code, entries in (
            (VITALS_TITLE, VITALS_CODE, vitals),
            (RESULTS_TITLE, RESULTS_CODE, others),
        )
        if entries
    ]


def _line(resource: JSON) -> str:
    q = resource["valueQuantity"]
    day = resource["effectiveDateTime"][:10]
    return f"{resource['code']['text']}: {q['value']:g} {q['unit']} ({day})"
