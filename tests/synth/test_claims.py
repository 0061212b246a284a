"""The claims and pharmacy extracts: HIRA's layout, realistic volumes, and consistency."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from synth import reference as ref
from synth.hira import TABLES

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def claims(demo_city):
    return {
        "T200": demo_city.table("claims", "T200_"),
        "T300": demo_city.table("claims", "T300_"),
        "T400": demo_city.table("claims", "T400_"),
        "T530": demo_city.table("claims", "T530_"),
        "PHARM_T200": demo_city.table("pharmacy", "PHARM_T200_"),
        "PHARM_T300": demo_city.table("pharmacy", "PHARM_T300_"),
    }


@pytest.fixture(scope="module")
def people(demo_city):
    residents = demo_city.table("registry/citizens", "residents_")
    changes = demo_city.table("registry/citizens", "resident_changes_")
    start = demo_city.cfg.start
    end = demo_city.cfg.end
    arrivals = changes.filter(pl.col("EVENT_CD").is_in(["BIRTH", "MOVE_IN"])).select(
        "RRN", "SEX_CD", "BIRTH_DT", pl.col("EVENT_DT").str.to_date("%Y%m%d").alias("from")
    )
    # The first day no longer resident: the day after a death, the day of a move out.
    leaving = changes.filter(pl.col("EVENT_CD").is_in(["DEATH", "MOVE_OUT"])).select(
        "RRN",
        (
            pl.col("EVENT_DT").str.to_date("%Y%m%d")
            + pl.duration(days=(pl.col("EVENT_CD") == "DEATH").cast(pl.Int64))
        ).alias("to"),
    )
    return (
        pl.concat(
            [residents.select("RRN", "SEX_CD", "BIRTH_DT", pl.lit(start).alias("from")), arrivals]
        )
        .join(leaving, on="RRN", how="left")
        .with_columns(pl.col("to").fill_null(end), pl.col("BIRTH_DT").str.to_date("%Y%m%d"))
    )


def _latest(t200: pl.DataFrame) -> pl.DataFrame:
    """One row per statement: a re-delivered statement replaces the first one."""
    return t200.sort("_delivery").unique("SPEC_ID_SNO", keep="last")


def test_files_have_hira_columns_and_declared_encodings(demo_city):
    wrong = {f["path"] for f in demo_city.faults["faults"] if f["kind"] == "wrong_encoding"}
    seen = 0
    for source in ("claims", "pharmacy"):
        for folder, manifest in demo_city.deliveries(source):
            assert manifest["delivered_at"].endswith("+09:00")
            for entry in manifest["files"]:
                rel = (folder / entry["name"]).relative_to(demo_city.out).as_posix()
                data = (folder / entry["name"]).read_bytes()
                table = entry["name"].rsplit("_", 1)[0]
                if rel in wrong:
                    with pytest.raises(UnicodeDecodeError):
                        data.decode(entry["encoding"])
                    data.decode("cp949")  # what it really is
                    continue
                header = data.decode(entry["encoding"]).splitlines()[0].split(",")
                assert header == TABLES[table]
                seen += 1
    assert seen >= 6 * len(demo_city.cfg.months())
    encodings = {m["files"][0]["encoding"] for _, m in demo_city.deliveries("claims")}
    assert encodings == {"cp949", "utf-8"}  # some months in each


def test_visit_rates_by_age_follow_the_published_rates(claims, people, demo_city):
    t200 = _latest(claims["T200"])
    outpatient = t200.filter(pl.col("FOM_TP_CD") != "021")
    visits = outpatient.group_by("JID").len()
    person = people.join(visits, left_on="RRN", right_on="JID", how="left").with_columns(
        pl.col("len").fill_null(0),
        ((pl.col("to") - pl.col("from")).dt.total_days() / 365.25).alias("years"),
        ((pl.lit(demo_city.cfg.start) - pl.col("BIRTH_DT")).dt.total_days() // 365.25).alias("age"),
    )
    overall = person["len"].sum() / person["years"].sum()
    assert 15.0 <= overall <= 18.0, overall  # Korea: about 15-18 visits per person per year
    rates = ref.floats(ref.param("visit_rates"), "visits_per_year")
    for lo, hi in ((20, 39), (40, 59), (65, 120)):
        band = person.filter(pl.col("age").is_between(lo, hi))
        observed = band["len"].sum() / band["years"].sum()
        table = rates.filter(pl.col("age_lo").cast(pl.Int64).is_between(lo, hi))
        expected = table["visits_per_year"].mean()
        assert abs(observed - expected) / expected < 0.3, (lo, observed, expected)


def test_chronic_prevalence_is_visible_in_diagnoses(claims, people, demo_city):
    t400 = claims["T400"]
    t200 = _latest(claims["T200"]).select("SPEC_ID_SNO", "JID")
    dx = t400.join(t200, on="SPEC_ID_SNO").select("JID", "SICK_CD").unique()
    aged = people.filter(
        (pl.col("from") == demo_city.cfg.start)
        & (
            (
                (pl.lit(demo_city.cfg.start) - pl.col("BIRTH_DT")).dt.total_days() // 365.25
            ).is_between(60, 69)
        )
    )
    htn = dx.filter(pl.col("SICK_CD") == "I10")["JID"].unique()
    share = aged["RRN"].is_in(htn.implode()).mean()
    assert 0.30 < share < 0.47, share  # published 40% (men) / 37% (women) at 60-69
    dm = dx.filter(pl.col("SICK_CD").str.starts_with("E11"))["JID"].unique()
    assert 0.13 < aged["RRN"].is_in(dm.implode()).mean() < 0.26  # 22% / 16%


def test_chronic_patients_return_for_repeat_prescriptions(claims, people, demo_city):
    t200 = _latest(claims["T200"])
    t530 = claims["T530"]
    antihypertensive = {"107601ATB", "181301ATB", "488201ATB", "236101ATB", "107602ATB"}
    rx = t530.filter(pl.col("GNL_NM_CD").is_in(list(antihypertensive))).join(
        t200.select("SPEC_ID_SNO", "JID", "MSICK_CD"), on="SPEC_ID_SNO"
    )
    whole_year = people.filter(
        (pl.col("from") == demo_city.cfg.start) & (pl.col("to") == demo_city.cfg.end)
    )
    per_patient = (
        rx.filter(pl.col("JID").is_in(whole_year["RRN"].implode()))
        .group_by("JID")
        .agg(
            pl.col("SPEC_ID_SNO").n_unique().alias("n"),
            pl.col("TOT_INJC_DDCNT_EXEC_FQ").cast(pl.Int64).sum().alias("days"),
        )
    )
    assert per_patient.height > 100
    # 4-, 8- or 12-week repeat prescriptions: about 4 to 13 a year, covering most of the year.
    assert 5.0 < per_patient["n"].mean() < 9.0
    assert (per_patient["n"] >= 4).mean() > 0.9
    assert per_patient["days"].median() >= 330


def test_every_line_belongs_to_a_statement_and_amounts_add_up(claims):
    t200 = _latest(claims["T200"])
    ids = t200["SPEC_ID_SNO"].implode()
    for table in ("T300", "T400", "T530"):
        assert claims[table]["SPEC_ID_SNO"].is_in(ids).all(), table
    # Statements whose lines are all well-formed: the total is the sum of the latest lines.
    lines = claims["T300"].sort("_delivery").with_columns(pl.col("AMT").cast(pl.Int64))
    latest_lines = lines.join(
        t200.select("SPEC_ID_SNO", pl.col("_delivery").alias("_latest")), on="SPEC_ID_SNO"
    ).filter(pl.col("_delivery") == pl.col("_latest"))
    sums = latest_lines.group_by("SPEC_ID_SNO").agg(pl.col("AMT").sum().alias("sum"))
    check = t200.join(sums, on="SPEC_ID_SNO")
    agree = check.select((pl.col("DMD_TRAMT").cast(pl.Int64) == pl.col("sum")).mean()).item()
    assert agree > 0.99  # the rest lost a line to an injected fault
    paid = t200.with_columns(pl.col("DMD_TRAMT", "DMD_SBRDN_AMT", "DMD_CHRG_AMT").cast(pl.Int64))
    assert (paid["DMD_SBRDN_AMT"] + paid["DMD_CHRG_AMT"] == paid["DMD_TRAMT"]).all()
    assert (paid["DMD_SBRDN_AMT"] <= paid["DMD_TRAMT"]).all()


def test_codes_come_from_the_reference_lists(claims):
    kcd = set(ref.codes("kcd")["code"].to_list())
    drugs = set(ref.codes("drugs")["gnl_nm_cd"].to_list())
    assert set(claims["T400"]["SICK_CD"].unique().to_list()) <= kcd
    assert set(claims["T530"]["GNL_NM_CD"].unique().to_list()) <= drugs
    assert all(len(c) == 9 for c in drugs)
    assert set(_latest(claims["T200"])["MSICK_CD"].unique().to_list()) <= kcd
    # KCD codes travel without the dot, as claims carry them.
    assert not claims["T400"]["SICK_CD"].str.contains(r"\.").any()


def test_dates_are_inside_each_persons_life_in_the_city(claims, people):
    t200 = _latest(claims["T200"]).with_columns(pl.col("RECU_FR_DD").str.to_date("%Y%m%d"))
    joined = t200.join(people, left_on="JID", right_on="RRN", how="left")
    assert joined["from"].null_count() == 0  # every patient is a registered resident
    assert (joined["RECU_FR_DD"] >= joined["from"]).all()
    assert (joined["RECU_FR_DD"] < joined["to"]).all()
    assert (joined["RECU_FR_DD"] >= joined["BIRTH_DT"]).all()


def test_pharmacy_dispensing_follows_prescriptions(claims):
    t200 = _latest(claims["T200"])
    prescribing = t200.filter(pl.col("PRSC_ISSU_NO") != "")
    issued = prescribing.select("YID", "PRSC_ISSU_NO").unique()
    assert issued.height == prescribing.height  # issue numbers are unique per institution
    ph = claims["PHARM_T200"]
    assert (ph["CL_CD"] == "81").all() and (ph["FOM_TP_CD"] == "081").all()
    linked = ph.join(
        prescribing.select("YID", "PRSC_ISSU_NO", "JID", pl.col("RECU_FR_DD").alias("issued_on")),
        left_on=["PRSC_YID", "PRSC_ISSU_NO"],
        right_on=["YID", "PRSC_ISSU_NO"],
        how="inner",
    )
    assert linked.height == ph.height  # every dispensing follows a prescription
    assert (linked["JID"] == linked["JID_right"]).all()
    assert (linked["RECU_FR_DD"] >= linked["issued_on"]).all()
    fill = linked.height / prescribing.height
    assert 0.9 < fill < 0.99, fill  # most prescriptions are filled, a few never are
    drugs = claims["PHARM_T300"].filter(pl.col("DIV_TY_CD") == "10")
    assert drugs["GNL_NM_CD"].str.len_chars().eq(9).all()


def test_corrections_are_redelivered_with_changed_amounts(claims, demo_city):
    truth = pl.read_csv(
        demo_city.out / "ground_truth" / "claims_corrections.csv", infer_schema=False
    )
    assert truth.height > 0
    t200 = claims["T200"]
    for row in truth.head(50).iter_rows(named=True):
        copies = t200.filter(pl.col("SPEC_ID_SNO") == row["SPEC_ID_SNO"]).sort("_delivery")
        assert copies["_delivery"].to_list() == [row["first_delivery"], row["corrected_delivery"]]
        assert copies["DMD_TRAMT"].to_list() == [row["first_total"], row["corrected_total"]]
        assert int(row["corrected_total"]) < int(row["first_total"])


def test_seasonal_respiratory_infections(claims):
    t200 = _latest(claims["T200"]).with_columns(pl.col("RECU_FR_DD").str.slice(4, 2).alias("mm"))
    resp = t200.filter(pl.col("MSICK_CD").is_in(["J00", "J069", "J209", "J101"]))
    by_month = dict(resp.group_by("mm").len().iter_rows())
    winter = np.mean([by_month[m] for m in ("01", "02", "12")])
    summer = np.mean([by_month[m] for m in ("06", "07", "08")])
    assert winter > 1.8 * summer


def test_every_ai_service_has_studies_even_in_a_small_city(small_city):
    import json

    lines = (small_city.out / "ground_truth" / "imaging_studies.jsonl").read_text(encoding="utf-8")
    studies = [json.loads(line) for line in lines.splitlines()]
    services = {"chest", "spine_fracture", "dental", "leg_length", "ecg", "brain", "fundus",
                "gastroscopy", "mammography", "prostate", "bone_age", "colonoscopy"}  # fmt: skip
    for service in services:
        flags = {s["abnormal"] for s in studies if s["service"] == service}
        assert flags == {True, False}, service
    # Every patient study was billed: its accession is the statement id (without the century)
    # plus a serial, and the statement carries the exam's procedure line.
    edi = dict(ref.param("imaging_exams").select("exam", "edi_code").iter_rows())
    billed = set()
    for path in sorted(small_city.out.glob("claims/*/T300_*.csv")):
        # Read every line, including the file whose manifest misdeclares CP949 as UTF-8.
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("cp949")
        for line in text.splitlines()[1:]:
            fields = line.split(",")
            billed.add((fields[0], fields[3]))
    patients = [s for s in studies if s["exam"] != "QA_PHANTOM"]
    assert patients
    for s in patients:
        assert ("20" + s["accession"][:-2], edi[s["exam"]]) in billed, s["accession"]
