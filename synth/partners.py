"""A hospital partner's OMOP CDM v5.4 extract: ``partners/cnuh/<delivery>/``.

The synthetic city's university hospital (partner code ``cnuh``) sends, on the window's last
day, an extract of the patients it treated, as hospital CDM teams export one: a file per CDM
table named by the table in upper case (``PERSON.csv``, ``VISIT_OCCURRENCE.csv`` ...), the CDM's
column names, a ``CDM_SOURCE.csv`` (a table the platform does not use, so the ledger records it
as skipped) and ``linkage.csv`` (``person_id,token``: the token of each patient's registration
number under the linkage key the hospital holds, ``lakehouse.linkage``; docs/partners.md).

Its patients are every demo account's citizen (so the demo's timelines show partner records,
and the consent rule hides them for the unlinked and the withdrawn), a sample of citizens with a
chronic condition, and people who are not citizens of the city (patients from the surrounding
province), whose tokens match no citizen: they stay unlinked. Each patient has one to three
outpatient visits in the window, each with its diagnosis (a chronic condition's KCD code, or an
acute respiratory infection), the condition's first regimen's drug for 30 days, and a blood
pressure measured (OMOP's standard concepts 3028737 and 3012888, docs/omop.md's conventions).
The blood pressures are illustrative draws (mean 128/78 mmHg), not a model of anyone's health:
the extract is there to exercise ingestion and linkage, not for analysis.

The hospital's person ids are its own (7-digit numbers), not the city's.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl

from lakehouse import linkage
from synth import reference as ref
from synth.config import CityConfig
from synth.delivery import Delivery
from synth.population import rrn_numbers
from synth.rng import stream

PARTNER: Final = "cnuh"
HOLDER: Final = "CNUH 대학병원 (가상)"
SOURCE: Final = f"partners/{PARTNER}"
SAMPLE: Final = 0.01  # of the citizens with a chronic condition
MIN_SAMPLE: Final = 20
STRANGERS: Final = 0.2  # non-citizen patients, per sampled citizen
ACUTE_KCD: Final = "J069"  # acute upper respiratory infection, unspecified (kcd.csv)
# OMOP standard concepts (the domain brief's Korean ETL conventions).
OUTPATIENT: Final = 9202
EHR: Final = 32817  # type concept: EHR
PRESCRIBED: Final = 32838  # drug type concept: EHR prescription
SYSTOLIC: Final = 3028737
DIASTOLIC: Final = 3012888
MALE, FEMALE = 8507, 8532


def _dotted(kcd: str) -> str:
    """A KCD code with its dot, as silver and the OMOP conventions hold it (``E119`` ->
    ``E11.9``)."""
    return kcd if len(kcd) <= 3 else f"{kcd[:3]}.{kcd[3:]}"


def _demo_numbers(out: Path) -> list[str]:
    """The registration numbers of the demo's citizen accounts (``demo_accounts.json``)."""
    path = out / "demo_accounts.json"
    if not path.is_file():
        return []
    doc = json.loads(path.read_text(encoding="utf-8"))
    return [
        a["resident_registration_number"]
        for a in doc["accounts"]
        if a["role"] == "citizen" and a.get("resident_registration_number")
    ]


def _patients(
    cfg: CityConfig, people: pl.DataFrame, conditions: pl.DataFrame, demo: list[str]
) -> pl.DataFrame:
    """``rrn``, ``sex``, ``birth_date``, ``kcd`` (their first chronic condition's, or null) of
    the hospital's patients: the demo's citizens, a sample, and non-citizens."""
    rng = stream(cfg.seed, "partners", PARTNER)
    care = ref.param("chronic_care").select("condition", pl.col("kcd").str.split("|").list.first())
    alive = people.filter(pl.col("present_to") >= cfg.end - timedelta(days=1))
    ill = conditions.join(care, on="condition").group_by("pid").agg(pl.col("kcd").first())
    candidates = alive.join(ill, on="pid", how="inner").sort("pid")
    n = min(candidates.height, max(MIN_SAMPLE, round(candidates.height * SAMPLE)))
    picked = candidates[sorted(rng.choice(candidates.height, n, replace=False).tolist())]
    demo_rows = alive.filter(pl.col("rrn").is_in(demo)).join(ill, on="pid", how="left")
    citizens = pl.concat([demo_rows, picked.filter(~pl.col("rrn").is_in(demo))], how="diagonal")
    strangers = max(1, round(citizens.height * STRANGERS))
    birth = np.datetime64("1940-01-01") + rng.integers(0, 365 * 60, strangers).astype(
        "timedelta64[D]"
    )
    sex = np.where(rng.random(strangers) < 0.5, "M", "F")
    others = pl.DataFrame(
        {
            "rrn": rrn_numbers(rng, birth, sex, np.zeros(strangers, dtype=bool)),
            "sex": sex,
            "birth_date": pl.Series(birth.astype("datetime64[D]")).cast(pl.Date),
            "kcd": [None] * strangers,
        },
        schema={"rrn": pl.Utf8, "sex": pl.Utf8, "birth_date": pl.Date, "kcd": pl.Utf8},
    ).filter(~pl.col("rrn").is_in(people["rrn"].implode()))
    return pl.concat([citizens.select(others.columns), others])


def _events(cfg: CityConfig, patients: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The CDM tables of the patients' care in the window."""
    rng = stream(cfg.seed, "partners", PARTNER, "care")
    ids = rng.choice(np.arange(1_000_000, 10_000_000), patients.height, replace=False)
    regimens = ref.param("regimens").group_by("regimen", maintain_order=True).first()
    first_drug = dict(zip(regimens["regimen"], regimens["gnl_nm_cd"], strict=True))
    drug_of = {
        kcd.split("|")[0]: first_drug[regimen.split("|")[0]]
        for kcd, regimen in ref.param("chronic_care").select("kcd", "regimens").iter_rows()
    }
    tables: dict[str, list[dict[str, object]]] = {
        k: [] for k in ("person", "observation_period", "visit", "condition", "drug", "measurement")
    }
    row_id = 0
    for person_id, p in zip(ids.tolist(), patients.iter_rows(named=True), strict=True):
        tables["person"].append(
            {
                "person_id": person_id,
                "gender_concept_id": MALE if p["sex"] == "M" else FEMALE,
                "year_of_birth": p["birth_date"].year,
                "month_of_birth": p["birth_date"].month,
                "race_concept_id": 0,
                "ethnicity_concept_id": 0,
                "gender_source_value": p["sex"],
            }
        )
        days = sorted(rng.choice(cfg.days, int(rng.integers(1, 4)), replace=False).tolist())
        first, last = cfg.start + timedelta(days[0]), cfg.start + timedelta(days[-1])
        tables["observation_period"].append(
            {
                "observation_period_id": person_id,
                "person_id": person_id,
                "observation_period_start_date": first,
                "observation_period_end_date": last,
                "period_type_concept_id": EHR,
            }
        )
        kcd = p["kcd"] or ACUTE_KCD
        for day in days:
            on = cfg.start + timedelta(day)
            row_id += 1
            tables["visit"].append(
                {
                    "visit_occurrence_id": row_id,
                    "person_id": person_id,
                    "visit_concept_id": OUTPATIENT,
                    "visit_start_date": on,
                    "visit_end_date": on,
                    "visit_type_concept_id": EHR,
                }
            )
            tables["condition"].append(
                {
                    "condition_occurrence_id": row_id,
                    "person_id": person_id,
                    "condition_concept_id": 0,
                    "condition_start_date": on,
                    "condition_type_concept_id": EHR,
                    "visit_occurrence_id": row_id,
                    "condition_source_value": _dotted(kcd),
                }
            )
            if kcd in drug_of:
                tables["drug"].append(
                    {
                        "drug_exposure_id": row_id,
                        "person_id": person_id,
                        "drug_concept_id": 0,
                        "drug_exposure_start_date": on,
                        "drug_exposure_end_date": on + timedelta(days=29),
                        "drug_type_concept_id": PRESCRIBED,
                        "quantity": 30.0,
                        "days_supply": 30,
                        "visit_occurrence_id": row_id,
                        "drug_source_value": drug_of[kcd],
                    }
                )
            for concept, mean, sd in ((SYSTOLIC, 128, 14), (DIASTOLIC, 78, 9)):
                tables["measurement"].append(
                    {
                        "measurement_id": row_id * 2 + (concept == DIASTOLIC),
                        "person_id": person_id,
                        "measurement_concept_id": concept,
                        "measurement_date": on,
                        "measurement_type_concept_id": EHR,
                        "value_as_number": float(round(rng.normal(mean, sd))),
                        "unit_source_value": "mmHg",
                        "visit_occurrence_id": row_id,
                        "measurement_source_value": str(concept),
                    }
                )
    names = {
        "person": "PERSON",
        "observation_period": "OBSERVATION_PERIOD",
        "visit": "VISIT_OCCURRENCE",
        "condition": "CONDITION_OCCURRENCE",
        "drug": "DRUG_EXPOSURE",
        "measurement": "MEASUREMENT",
    }
    out = {names[k]: pl.DataFrame(v) for k, v in tables.items() if v}
    out["linkage"] = pl.DataFrame({"person_id": ids, "token": linkage.tokens(patients["rrn"])})
    return out


def write_partners(
    cfg: CityConfig, out: Path, people: pl.DataFrame, conditions: pl.DataFrame
) -> dict[str, int]:
    """Write the partner's extract (after the demo accounts, whose citizens it includes).

    The linkage key is the one the city holds (``GJH_LINKAGE_KEY`` or the secrets folder's
    ``linkage.key``, made if missing, as ``gjh keys`` would): in the demo the city and its
    partner are on one machine. Returns rows per file.
    """
    if not linkage.has_key():
        linkage.create_key()
        linkage.reset_key_cache()
    patients = _patients(cfg, people, conditions, _demo_numbers(out))
    tables = _events(cfg, patients)
    last = cfg.end - timedelta(days=1)
    source = pl.DataFrame(
        {
            "cdm_source_name": [HOLDER],
            "cdm_source_abbreviation": [PARTNER.upper()],
            "cdm_holder": [HOLDER],
            "source_release_date": [last],
            "cdm_release_date": [last],
            "cdm_version": ["v5.4"],
            "cdm_version_concept_id": [0],
            "vocabulary_version": ["none"],
        }
    )
    with Delivery(
        out,
        SOURCE,
        f"cdm-{last:%Y%m%d}",
        datetime.combine(last, time(18, 0)),
        meta={"holder": HOLDER},
        period=f"through-{last.isoformat()}",
    ) as delivery:
        counts = {}
        for name, frame in {**tables, "CDM_SOURCE": source}.items():
            rows = frame.with_columns(pl.col(pl.Date).dt.strftime("%Y-%m-%d"))
            delivery.csv(f"{name}.csv", rows.columns).write_frame(rows)
            counts[name] = rows.height
    return counts
