"""The population and its registry delivery follow the published figures they cite."""

from __future__ import annotations

import json
import re
from datetime import date

import numpy as np
import polars as pl
import pytest

from synth import reference as ref
from synth.config import CityConfig
from synth.morbidity import generate_conditions, prevalence
from synth.population import age_years, generate_people, rrn_check_digit_ok

RRN = re.compile(r"^\d{6}-[1-4]\d{6}$")
START = date(2025, 1, 1)


@pytest.fixture(scope="module")
def city() -> tuple[CityConfig, pl.DataFrame]:
    cfg = CityConfig(citizens=60_000, start=START, days=365, seed=5)
    return cfg, generate_people(cfg)


def _baseline_ages(people: pl.DataFrame) -> np.ndarray:
    base = people.filter(pl.col("arrival") == "baseline")
    return age_years(base["birth_date"].to_numpy().astype("datetime64[D]"), np.datetime64(START))


def test_age_pyramid_matches_the_published_structure(city):
    _, people = city
    ages = _baseline_ages(people)
    table = ref.floats(ref.param("population_age_sex"), "male", "female")
    total = (table["male"] + table["female"]).sum()
    for row in table.iter_rows(named=True):
        expected = (row["male"] + row["female"]) / total
        lo, hi = int(row["age_lo"]), int(row["age_hi"])
        observed = np.mean((ages >= lo) & (ages <= hi))
        assert abs(observed - expected) < 0.006, (lo, hi, observed, expected)
    # The domain notes: about 18% of citizens are 65 or older.
    assert 0.17 < np.mean(ages >= 65) < 0.20


def test_sex_ratio_by_age_follows_the_structure(city):
    _, people = city
    base = people.filter(pl.col("arrival") == "baseline")
    ages = _baseline_ages(people)
    male = (base["sex"] == "M").to_numpy()
    assert 0.48 < male[ages < 20].mean() < 0.54  # more boys than girls
    assert male[ages >= 85].mean() < 0.35  # women outlive men


def test_district_shares_follow_gwangju(city):
    _, people = city
    districts = ref.floats(ref.param("districts"), "population_m")
    share = people["district_code"].value_counts(normalize=True)
    observed = dict(share.iter_rows())
    total = districts["population_m"].sum()
    for code, pop in districts.select("district_code", "population_m").iter_rows():
        assert abs(observed[code] - pop / total) < 0.01, code


def test_dongs_are_real_and_inside_their_district(city):
    _, people = city
    dongs = ref.dongs()
    known = dict(dongs.select("dong_code", "district_code").iter_rows())
    for dong, district in people.select("dong_code", "district_code").unique().iter_rows():
        assert known[dong] == district
    assert people["dong_code"].n_unique() == dongs.height  # every dong is populated


def test_resident_registration_numbers_have_their_real_form(city):
    _, people = city
    rrn = people["rrn"].to_list()
    assert all(RRN.match(r) for r in rrn)
    assert people["rrn"].n_unique() == people.height
    birth = people["birth_date"].to_list()
    sex = people["sex"].to_list()
    for r, b, s in zip(rrn[:5000], birth[:5000], sex[:5000], strict=True):
        assert r[:6] == b.strftime("%y%m%d")
        g = int(r[7])
        assert g == (1 if s == "M" else 2) + (2 if b.year >= 2000 else 0)
        if b < date(2020, 10, 1):
            assert rrn_check_digit_ok(r), r


def test_births_deaths_and_moves_follow_vital_statistics(city):
    cfg, people = city
    n = cfg.citizens
    per_1000 = {
        "birth": (people["arrival"] == "birth").sum() / n * 1000,
        "move_in": (people["arrival"] == "move_in").sum() / n * 1000,
        "death": (people["departure"] == "death").sum() / n * 1000,
        "move_out": (people["departure"] == "move_out").sum() / n * 1000,
    }
    assert 3.5 < per_1000["birth"] < 6.5  # crude birth rate 4.9
    assert 5.0 < per_1000["death"] < 9.0  # crude death rate about 7
    assert 36 < per_1000["move_in"] < 48
    assert 40 < per_1000["move_out"] < 52
    died = people.filter(pl.col("departure") == "death")
    assert (died["present_to"] > died["present_from"]).all()
    born = people.filter(pl.col("arrival") == "birth")
    assert (born["birth_date"] == born["present_from"]).all()


def test_chronic_prevalence_by_age_matches_the_published_rates(city):
    cfg, people = city
    conditions = generate_conditions(people, cfg)
    base = people.filter(pl.col("arrival") == "baseline")
    ages = _baseline_ages(people)
    sexes = base["sex"].to_numpy()
    for condition in ("hypertension", "diabetes", "dyslipidaemia", "osteoarthritis"):
        having = set(conditions.filter(pl.col("condition") == condition)["pid"].to_list())
        has = np.array([p in having for p in base["pid"].to_list()])
        expected = prevalence(ages, sexes, condition)
        for lo, hi in ((40, 49), (60, 69), (70, 79)):
            band = (ages >= lo) & (ages <= hi)
            assert abs(has[band].mean() - expected[band].mean()) < 0.025, (condition, lo)
    # Hypertension and diabetes cluster beyond what age alone explains.
    htn = set(conditions.filter(pl.col("condition") == "hypertension")["pid"].to_list())
    dm = set(conditions.filter(pl.col("condition") == "diabetes")["pid"].to_list())
    older = set(base.filter(pl.col("birth_date") < date(1965, 1, 1))["pid"].to_list())
    p_htn = len(htn & older) / len(older)
    p_dm = len(dm & older) / len(older)
    assert len(htn & dm & older) / len(older) > 1.3 * p_htn * p_dm
    # Conditions were diagnosed before the person's first day in the window.
    onset = conditions.join(people.select("pid", "present_from", "birth_date"), on="pid")
    assert (onset["onset"] < onset["present_from"]).all()
    assert (onset["onset"] > onset["birth_date"]).all()


def test_registry_delivers_baseline_and_monthly_changes(demo_city):
    folders = dict(demo_city.deliveries("registry/citizens"))
    baseline = next(f for f in folders if len(f.name) == 8)
    manifest = json.loads((baseline / "delivery.json").read_text(encoding="utf-8"))
    assert manifest["files"][0]["encoding"] == "cp949"
    residents = demo_city.table("registry/citizens", "residents_")
    assert residents.height == demo_city.cfg.citizens
    assert residents.columns[:7] == [
        "RRN",
        "NAME",
        "SEX_CD",
        "BIRTH_DT",
        "SGG_CD",
        "EMD_CD",
        "ADDR",
    ]
    changes = demo_city.table("registry/citizens", "resident_changes_")
    assert set(changes["EVENT_CD"].unique()) == {"BIRTH", "MOVE_IN", "DEATH", "MOVE_OUT"}
    assert len([f for f in folders if len(f.name) == 6]) == len(demo_city.cfg.months())
    # People who arrive during the window are not in the first-day register.
    arrived = set(changes.filter(pl.col("EVENT_CD").is_in(["BIRTH", "MOVE_IN"]))["RRN"].to_list())
    assert not arrived & set(residents["RRN"].to_list())


def test_institutions_and_enrolment_rounds(demo_city):
    inst = demo_city.table("registry/institutions", "institutions_")
    classes = set(ref.codes("institution_classes")["cl_cd"].to_list())
    assert set(inst["CL_CD"].unique()) <= classes
    assert (inst["CL_CD"] == "71").sum() == 5  # one public health centre per district
    assert (inst["CL_CD"] == "01").sum() >= 1  # a university hospital for remote readings
    rounds = demo_city.table("registry/ai_platform", "enrolment_")
    assert set(rounds["ROUND"].unique()) == {"1", "2", "3"}
    first = rounds.filter(pl.col("ROUND") == "1")
    assert set(first["YKIHO"]) >= set(inst.filter(pl.col("CL_CD").is_in(["01", "71"]))["YKIHO"])
    assert set(rounds["YKIHO"]) <= set(inst["YKIHO"])
    full = CityConfig(citizens=1_430_000, start=START, days=365, seed=1)
    from synth.institutions import enrol, generate_institutions

    everyone = generate_institutions(full)
    non_pharmacy = everyone.filter(pl.col("cl_cd") != "81").height
    assert 2100 <= non_pharmacy <= 2300  # about 2,200 clinics and hospitals
    sizes = [sum(1 for e in enrol(everyone, full) if e.round == r) for r in (1, 2, 3)]
    assert sizes == [15, 80, 5]  # 15 first, then 80, toward 100
