"""The OMOP concepts the platform ships offline (``lakehouse/reference/omop/vocabulary.csv``).

Only standard concepts whose Athena rows could be cited are shipped (gender, visit, type and
condition-status concepts, four vital-sign measurements and their units, the CDM version,
concept 0); everything else is mapped to concept 0 with its source code kept in
``*_source_value``. The ETL (``pipelines.transform.omop``) names concepts through the constants
here, and ``concept_frame`` is ``omop.concept``: exactly the shipped rows, so every concept id an
omop table holds can be checked against it.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Final

import polars as pl

from lakehouse.catalog import table as catalog_table

FILE: Final = Path(__file__).resolve().parent.parent / "reference" / "omop" / "vocabulary.csv"
_VERSION: Final = re.compile(r"^#.*cdm_source\.vocabulary_version\):\s*(\S+)\s*$")

NO_MATCH: Final = 0
MALE: Final = 8507
FEMALE: Final = 8532
INPATIENT: Final = 9201
OUTPATIENT: Final = 9202
EMERGENCY: Final = 9203
PHARMACY: Final = 581458
CLAIM: Final = 32810
EHR: Final = 32817
PHARMACY_CLAIM: Final = 32869
REGISTRY: Final = 32879
PRIMARY_DIAGNOSIS: Final = 32902
SECONDARY_DIAGNOSIS: Final = 32908
CDM_V54: Final = 756265
# The centre's measures (lakehouse/reference/codes/centre_measures.csv codes) with a shipped
# LOINC concept: the same LOINC codes the centre's measure list gives them.
MEASURES: Final = {
    "height_cm": 3036277,
    "weight_kg": 3025315,
    "systolic_mmhg": 3004249,
    "diastolic_mmhg": 3012888,
}
# Units as the silver tables write them → the shipped UCUM unit concepts.
UNITS: Final = {"cm": 8582, "kg": 9529, "mmHg": 8876}


@cache
def _rows() -> pl.DataFrame:
    return pl.read_csv(FILE, comment_prefix="#", infer_schema=False)


@cache
def version() -> str:
    """The shipped file's version (``cdm_source.vocabulary_version``), from its header."""
    for line in FILE.read_text(encoding="utf-8").splitlines():
        m = _VERSION.match(line)
        if m:
            return m.group(1)
    raise ValueError(f"{FILE} does not declare its version")


def concept_ids() -> frozenset[int]:
    """Every shipped concept id."""
    return frozenset(int(v) for v in _rows()["concept_id"])


def concept_frame() -> pl.DataFrame:
    """``omop.concept``: the shipped rows in the catalogue's columns and types."""
    rows = _rows().with_columns(
        pl.col("concept_id").cast(pl.Int64),
        pl.col("valid_start_date", "valid_end_date").str.to_date("%Y-%m-%d"),
    )
    return catalog_table("omop.concept").conform(rows)
