"""Overlapping medicines across clinics, as Korea's DUR checks them: the demo-size city must hold
enough real overlaps for the citizen app's medicine insights to show, at rates of the order the
literature reports (counts and broad bands, not exact values)."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from synth import reference as ref
from tests.conftest import City

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def supplies(demo_city: City) -> pl.DataFrame:
    """Every prescribed drug with its days of supply: citizen, institution, statement, HIRA
    ingredient (the first four characters of the 주성분코드), ATC class (level 4) and the days
    from issue to the end of the supply."""
    t200 = demo_city.table("claims", "T200_").unique("SPEC_ID_SNO", keep="last")
    t530 = demo_city.table("claims", "T530_").unique(["SPEC_ID_SNO", "LN_NO"], keep="last")
    drugs = ref.codes("drugs").select("gnl_nm_cd", pl.col("atc").str.slice(0, 5).alias("atc4"))
    return (
        t530.join(t200.select("SPEC_ID_SNO", "JID", "YID", "RECU_FR_DD"), on="SPEC_ID_SNO")
        .join(drugs, left_on="GNL_NM_CD", right_on="gnl_nm_cd")
        .select(
            "JID",
            "YID",
            "SPEC_ID_SNO",
            "atc4",
            pl.col("GNL_NM_CD").str.slice(0, 4).alias("ingredient"),
            pl.col("RECU_FR_DD").str.to_date("%Y%m%d").alias("start"),
            pl.col("TOT_INJC_DDCNT_EXEC_FQ").cast(pl.Int64).alias("days"),
        )
        .with_columns((pl.col("start") + pl.duration(days="days")).alias("end"))
    )


def _overlapping(rows: pl.DataFrame, other: pl.DataFrame, on: list[str]) -> pl.DataFrame:
    """Pairs of prescriptions of one citizen, from different statements, whose supplies overlap."""
    return rows.join(other, on=on, suffix="_b").filter(
        (pl.col("SPEC_ID_SNO") != pl.col("SPEC_ID_SNO_b"))
        & (pl.col("start") < pl.col("end_b"))
        & (pl.col("start_b") < pl.col("end"))
    )


def test_same_ingredient_from_two_institutions_at_once(supplies: pl.DataFrame) -> None:
    pairs = _overlapping(supplies, supplies, ["JID", "ingredient"]).filter(
        pl.col("YID") != pl.col("YID_b")
    )
    citizens = pairs["JID"].n_unique()
    assert citizens >= 100, citizens  # about a fifth of 5,000 citizens in a year
    assert pairs["ingredient"].n_unique() >= 5
    # Chronic medicines too, not only the acute ones: antihypertensives from a second clinic.
    chronic = pairs.filter(pl.col("atc4").is_in(["C08CA", "C09CA"]))
    assert chronic["JID"].n_unique() >= 5


def test_two_drugs_of_one_class_at_once(supplies: pl.DataFrame) -> None:
    pairs = _overlapping(supplies, supplies, ["JID", "atc4"]).filter(
        pl.col("ingredient") != pl.col("ingredient_b")
    )
    assert pairs["JID"].n_unique() >= 10
    assert pairs["atc4"].n_unique() >= 2


@pytest.mark.parametrize(
    ("category", "published"),
    [("^C0[89]", 0.099), ("^C10", 0.089)],
    ids=["antihypertensives", "lipid-modifying"],
)
def test_one_month_duplication_rate_is_of_the_published_order(
    supplies: pl.DataFrame, category: str, published: float
) -> None:
    """Kim et al., Int J Clin Pharm 2015;37:76-85, Korea's claims for December 2009: among
    patients receiving the category's drugs in the month, 9.9 % (antihypertensives) and 8.9 %
    (lipid-modifying drugs) had the same ingredient on two prescriptions with overlapping days.
    The city's December must be of that order: between a half and three times it."""
    drugs = supplies.filter(pl.col("atc4").str.contains(category))
    month = drugs.filter(pl.col("start").is_between(date(2025, 12, 1), date(2025, 12, 31)))
    patients = month["JID"].n_unique()
    duplicated = _overlapping(month, drugs, ["JID", "ingredient"])["JID"].n_unique()
    assert patients >= 200
    assert published / 2 <= duplicated / patients <= published * 3, duplicated / patients
