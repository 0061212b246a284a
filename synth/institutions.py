"""Clinics, hospitals, pharmacies and public health centres, and the AI-platform enrolment rounds.

``generate_institutions`` returns one row per institution: ``ykiho`` (8-digit HIRA institution
code, synthetic but shaped like the real one: its first digit follows the class group),
``name``, ``cl_cd`` (HIRA class), ``district_code``, ``dong_code``, ``address``,
``departments`` (HIRA department codes, ``|``-separated), ``main_department``, ``opened``.

``enrol`` picks the institutions of the AI support platform's rounds: the programme selected 15
institutions in its first round (a university hospital among them) and recruits 80 in the second,
toward 100 a year (seed article). Small cities keep a floor so that every service has an
institution that can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

import numpy as np
import polars as pl

from synth import reference as ref
from synth.config import CityConfig
from synth.rng import stream

# Departments a hospital-class institution (tertiary, general, hospital) offers.
HOSPITAL_DEPARTMENTS: Final = "01|02|03|04|05|06|10|11|12|13|14|15|16|21|23|24"
FIXED_DEPARTMENTS: Final = {
    "28": "01|21",
    "41": "49",
    "51": "49",
    "71": "00|01|23",
    "81": "",
    "92": "80",
    "93": "80",
}
NAME_SUFFIX: Final = {
    "01": "대학교병원",
    "11": "종합병원",
    "21": "병원",
    "28": "요양병원",
    "41": "치과병원",
    "51": "치과의원",
    "81": "약국",
    "92": "한방병원",
    "93": "한의원",
}
# Clinic names: place names of Gwangju and the words Korean clinics like to carry.
NAME_PREFIXES: Final = (
    "무등",
    "빛고을",
    "서석",
    "금남",
    "상무",
    "첨단",
    "수완",
    "봉선",
    "풍암",
    "용봉",
    "운암",
    "일곡",
    "두암",
    "각화",
    "문흥",
    "하남",
    "송정",
    "월곡",
    "신가",
    "진월",
    "양림",
    "충장",
    "계림",
    "지산",
    "학동",
    "광천",
    "화정",
    "치평",
    "쌍촌",
    "농성",
    "염주",
    "매월",
    "본촌",
    "오치",
    "중흥",
    "우산",
    "신창",
    "운남",
    "비아",
    "동림",
    "효덕",
    "주월",
    "백운",
    "방림",
    "사직",
    "산수",
    "연세",
    "서울",
    "새",
    "참",
    "바른",
    "튼튼",
    "미소",
    "사랑",
    "하나",
    "온누리",
    "힐링",
    "좋은",
    "밝은",
    "행복한",
    "으뜸",
    "한빛",
    "푸른",
    "늘푸른",
    "연합",
    "제일",
    "우리",
    "가족",
    "열린",
    "편한",
    "건강한",
    "365",
    "중앙",
    "시민",
    "한마음",
)
# First digit of the synthetic institution code by class group.
CODE_DIGIT: Final = {
    "01": "1", "11": "1", "21": "1", "28": "1", "31": "3", "41": "5", "51": "5",
    "71": "7", "81": "9", "92": "8", "93": "8",
}  # fmt: skip
# Round sizes at full scale (seed article) and their floors for small cities.
ROUNDS: Final = ((1, 15, 7), (2, 80, 2), (3, 5, 1))
# When each round is selected, as a fraction of the window (round 1 is already running at start).
ROUND_AT: Final = {1: -0.08, 2: 0.3, 3: 0.65}


def generate_institutions(cfg: CityConfig) -> pl.DataFrame:
    """Every institution of the city, scaled to its size with floors per class."""
    rng = stream(cfg.seed, "institutions")
    classes = ref.ints(ref.param("institutions"), "count_full", "minimum")
    districts = ref.floats(ref.param("districts"), "population_m")
    d_codes = districts["district_code"].to_numpy()
    d_p = districts["population_m"].to_numpy()
    d_p = d_p / d_p.sum()
    depts = ref.floats(ref.param("clinic_departments"), "share")
    dept_names = dict(ref.codes("departments").select("dgsbjt_cd", "name_ko").iter_rows())
    dongs = ref.dongs()
    roads = dict(ref.param("roads").iter_rows())
    d_names = dict(districts.select("district_code", "name_ko").iter_rows())

    rows: list[dict[str, str]] = []
    for cls in classes.iter_rows(named=True):
        cl = cls["cl_cd"]
        n = max(int(cls["minimum"]), round(cls["count_full"] * cfg.scale))
        if cl == "71":  # exactly one public health centre per district
            where = d_codes
            n = len(d_codes)
        else:
            where = d_codes[rng.choice(len(d_codes), size=n, p=d_p)]
            if n >= len(d_codes):  # every district has at least one of each class kept at a floor
                where[: len(d_codes)] = d_codes
        for i in range(n):
            district = str(where[i])
            if cl == "31":
                main = str(rng.choice(depts["dgsbjt_cd"].to_numpy(), p=_norm(depts["share"])))
                departments = main
                label = "" if main == "00" else dept_names[main]
                name = f"{_prefix(rng)}{label}의원"
            elif cl in ("01", "11", "21"):
                main, departments = "01", HOSPITAL_DEPARTMENTS
                name = f"{_prefix(rng)}{NAME_SUFFIX[cl]}"
            elif cl == "71":
                main, departments = "00", FIXED_DEPARTMENTS[cl]
                name = districts.filter(pl.col("district_code") == district)["health_centre_ko"][0]
            else:
                departments = FIXED_DEPARTMENTS[cl]
                main = departments.split("|")[0]
                name = f"{_prefix(rng)}{NAME_SUFFIX[cl]}"
            options = dongs.filter(pl.col("district_code") == district)["dong_code"].to_numpy()
            road = rng.choice(roads[district].split("|"))
            rows.append(
                {
                    "cl_cd": cl,
                    "name": name,
                    "district_code": district,
                    "dong_code": str(rng.choice(options)),
                    "address": f"광주광역시 {d_names[district]} {road} {int(rng.integers(1, 300))}",
                    "departments": departments,
                    "main_department": main,
                    "opened": str(cfg.start - timedelta(days=int(rng.integers(200, 12000)))),
                }
            )
    frame = pl.DataFrame(rows)
    serial = rng.permutation(np.arange(10000, 10000 + frame.height * 7, 7))[: frame.height]
    codes = [
        f"{CODE_DIGIT[c]}{int(d[2:]):02d}{s:05d}"
        for c, d, s in zip(frame["cl_cd"], frame["district_code"], serial, strict=True)
    ]
    return (
        frame.with_columns(pl.Series("ykiho", codes), pl.col("opened").str.to_date())
        .select(
            "ykiho",
            "name",
            "cl_cd",
            "district_code",
            "dong_code",
            "address",
            "departments",
            "main_department",
            "opened",
        )
        .sort("ykiho")
    )


def _prefix(rng: np.random.Generator) -> str:
    return str(NAME_PREFIXES[int(rng.integers(0, len(NAME_PREFIXES)))])


def _norm(weights: pl.Series) -> np.ndarray:
    w: np.ndarray = weights.to_numpy().astype(np.float64)
    share: np.ndarray = w / w.sum()
    return share


def exam_capable(institutions: pl.DataFrame) -> pl.DataFrame:
    """Institution x exam pairs: which exams each institution can perform (exam_capability.csv)."""
    cap = ref.param("exam_capability")
    out = []
    for row in cap.iter_rows(named=True):
        clinic = set(filter(None, (row["clinic_departments"] or "").split("|")))
        other = set(filter(None, (row["other_classes"] or "").split("|")))
        sel = institutions.filter(
            pl.col("cl_cd").is_in(sorted(other))
            | ((pl.col("cl_cd") == "31") & pl.col("main_department").is_in(sorted(clinic)))
        )
        out.append(sel.select("ykiho", pl.lit(row["exam"]).alias("exam")))
    return pl.concat(out)


@dataclass(frozen=True)
class Enrolment:
    """One institution's place in the AI support platform."""

    ykiho: str
    round: int
    applied: date
    selected: date
    services: tuple[str, ...]


def enrol(institutions: pl.DataFrame, cfg: CityConfig) -> list[Enrolment]:
    """The platform's enrolment rounds.

    Round 1 holds the university hospital (the first round's 전대병원 in the seed article) and the
    five public health centres; the rest are drawn among institutions that can use at least one
    AI service, hospitals and larger clinic specialties first.
    """
    rng = stream(cfg.seed, "enrolment")
    exams = ref.param("imaging_exams").filter(pl.col("service") != "")
    capable = exam_capable(institutions).join(exams.select("exam", "service"), on="exam")
    services = (
        capable.group_by("ykiho")
        .agg(pl.col("service").unique().sort())
        .join(institutions.select("ykiho", "cl_cd"), on="ykiho")
        .sort("ykiho")
    )
    first = services.filter(pl.col("cl_cd").is_in(["01", "71"]))["ykiho"].to_list()
    pool = services.filter(~pl.col("ykiho").is_in(first))
    weight = pool["cl_cd"].replace_strict({"11": 1.5, "21": 1.2}, default=1.0).to_numpy()
    order = list(first)
    if pool.height:
        picks = rng.choice(pool.height, size=pool.height, replace=False, p=weight / weight.sum())
        order += [pool["ykiho"][int(i)] for i in picks]
    svc = dict(zip(services["ykiho"], services["service"].to_list(), strict=True))

    out: list[Enrolment] = []
    taken = 0
    for number, full, floor in ROUNDS:
        size = max(floor, round(full * cfg.scale))
        if number == 1:
            size = max(size, len(first) + 1)
        selected = cfg.start + timedelta(days=round(ROUND_AT[number] * cfg.days))
        for ykiho in order[taken : taken + size]:
            applied = selected - timedelta(days=int(rng.integers(14, 60)))
            out.append(Enrolment(ykiho, number, applied, selected, tuple(svc[ykiho])))
        taken += size
    return out
