"""The seniors' demonstration centre exports: membership, volumes, values, files and faults."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from synth.config import CityConfig
from synth.faults import FaultLog
from tests.synth.helpers import (
    RRN_PATTERN,
    START,
    check_manifest,
    duplicate_pairs,
    make_people,
    manifests,
    recorded,
    rel,
)

DEVICES = {
    # device: (encoding, delimiter, columns, id column, time column, time format)
    "gait": (
        "utf-8",
        ",",
        "test_id,member_no,measured_at,speed_m_s,cadence_steps_min,stride_length_cm,"
        "step_time_symmetry,double_support_pct",
        "measured_at",
        "%Y-%m-%d %H:%M:%S",
    ),
    "balance": (
        "utf-8",
        ";",
        "record_no;member_no;test_datetime;condition;duration_s;path_length_cm;sway_area_cm2;"
        "mean_velocity_cm_s;balance_score",
        "test_datetime",
        "%Y/%m/%d %H:%M:%S",
    ),
    "checkup": (
        "cp949",
        ",",
        "측정번호,회원번호,측정일시,성별,연령,수축기혈압,이완기혈압,맥박,악력_좌,악력_우,신장,체중,공복혈당",
        "측정일시",
        "%Y-%m-%d %H:%M",
    ),
    "emg": ("utf-8", "", "", "started_at", "%Y-%m-%dT%H:%M:%S+09:00"),
    "body": (
        "utf-8",
        ",",
        "No.,ID,Test Date / Time,Height,Gender,Age,Weight,SMM,BFM,PBF,BMI,SMI",
        "Test Date / Time",
        "%Y.%m.%d %H:%M:%S",
    ),
    "mobility": (
        "utf-8",
        "\t",
        "test_id\tmember_no\ttest_datetime\ttug_s\tchair_stand_30s\ttandem_stance_s",
        "test_datetime",
        "%Y-%m-%dT%H:%M:%S",
    ),
    "foot": (
        "utf-8",
        ",",
        "exam_id,member_no,exam_datetime,load_L_pct,load_R_pct,forefoot_L_pct,forefoot_R_pct,"
        "peak_L_kPa,peak_R_kPa,arch_index_L,arch_index_R",
        "exam_datetime",
        "%Y-%m-%d %H:%M:%S",
    ),
    "posture": (
        "cp949",
        ",",
        "검사번호,회원번호,검사일시,머리전방이동,어깨높이차,골반높이차,몸통기울기",
        "검사일시",
        "%Y-%m-%d %H:%M",
    ),
}
MUSCLES = {"vastus_lateralis", "biceps_femoris", "tibialis_anterior", "gastrocnemius_medialis"}


def column_ranges() -> dict[tuple[str, str], tuple[float, float]]:
    path = Path(__file__).parents[2] / "lakehouse" / "reference" / "codes" / "centre_ranges.csv"
    lines = [x for x in path.read_text(encoding="utf-8").splitlines() if not x.startswith("#")]
    return {
        (r["device"], r["column"]): (float(r["low"]), float(r["high"]))
        for r in csv.DictReader(lines)
    }


def parse_device_file(device: str, text: str) -> tuple[list[dict[str, Any]], set[tuple[int, str]]]:
    """Parse one device file the way a strict pipeline would.

    Returns the good rows (with ``_line``) and the (line, fault kind) of every bad one.
    """
    _, delimiter, header, time_col, fmt = DEVICES[device]
    ranges = {c: r for (d, c), r in column_ranges().items() if d == device}
    lines = text.splitlines()
    bad: set[tuple[int, str]] = set()
    good: list[dict[str, Any]] = []
    if device == "emg":
        numbered = list(enumerate(lines, start=1))
    else:
        assert lines[0] == header
        columns = header.split(delimiter)
        numbered = list(enumerate(lines[1:], start=2))
    for number, line in numbered:
        if device == "emg":
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                bad.add((number, "malformed_row"))
                continue
            values = [("sts_time_s", row["sts_time_s"])]
            for ch in row["channels"]:
                assert ch["muscle"] in MUSCLES and ch["side"] in {"L", "R"}
                values += [(f"channels.{k}", ch[k]) for k in ("rms_uv", "mvc_pct", "mean_freq_hz")]
            assert len(row["channels"]) == 8
        else:
            fields = line.split(delimiter)
            if len(fields) != len(columns):
                bad.add((number, "malformed_row"))
                continue
            row = dict(zip(columns, fields, strict=True))
            values = [(c, row[c]) for c in ranges if row[c] != ""]
        try:
            row["_at"] = datetime.strptime(row[time_col], fmt)
        except ValueError:
            bad.add((number, "impossible_date"))
            continue
        outside = [c for c, v in values if not ranges[c][0] <= float(v) <= ranges[c][1]]
        if outside:
            bad.add((number, "out_of_range_value"))
            continue
        row["_line"] = number
        good.append(row)
    return good, bad


@pytest.fixture(scope="module")
def population() -> tuple[pl.DataFrame, pl.DataFrame]:
    return make_people(4000, START, 120, seed=3)


def run_centre(population, out: Path, faults_on: bool, workers: int = 1):
    from synth.centre import write_centre

    people, conditions = population
    cfg = CityConfig(
        citizens=4000, start=START, days=120, seed=11, inject_faults=faults_on, workers=workers
    )
    faults = FaultLog(faults_on)
    summary = write_centre(people, conditions, cfg, out, faults)
    return cfg, faults, summary


@pytest.fixture(scope="module")
def with_faults(population, tmp_path_factory):
    out = tmp_path_factory.mktemp("centre_faults")
    return (out, *run_centre(population, out, True))


@pytest.fixture(scope="module")
def clean(population, tmp_path_factory):
    out = tmp_path_factory.mktemp("centre_clean")
    return (out, *run_centre(population, out, False))


def read_registry(out: Path) -> pl.DataFrame:
    frames = []
    for folder, manifest in manifests(out, "centre/members"):
        (text,) = check_manifest(folder, manifest)
        assert manifest["files"][0]["encoding"] == "cp949"
        if folder.name.endswith("-1"):
            frames.append(pl.read_csv(io.StringIO(text), infer_schema=False))
    return pl.concat(frames)


def read_device(out: Path, device: str) -> tuple[list[dict[str, Any]], set[tuple[str, int, str]]]:
    """All good rows of a device (with ``_day`` and ``_path``) and every bad line found."""
    rows: list[dict[str, Any]] = []
    bad: set[tuple[str, int, str]] = set()
    for folder, manifest in manifests(out, f"centre/{device}"):
        (text,) = check_manifest(folder, manifest)
        assert manifest["files"][0]["encoding"] == DEVICES[device][0]
        path = rel(folder / manifest["files"][0]["name"], out)
        good, broken = parse_device_file(device, text)
        bad |= {(path, line, kind) for line, kind in broken}
        if folder.name.endswith("-1"):
            day = datetime.strptime(folder.name[:8], "%Y%m%d").date()
            rows += [{**r, "_day": day, "_path": path} for r in good]
    return rows, bad


# -- tests ---------------------------------------------------------------------------------------


def test_registry_holds_members_65_plus_with_their_identity(clean, population):
    out, cfg, _, summary = clean
    people = population[0]
    registry = read_registry(out)
    assert registry.columns == ["회원번호", "주민등록번호", "성명", "성별", "생년월일", "가입일"]
    assert registry.height == summary["centre_members"] >= 6
    assert registry["회원번호"].str.contains(r"^BG\d{7}$").all()
    assert registry["회원번호"].n_unique() == registry.height
    joined = registry.join(people, left_on="주민등록번호", right_on="rrn", how="inner")
    assert joined.height == registry.height
    assert (joined["성명"] == joined["name"]).all()
    assert (joined["성별"] == joined["sex"].replace_strict({"M": "남", "F": "여"})).all()
    assert (joined["생년월일"] == joined["birth_date"].dt.strftime("%Y%m%d")).all()
    joined_on = joined["가입일"].str.to_date()
    age_at_join = (joined_on - joined["birth_date"]).dt.total_days() / 365.25
    assert float(age_at_join.min()) >= 65  # type: ignore[arg-type]
    assert (joined_on < cfg.end).all()


def test_only_members_65_plus_visit_while_present_on_open_days(clean, population):
    from synth.calendar import centre_open

    out, cfg, _, summary = clean
    people = population[0]
    registry = read_registry(out).join(people, left_on="주민등록번호", right_on="rrn")
    member: dict[str, dict[str, Any]] = {r["회원번호"]: r for r in registry.iter_rows(named=True)}
    visits: set[tuple[str, date]] = set()
    for device in DEVICES:
        rows, bad = read_device(out, device)
        assert not bad
        for row in rows:
            no = row.get("member_no") or row.get("ID") or row["회원번호"]
            person = member[no]
            day = row["_day"]
            assert row["_at"].date() == day
            assert centre_open(day) and day.weekday() != 6
            assert person["present_from"] <= day < person["present_to"]
            assert (day - person["birth_date"]).days / 365.25 >= 65
            assert date.fromisoformat(person["가입일"]) <= day
            visits.add((no, day))
    # Every visit leaves a trace in at least one export (the check-up station at least).
    assert len(visits) == summary["centre_visits"]
    folders = {f.name[:8] for f in (out / "centre" / "gait").iterdir()}
    open_days = [cfg.start + timedelta(i) for i in range(cfg.days)]
    assert folders == {f"{d:%Y%m%d}" for d in open_days if centre_open(d)}


def test_visit_volume_scales_with_the_city(clean):
    _, cfg, _, summary = clean
    per_day = summary["centre_visits"] / summary["centre_open_days"]
    target = 3000 * cfg.scale
    assert 0.8 * target <= per_day <= 1.25 * target


@pytest.mark.slow
def test_visit_volume_at_ten_times_the_size(tmp_path):
    from synth.centre import write_centre

    people, conditions = make_people(40_000, START, 60, seed=5)
    cfg = CityConfig(citizens=40_000, start=START, days=60, seed=2)
    summary = write_centre(people, conditions, cfg, tmp_path, FaultLog(False))
    per_day = summary["centre_visits"] / summary["centre_open_days"]
    assert 0.9 * 3000 * cfg.scale <= per_day <= 1.1 * 3000 * cfg.scale


def test_tiny_city_still_gets_a_handful_of_members(tmp_path):
    from synth.centre import write_centre

    people, conditions = make_people(300, START, 30, seed=9)
    cfg = CityConfig(citizens=300, start=START, days=30, seed=4)
    summary = write_centre(people, conditions, cfg, tmp_path, FaultLog(False))
    assert summary["centre_members"] >= 5
    assert summary["centre_visits"] >= 10


def test_no_rrn_in_any_device_file(clean, population):
    out = clean[0]
    rrns = set(population[0]["rrn"].to_list())
    import re

    for device, (encoding, *_rest) in DEVICES.items():
        for path in (out / "centre" / device).glob("*/*_*.*"):
            text = path.read_bytes().decode(encoding)
            assert not re.search(RRN_PATTERN, text), path
            assert not any(r in text for r in rrns)


def test_values_within_plausible_ranges_without_faults(clean):
    out, _, faults, _ = clean
    assert faults.faults == []
    assert not list((out / "centre").glob("*/*-2"))
    for device in DEVICES:
        _, bad = read_device(out, device)
        assert bad == set()


def _by_member(rows: list[dict[str, Any]], member_key: str, column: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for r in rows:
        if r[column] != "":
            out.setdefault(r[member_key], []).append(float(r[column]))
    return out


def test_file_values_follow_sex_and_conditions(clean, population):
    out = clean[0]
    people, conditions = population
    rows, _ = read_device(out, "checkup")
    grip: dict[str, list[float]] = {"남": [], "여": []}
    for r in rows:
        grip[r["성별"]].append(max(float(r["악력_좌"]), float(r["악력_우"])))
    assert np.mean(grip["여"]) < np.mean(grip["남"]) - 5
    registry = read_registry(out).join(people, left_on="주민등록번호", right_on="rrn")
    hypertensive = set(
        registry.join(conditions.filter(pl.col("condition") == "hypertension"), on="pid")[
            "회원번호"
        ].to_list()
    )
    sbp = _by_member(rows, "회원번호", "수축기혈압")
    with_ht = [np.mean(v) for m, v in sbp.items() if m in hypertensive]
    without = [np.mean(v) for m, v in sbp.items() if m not in hypertensive]
    assert np.mean(with_ht) > np.mean(without)


def test_repeat_measures_of_a_member_correlate(clean):
    rows, _ = read_device(clean[0], "gait")
    speeds = _by_member(rows, "member_no", "speed_m_s")
    repeated = {m: v for m, v in speeds.items() if len(v) >= 3}
    assert len(repeated) >= 5
    within = np.mean([np.var(v) for v in repeated.values()])
    between = np.var([np.mean(v) for v in repeated.values()])
    assert between > within  # members differ more than a member varies
    assert all(len(set(v)) > 1 for v in repeated.values())  # not a constant either


def test_emg_sessions_are_complete(clean):
    rows, _ = read_device(clean[0], "emg")
    assert rows
    for r in rows:
        assert r["protocol"] == "5xSTS" and r["sample_rate_hz"] == 2000
        assert r["session_id"].startswith("EM") and r["member_no"].startswith("BG")
        assert {(c["muscle"], c["side"]) for c in r["channels"]} == {
            (m, s) for m in MUSCLES for s in "LR"
        }


def test_balance_has_eyes_open_and_closed_per_session(clean):
    rows, _ = read_device(clean[0], "balance")
    assert [r["condition"] for r in rows[:4]] == ["EO", "EC", "EO", "EC"]
    eo = np.mean([float(r["path_length_cm"]) for r in rows if r["condition"] == "EO"])
    ec = np.mean([float(r["path_length_cm"]) for r in rows if r["condition"] == "EC"])
    assert ec > eo  # Romberg: more sway with eyes closed
    for r in rows:
        assert float(r["mean_velocity_cm_s"]) == pytest.approx(
            float(r["path_length_cm"]) / 30, abs=0.006
        )


def test_recorded_faults_match_the_files_exactly(with_faults):
    out, _, faults, _ = with_faults
    found: set[tuple[str, int | None, str]] = set()
    for device in DEVICES:
        _, bad = read_device(out, device)
        found |= bad
        found |= duplicate_pairs(out, f"centre/{device}")
    found |= duplicate_pairs(out, "centre/members")
    # Re-sent folders carry no row faults, so each bad line is in an original (-1) folder.
    assert all("-1/" in path for path, line, _ in found if line is not None)
    assert found == recorded(faults, "centre/")
    kinds = {kind for _, _, kind in found}
    assert kinds == {"malformed_row", "impossible_date", "out_of_range_value", "duplicate_delivery"}
    for fault in faults.faults:
        assert fault.source == "centre"
        if fault.line is not None:
            assert fault.key  # the row's own id, for reading back


@pytest.mark.slow
def test_output_is_byte_identical_and_independent_of_workers(population, tmp_path):
    run_centre(population, tmp_path / "a", True, workers=1)
    run_centre(population, tmp_path / "b", True, workers=2)
    files_a = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    files_b = sorted(
        p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file()
    )
    assert files_a == files_b
    for name in files_a:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


# -- the body model against its published figures -------------------------------------------------


@pytest.fixture(scope="module")
def cohort():
    """20,000 synthetic members: ages 65-94, both sexes, every other one hypertensive, a tenth
    with a stroke, a fifth with diabetes; one stroke onset 100 days into the window."""
    from synth.centre.members import epoch_day
    from synth.centre.params import load
    from synth.centre.physiology import make_cohort

    n = 20_000
    rng = np.random.default_rng(0)
    age = rng.uniform(65, 95, n)
    members = pl.DataFrame(
        {
            "pid": pl.Series(range(n), dtype=pl.Int32),
            "sex": np.where(np.arange(n) % 2 == 0, "M", "F").tolist(),
            "birth_date": [START - timedelta(days=int(a * 365.25)) for a in age],
        }
    )
    long_ago = START - timedelta(days=2000)
    rows = [(i, "hypertension", long_ago) for i in range(0, n, 2)]
    rows += [(i, "stroke", long_ago) for i in range(1, n, 10)]
    rows += [(i, "diabetes", long_ago) for i in range(3, n, 5)]
    rows += [(5, "stroke", START + timedelta(days=100))]
    conditions = pl.DataFrame(
        rows, schema={"pid": pl.Int32, "condition": pl.Utf8, "onset": pl.Date}, orient="row"
    )
    start = epoch_day(START)
    made = make_cohort(members, conditions, load(), start, np.random.default_rng(1))
    return load(), made, age, start


def _observe(
    cohort: Any, measure: str, idx: np.ndarray, day_offset: int = 0, seed: int = 2
) -> np.ndarray:
    from synth.centre.physiology import observe

    params, made, _, start = cohort
    return observe(params, made, measure, idx, start + day_offset, np.random.default_rng(seed))


def test_gait_speed_falls_with_age_and_after_stroke(cohort):
    _, made, age, _ = cohort
    everyone = np.arange(len(age))
    speed = _observe(cohort, "gait_speed", everyone)
    stroke = made.has("stroke", everyone, cohort[3])
    young, old = (age < 70) & ~stroke, (age >= 80) & ~stroke
    # Bohannon & Williams Andrews 2011: about 1.2-1.3 m/s in the late 60s, below 1.0 past 80.
    assert 1.1 < speed[young].mean() < 1.35
    assert speed[old].mean() < speed[young].mean() - 0.15
    assert speed[stroke].mean() < speed[~stroke].mean() - 0.2
    asym = _observe(cohort, "step_asymmetry", everyone)
    assert np.median(asym[stroke]) > 3 * np.median(asym[~stroke])


def test_grip_by_sex_meets_the_awgs_cut_offs_as_korean_surveys_do(cohort):
    _, made, age, _ = cohort
    everyone = np.arange(len(age))
    grip = _observe(cohort, "grip", everyone)
    female = made.female
    assert grip[female].mean() < grip[~female].mean() - 8
    men_young = ~female & (age < 70)
    women_old = female & (age >= 80)
    # AWGS 2019: low grip < 28 kg (men), < 18 kg (women); rare in young-old men, common in
    # women past 80.
    assert (grip[men_young] < 28).mean() < 0.25
    assert (grip[women_old] < 18).mean() > 0.4


def test_blood_pressure_higher_with_hypertension_and_in_winter(cohort):
    from synth.centre.physiology import latent

    params, made, age, start = cohort
    everyone = np.arange(len(age))
    sbp = _observe(cohort, "systolic", everyone)
    hypertensive = made.has("hypertension", everyone, start)
    assert 8 < sbp[hypertensive].mean() - sbp[~hypertensive].mean() < 20
    january = latent(params, made, "systolic", everyone, start + 14).mean()
    july = latent(params, made, "systolic", everyone, start + 195).mean()
    assert 3 < january - july < 7  # about 5 mmHg in people 65+ (Alperovitch et al. 2009)


def test_balance_and_chair_rise_worsen_with_age(cohort):
    _, _, age, _ = cohort
    everyone = np.arange(len(age))
    sway = _observe(cohort, "sway_velocity", everyone)
    sts = _observe(cohort, "sts_time", everyone)
    young, old = age < 70, age >= 80
    assert np.median(sway[old]) > 1.2 * np.median(sway[young])
    # Bohannon 2006: 11.4 s at 60-69, 14.8 s at 80-89 (log-normal: compare medians).
    assert 10 < np.median(sts[young]) < 13
    assert np.median(sts[old]) > np.median(sts[young]) + 1.5


def test_glucose_higher_with_diabetes(cohort):
    _, made, age, start = cohort
    everyone = np.arange(len(age))
    glucose = _observe(cohort, "glucose", everyone)
    diabetic = made.has("diabetes", everyone, start)
    assert glucose[diabetic].mean() > glucose[~diabetic].mean() + 25
    assert 90 < glucose[~diabetic].mean() < 110


def test_a_condition_acts_from_its_onset(cohort):
    from synth.centre.physiology import latent

    params, made, _, start = cohort
    member = np.array([5])
    before = latent(params, made, "gait_speed", member, start + 99)[0]
    after = latent(params, made, "gait_speed", member, start + 101)[0]
    assert after < before - 0.2


def test_measurements_drift_slowly_rather_than_redraw(cohort):
    from synth.centre.physiology import latent

    params, made, age, start = cohort
    everyone = np.arange(len(age))
    day0 = latent(params, made, "gait_speed", everyone, start)
    week = latent(params, made, "gait_speed", everyone, start + 7)
    year = latent(params, made, "gait_speed", everyone, start + 300)
    assert np.corrcoef(day0, week)[0, 1] > 0.98
    assert np.corrcoef(day0, year)[0, 1] < np.corrcoef(day0, week)[0, 1]
    assert np.abs(year - day0).mean() > np.abs(week - day0).mean()
    first, second = (_observe(cohort, "gait_speed", everyone, 0, seed) for seed in (3, 4))
    assert np.corrcoef(first, second)[0, 1] > 0.8  # test-retest reliability about 0.9
