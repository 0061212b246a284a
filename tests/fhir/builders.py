"""Hand-built citizen records for the IPS builder's tests (frames shaped as
``lakehouse.fhir.document.Record`` documents them)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl

from lakehouse.fhir import Record

KEY = "C" + "ab" * 16
NOW = datetime(2025, 5, 29, 9, 0, tzinfo=UTC)
PERSON = {"citizen_key": KEY, "sex": "F", "birth_year": 1948, "birth_month": 5}
AS_OF = date(2025, 5, 25)  # the national extracts end a few days before the summary is made


def empty_record(name: str | None = None) -> Record:
    """A citizen with nothing recorded."""
    return Record(
        PERSON,
        name,
        pl.DataFrame(
            schema={"kcd": pl.Utf8, "first_on": pl.Date, "last_on": pl.Date, "times": pl.UInt32}
        ),
        pl.DataFrame(),
        pl.DataFrame(),
        pl.DataFrame(),
        pl.DataFrame(),
        NOW.date(),
    )


def full_record(name: str | None = None) -> Record:
    """A citizen with two problems, two current medicines (one claimed with a product code, one
    with its ingredient code only), a blood pressure and a gait speed, and a chest radiograph
    with an unverified positive AI finding."""
    problems = pl.DataFrame(
        {
            "kcd": ["I10", "E11.9"],
            "first_on": [date(2020, 1, 6), date(2021, 3, 2)],
            "last_on": [date(2025, 5, 20), date(2025, 4, 2)],
            "times": [40, 12],
        }
    )
    medicines = pl.DataFrame(
        {
            "ingredient_code": ["107601ATB", "111501ATB"],
            "product_code": ["073400360", None],
            "product_name": ["노바스크정5밀리그램", None],
            "dose": [1.0, 1.0],
            "per_day": [1, 1],
            "days": [30, 90],
            "start": [date(2025, 5, 20), date(2025, 4, 2)],
            "prescriber": ["12010196", "12010197"],
            "prescriber_name": ["행복내과의원", None],
        }
    )
    measurements = pl.DataFrame(
        {
            "measure": ["systolic_mmhg", "speed_m_s"],
            "context": [None, None],
            "value": [132.0, 0.92],
            "unit": ["mmHg", "m/s"],
            "measured_at": [NOW, NOW],
            "device": ["checkup", "gait"],
        }
    )
    uid = "2.25.1234567890"
    studies = pl.DataFrame(
        {
            "study_instance_uid": [uid],
            "study_datetime": [datetime(2025, 5, 2, 1, 30, tzinfo=UTC)],
            "study_date": [date(2025, 5, 2)],
            "modalities": ["CR"],
            "study_description": ["Chest PA"],
            "series_count": [1],
            "instance_count": [1],
        }
    )
    findings = pl.DataFrame(
        {
            "study_instance_uid": [uid],
            "service": ["chest"],
            "finding_code": ["lung_opacity"],
            "status": ["scored"],
            "score": [0.81],
            "threshold": [0.3172],
            "positive": [True],
            "value": [None],
            "unit": [None],
            "verification": ["unverified"],
        },
        schema_overrides={"value": pl.Float64, "unit": pl.Utf8},
    )
    return Record(PERSON, name, problems, medicines, measurements, studies, findings, AS_OF)
