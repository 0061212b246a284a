"""OMOP-shaped frames for the signal tests: built person by person, or from a generated city.

The omop pipelines build these tables from silver; the signal tests need only a few columns of
each, so a generated city's deliveries are read directly (prescriptions T530 and diagnoses T400
with their statements' patient and first day, the residents' district) with a few renames, the
way the OMOP conventions map them (docs/signals.md): ``drug_source_value`` the ingredient code,
``condition_source_value`` the KCD code with the dot, ``location_source_value`` the district.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl

from lakehouse.catalog import table
from lakehouse.omop.signals import Settings
from tests.conftest import City

DAY0 = date(2024, 1, 1)
DRUG, EVENT, OTHER_DRUG, BACKGROUND = "374601ATB", "A09.0", "110702ATB", "Z00.0"
SETTINGS = Settings(washout_days=100, window_days=100, risk_days=30, min_persons=1)


class Omop:
    """OMOP-shaped frames built person by person (every person observed from DAY0 on)."""

    def __init__(self) -> None:
        self.drugs: list[tuple[int, str, date]] = []
        self.conditions: list[tuple[int, str, date]] = []
        self.districts: dict[int, str] = {}

    def person(self, district: str = "24010") -> int:
        pid = len(self.districts) + 1
        self.districts[pid] = district
        # The first record opens the observation (before any washout ends).
        self.conditions.append((pid, BACKGROUND, DAY0))
        return pid

    def drug(self, pid: int, day: int, code: str = DRUG) -> None:
        self.drugs.append((pid, code, DAY0 + timedelta(days=day)))

    def event(self, pid: int, day: int, code: str = EVENT) -> None:
        self.conditions.append((pid, code, DAY0 + timedelta(days=day)))

    def frames(self) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        drug_exposure = pl.DataFrame(
            self.drugs,
            schema=["person_id", "drug_source_value", "drug_exposure_start_date"],
            orient="row",
        )
        condition = pl.DataFrame(
            self.conditions,
            schema=["person_id", "condition_source_value", "condition_start_date"],
            orient="row",
        )
        codes = sorted(set(self.districts.values()))
        person = pl.DataFrame(
            {
                "person_id": list(self.districts),
                "location_id": [codes.index(d) + 1 for d in self.districts.values()],
            }
        )
        location = pl.DataFrame(
            {"location_id": list(range(1, len(codes) + 1)), "location_source_value": codes}
        )
        return drug_exposure, condition, person, location


def kcd_with_dot(code: pl.Expr) -> pl.Expr:
    """``A090`` -> ``A09.0``, as silver holds KCD codes (three characters, then the dot)."""
    return (
        pl.when(code.str.len_chars() > 3)
        .then(pl.concat_str(code.str.slice(0, 3), pl.lit("."), code.str.slice(3)))
        .otherwise(code)
    )


def omop_frames(city: City) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """drug_exposure, condition_occurrence, person and location of the city's claims."""
    statements = (
        city.table("claims", "T200")
        .select("SPEC_ID_SNO", "JID", pl.col("RECU_FR_DD").str.to_date("%Y%m%d").alias("day"))
        .unique("SPEC_ID_SNO")
    )
    residents = (
        city.table("registry/citizens", "residents")
        .select(pl.col("RRN").alias("JID"), pl.col("SGG_CD").alias("district"))
        .unique("JID")
    )
    people = (
        statements.select("JID")
        .unique()
        .join(residents, on="JID", how="left")
        .sort("JID")
        .with_row_index("person_id", offset=1)
        .with_columns(pl.col("person_id").cast(pl.Int64))
    )
    by_statement = statements.join(people.select("JID", "person_id"), on="JID")
    drug_exposure = (
        city.table("claims", "T530")
        .join(by_statement, on="SPEC_ID_SNO")
        .select(
            "person_id",
            pl.col("GNL_NM_CD").alias("drug_source_value"),
            pl.col("day").alias("drug_exposure_start_date"),
        )
    )
    condition_occurrence = (
        city.table("claims", "T400")
        .join(by_statement, on="SPEC_ID_SNO")
        .select(
            "person_id",
            kcd_with_dot(pl.col("SICK_CD")).alias("condition_source_value"),
            pl.col("day").alias("condition_start_date"),
        )
    )
    codes = sorted(people["district"].drop_nulls().unique().to_list())
    location = pl.DataFrame(
        {"location_id": list(range(1, len(codes) + 1)), "location_source_value": codes}
    )
    person = people.join(
        location, left_on="district", right_on="location_source_value", how="left"
    ).select("person_id", "location_id")
    return drug_exposure, condition_occurrence, person, location


def conforming(name: str, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with every column of the catalogue's OMOP table ``name``: the missing required
    ones 0 (a concept id) or the row's start date, the others null (what the signal asset does
    not read)."""
    spec = table(name)
    dates = [c for c in frame.columns if c.endswith("_date")]
    filled = []
    for column in spec.columns:
        if column.name in frame.columns:
            continue
        if not column.required:
            filled.append(pl.lit(None).alias(column.name))
        elif column.type == "date":
            filled.append(pl.col(dates[0]).alias(column.name))
        elif column.name.endswith("_id") and column.name.split("_")[0] in name:
            filled.append(pl.int_range(1, pl.len() + 1).alias(column.name))
        else:
            filled.append(pl.lit(0).alias(column.name))
    return spec.conform(frame.with_columns(filled))
