"""Rates, age standardisation and benchmarks (``lakehouse.stats``) against published figures."""

from __future__ import annotations

import polars as pl
import pytest

from lakehouse import disclosure, stats
from pipelines.transform.gold import AGE_GROUPS

# The worked example of Public Health England's indicator methods: the DSR test data and
# expected results of PHE's R package PHEindicatormethods (ukhsa-collaboration/
# PHEindicatormethods, tests/testthat/testdata_DSR_ISR.xlsx at commit 093fd28: sheets
# "testdata_multiarea" and "testresults_DSR", results from PHE's "APHO Tool for common PH
# Stats and CIs"), 19 age groups with the 2013 European Standard Population (ESP 2013).
AGES = [f"{a}-{a + 4}" for a in range(0, 90, 5)] + ["90+"]
ESP2013 = [5000, 5500, 5500, 5500, 6000, 6000, 6500, 7000, 7000, 7000, 7000, 6500, 6000, 5500]
ESP2013 += [5000, 4000, 2500, 1500, 1000]
POPULATION = [636, 558, 609, 543, 384, 594, 669, 843, 660, 576, 606, 522, 426, 273, 300, 288]
POPULATION += [153, 123, 207]
AREAS = {
    "testdata_big": [127, 25, 18, 21, 12, 27, 48, 27, 29, 32, 32, 34, 45, 65, 38, 68, 74, 82, 91],
    "testdata_small": [12, 4, 3, 2, 3, 4, 8, 2, 2, 3, 4, 5, 6, 8, 5, 6, 5, 5, 4],
    "testdata_tiny": [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 1, 2, 3],
}
# DSR per 100,000 and its 95% limits (Dobson's method with Byar's Poisson limits).
PUBLISHED = {
    "testdata_big": (10430.247991469423, 9717.709067985681, 11178.94091547925),
    "testdata_small": (1103.212025300104, 877.455767536709, 1367.0882227251795),
}


def published(measure: str, counts: dict[str, list[int]]) -> pl.DataFrame:
    """A table shaped as ``Access.uptake`` publishes it, by area and age group."""
    rows = [(area, age, n) for area, ns in counts.items() for age, n in zip(AGES, ns, strict=True)]
    frame = pl.DataFrame(rows, schema=["area", "age_group", measure], orient="row")
    return frame.with_columns(pl.lit(False).alias("suppressed"))


def worked_example() -> pl.DataFrame:
    events = published("events", AREAS)
    residents = published("residents", dict.fromkeys(AREAS, POPULATION))
    weights = pl.DataFrame({"age_group": AGES, "population": ESP2013})
    return stats.standardised_rates(events, residents, ["area"], "events", weights, per=100_000)


def test_the_dsr_and_its_dobson_limits_match_phes_worked_example() -> None:
    found = {row["area"]: row for row in worked_example().iter_rows(named=True)}
    for area, (rate, lower, upper) in PUBLISHED.items():
        assert found[area]["status"] == "shown"
        assert found[area]["rate"] == pytest.approx(rate, rel=1e-12)
        # Exact Poisson limits where PHE's tool uses Byar's approximation: within 0.01%
        # (a normal approximation, rate +- 1.96 se, misses them by 0.1% to 1.9%).
        assert found[area]["lower"] == pytest.approx(lower, rel=1e-4)
        assert found[area]["upper"] == pytest.approx(upper, rel=1e-4)
    assert found["testdata_big"]["events"] == 895


def test_no_dsr_from_fewer_than_ten_events() -> None:
    # PHE: "dsr NA for total count < 10" (the tiny area has 9 events).
    tiny = worked_example().filter(pl.col("area") == "testdata_tiny").row(0, named=True)
    assert tiny["status"] == "few" and tiny["rate"] is None and tiny["events"] is None


def test_no_dsr_where_an_age_cell_is_hidden() -> None:
    events = published("events", AREAS).with_columns(
        suppressed=(pl.col("area") == "testdata_big") & (pl.col("age_group") == "85-89"),
    )
    events = events.with_columns(pl.when(~pl.col("suppressed")).then(pl.col("events")))
    residents = published("residents", dict.fromkeys(AREAS, POPULATION))
    weights = pl.DataFrame({"age_group": AGES, "population": ESP2013})
    found = stats.standardised_rates(events, residents, ["area"], "events", weights)
    big = found.filter(pl.col("area") == "testdata_big").row(0, named=True)
    assert big["status"] == "suppressed" and big["rate"] is None and big["lower"] is None
    small = found.filter(pl.col("area") == "testdata_small").row(0, named=True)
    assert small["status"] == "shown" and small["rate"] is not None


def test_exact_poisson_limits_are_the_tabled_values() -> None:
    # Exact 95% limits of a Poisson count (e.g. Ulm, Am J Epidemiol 1990;131:373-375; the
    # chi-squared method of PHE's Technical Guide, Appendix 2): 0 -> (0, 3.689),
    # 1 -> (0.0253, 5.572), 10 -> (4.795, 18.390), 100 -> (81.37, 121.63).
    lower, upper = stats.poisson_limits([0, 1, 10, 100])
    assert [round(v, 4) for v in lower[:3]] == [0.0, 0.0253, 4.7954]
    assert [round(v, 3) for v in upper[:3]] == [3.689, 5.572, 18.390]
    assert (round(lower[3], 2), round(upper[3], 2)) == (81.36, 121.63)


def test_crude_rates_per_thousand_hide_what_either_count_hides() -> None:
    events = pl.DataFrame(
        {
            "district_code": ["24010", "24020", "24030", disclosure.TOTAL],
            "app_users": [100, None, 0, 250],
            "suppressed": [False, True, False, False],
        }
    )
    residents = pl.DataFrame(
        {
            "district_code": ["24010", "24020", "24030", disclosure.TOTAL],
            "residents": [2000, 3000, None, 9000],
            "suppressed": [False, False, True, False],
        }
    )
    rates = stats.crude_rates(events, residents, ["district_code"], "app_users")
    by = {r["district_code"]: r for r in rates.iter_rows(named=True)}
    assert by["24010"]["rate"] == pytest.approx(50.0)
    assert by["24010"]["lower"] == pytest.approx(81.36 / 2, abs=0.005)
    assert by["24010"]["upper"] == pytest.approx(121.63 / 2, abs=0.005)
    assert by["24020"]["rate"] is None and by["24020"]["suppressed"]
    assert by["24030"]["rate"] is None and by["24030"]["lower"] is None
    assert by[disclosure.TOTAL]["rate"] == pytest.approx(250 / 9)


def test_benchmark_marks_an_interval_wholly_above_or_below_the_citys_value() -> None:
    frame = pl.DataFrame(
        {"lower": [12.0, 3.0, 8.0, None, 10.0], "upper": [15.0, 9.0, 11.0, None, 12.0]}
    )
    marks = frame.select(stats.benchmark(10.0).alias("mark"))["mark"].to_list()
    # Touching the benchmark is not "wholly above".
    assert marks == ["higher", "lower", "similar", None, "similar"]
    assert frame.with_columns(stats.benchmark(None).alias("m"))["m"].to_list() == [None] * 5


@pytest.mark.parametrize("name", sorted(stats.STANDARDS))
def test_standard_populations_use_the_uptake_tables_age_groups(name: str) -> None:
    found = stats.standard_population(name)
    assert found["age_group"].to_list() == [g for g, _, _ in AGE_GROUPS]
    assert found["population"].min() > 0  # type: ignore[operator]


def test_standard_populations_sum_to_their_sources_totals() -> None:
    korea, who = (stats.standard_population(n)["population"].sum() for n in sorted(stats.STANDARDS))
    assert korea == 50_983_646  # the 17 provinces' residents on 31 Dec 2024
    assert who == 100_035  # WHO's 21 groups per 100,000, as published (rounding)
