"""The centre's other measuring stations: body composition, mobility tests, foot pressure, posture.

Beyond the four devices of ``synth.centre.devices``, a seniors' health centre runs these, each
exporting a daily file in the style of a real device family (the README names them):

* ``body`` — bioimpedance body composition analyser (체성분 분석기), in the style of InBody's
  results export: UTF-8 CSV, English headers with InBody's result-sheet abbreviations (SMM
  skeletal muscle mass, BFM body fat mass, PBF percent body fat, BMI, SMI appendicular skeletal
  muscle index), height, gender and age as entered at the station, ``YYYY.MM.DD HH:MM:SS``.
* ``mobility`` — the mobility tests station (신체기능 평가: Timed Up and Go, 30-second chair
  stand, tandem stance), run to CDC STEADI's protocols. Tab-separated UTF-8 text, ISO times.
* ``foot`` — plantar pressure platform (족저압 분석기): per foot the share of body weight, the
  forefoot share, the peak pressure and the arch index (Cavanagh and Rodgers' footprint
  measure). UTF-8 CSV, ``L``/``R`` in the headers as pressure-platform software labels feet.
* ``posture`` — posture analyser (자세 분석기): head forward displacement, shoulder and pelvic
  height differences, trunk lean. CP949 CSV with Korean headers, as Korean kiosk software
  writes for Excel.

Every value derives from the member's latent measures (``synth.centre.physiology``) or their
persistent traits, so a member who walks slowly also takes longer on the Timed Up and Go. The
relations are synthetic choices unless a source is named.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from synth.centre.devices import Day, Device, fit, member_nos
from synth.centre.physiology import observe
from synth.centre.visits import Sessions

# Share of fat-free mass in the arms and legs (appendicular lean mass), men and women: synthetic
# choice, giving skeletal muscle indices near the means reported for older Koreans.
ASM_SHARE: Final = {False: 0.43, True: 0.41}
SMM_SHARE: Final = {False: 0.54, True: 0.50}  # skeletal muscle in fat-free mass (synthetic)
TANDEM_HOLD_S: Final = 10.0  # STEADI's 4-stage balance test holds each stance for 10 s

BODY: Final = Device(
    name="body",
    label="체성분 분석기(생체전기저항)",
    fmt="csv",
    encoding="utf-8",
    delimiter=",",
    columns=(
        "No.",
        "ID",
        "Test Date / Time",
        "Height",
        "Gender",
        "Age",
        "Weight",
        "SMM",
        "BFM",
        "PBF",
        "BMI",
        "SMI",
    ),
    key="No.",
    time="Test Date / Time",
    stamp="{y:04d}.{m:02d}.{d:02d} {H:02d}:{M:02d}:{S:02d}",
    prefix="IB",
    decimals={"Weight": 1, "SMM": 1, "BFM": 1, "PBF": 1, "BMI": 1, "SMI": 1},
)

MOBILITY: Final = Device(
    name="mobility",
    label="신체기능 평가 시스템(TUG·의자 일어서기·일렬 서기)",
    fmt="csv",
    encoding="utf-8",
    delimiter="\t",
    columns=(
        "test_id",
        "member_no",
        "test_datetime",
        "tug_s",
        "chair_stand_30s",
        "tandem_stance_s",
    ),
    key="test_id",
    time="test_datetime",
    stamp="{y:04d}-{m:02d}-{d:02d}T{H:02d}:{M:02d}:{S:02d}",
    prefix="MO",
    decimals={"tug_s": 1, "chair_stand_30s": 0, "tandem_stance_s": 1},
)

FOOT: Final = Device(
    name="foot",
    label="족저압 분석기",
    fmt="csv",
    encoding="utf-8",
    delimiter=",",
    columns=(
        "exam_id",
        "member_no",
        "exam_datetime",
        "load_L_pct",
        "load_R_pct",
        "forefoot_L_pct",
        "forefoot_R_pct",
        "peak_L_kPa",
        "peak_R_kPa",
        "arch_index_L",
        "arch_index_R",
    ),
    key="exam_id",
    time="exam_datetime",
    stamp="{y:04d}-{m:02d}-{d:02d} {H:02d}:{M:02d}:{S:02d}",
    prefix="FP",
    decimals={
        "load_L_pct": 1,
        "load_R_pct": 1,
        "forefoot_L_pct": 1,
        "forefoot_R_pct": 1,
        "peak_L_kPa": 0,
        "peak_R_kPa": 0,
        "arch_index_L": 3,
        "arch_index_R": 3,
    },
)

POSTURE: Final = Device(
    name="posture",
    label="자세 분석기",
    fmt="csv",
    encoding="cp949",
    delimiter=",",
    columns=(
        "검사번호",
        "회원번호",
        "검사일시",
        "머리전방이동",
        "어깨높이차",
        "골반높이차",
        "몸통기울기",
    ),
    key="검사번호",
    time="검사일시",
    stamp="{y:04d}-{m:02d}-{d:02d} {H:02d}:{M:02d}",
    prefix="PS",
    decimals={"머리전방이동": 1, "어깨높이차": 1, "골반높이차": 1, "몸통기울기": 1},
)


def body_rows(ctx: Day, s: Sessions, rng: np.random.Generator) -> dict[str, Any]:
    """Body composition: weight and height from the members' latent measures, percent body fat
    from BMI, age and sex by Deurenberg's equation (Br J Nutr 1991;65:105-114) plus noise, and
    the appendicular skeletal muscle index from the fat-free mass, stronger members (a higher
    grip deviation) carrying more muscle."""
    p, c, d = ctx.params, ctx.cohort, ctx.epoch
    idx, n = s.member, len(s.member)
    female = c.female[idx]
    age = c.age(idx, d)
    weight = fit(ctx, "body", "Weight", observe(p, c, "weight", idx, d, rng), 1)
    height = observe(p, c, "height", idx, d, rng)
    metres2 = (height / 100) ** 2
    bmi = weight / metres2
    pbf = np.clip(1.2 * bmi + 0.23 * age - 10.8 * ~female - 5.4 + rng.normal(0, 2.0, n), 5.0, 60.0)
    free = weight * (1 - pbf / 100)
    asm_share = np.where(female, ASM_SHARE[True], ASM_SHARE[False])
    smm_share = np.where(female, SMM_SHARE[True], SMM_SHARE[False])
    asm = free * asm_share * np.exp(0.06 * c.z["grip"][idx] + rng.normal(0, 0.02, n))
    return {
        "No.": BODY.ids(ctx.day, 1, n),
        "ID": member_nos(ctx, idx),
        "Test Date / Time": BODY.timestamp(ctx.day, s.second),
        "Height": np.round(height, 1),
        "Gender": np.where(female, "F", "M").tolist(),
        "Age": np.floor(age).astype(np.int64),
        "Weight": weight,
        "SMM": fit(ctx, "body", "SMM", free * smm_share, 1),
        "BFM": fit(ctx, "body", "BFM", weight * pbf / 100, 1),
        "PBF": fit(ctx, "body", "PBF", pbf, 1),
        "BMI": fit(ctx, "body", "BMI", bmi, 1),
        "SMI": fit(ctx, "body", "SMI", asm / metres2, 1),
    }


def mobility_rows(ctx: Day, s: Sessions, rng: np.random.Generator) -> dict[str, Any]:
    """Timed Up and Go from gait speed (a 3 m walk out and back, a turn, rising and sitting;
    about 9 s at 1 m/s, near the 9.2 s mean of people in their 70s in Bohannon's meta-analysis,
    J Geriatr Phys Ther 2006;29:64-68), the 30-second chair stand from the five-times
    sit-to-stand pace, and the tandem stance held for the full 10 s unless sway is high (the
    chance of losing it grows with sway velocity). The factors are synthetic choices."""
    p, c, d = ctx.params, ctx.cohort, ctx.epoch
    idx, n = s.member, len(s.member)
    speed = observe(p, c, "gait_speed", idx, d, rng)
    sts = observe(p, c, "sts_time", idx, d, rng)
    sway = observe(p, c, "sway_velocity", idx, d, rng)
    tug = 1.5 + 7.0 / speed * np.exp(rng.normal(0, 0.08, n))
    stands = np.floor(np.maximum(30 / (sts / 5) * 1.1 + rng.normal(0, 1, n), 0))
    lost = rng.random(n) < np.clip(0.1 + 0.15 * (sway - 1.0), 0.02, 0.9)
    tandem = np.where(lost, rng.uniform(1.0, TANDEM_HOLD_S, n), TANDEM_HOLD_S)
    return {
        "test_id": MOBILITY.ids(ctx.day, 1, n),
        "member_no": member_nos(ctx, idx),
        "test_datetime": MOBILITY.timestamp(ctx.day, s.second),
        "tug_s": fit(ctx, "mobility", "tug_s", tug, 1),
        "chair_stand_30s": fit(ctx, "mobility", "chair_stand_30s", stands, 0),
        "tandem_stance_s": fit(ctx, "mobility", "tandem_stance_s", tandem, 1),
    }


def foot_rows(ctx: Day, s: Sessions, rng: np.random.Generator) -> dict[str, Any]:
    """Plantar pressure in quiet standing: after a stroke the affected foot bears less weight;
    a flatter arch (the member's persistent trait) raises the arch index (mean about 0.23 in
    adults, Cavanagh and Rodgers, J Biomech 1987;20:547-551) and lowers the forefoot share."""
    p, c, d = ctx.params, ctx.cohort, ctx.epoch
    idx, n = s.member, len(s.member)
    stroke = c.has("stroke", idx, d)
    shift = np.where(stroke, np.where(c.paretic_right[idx], 6.0, -6.0), 0.0)
    left = 50 + shift + rng.normal(0, 2.5, n)
    arch = c.arch[idx]
    weight = observe(p, c, "weight", idx, d, rng)
    columns: dict[str, Any] = {
        "exam_id": FOOT.ids(ctx.day, 1, n),
        "member_no": member_nos(ctx, idx),
        "exam_datetime": FOOT.timestamp(ctx.day, s.second),
        "load_L_pct": fit(ctx, "foot", "load_L_pct", left, 1),
        "load_R_pct": fit(ctx, "foot", "load_R_pct", 100 - left, 1),
    }
    for side in ("L", "R"):
        columns[f"forefoot_{side}_pct"] = fit(
            ctx, "foot", f"forefoot_{side}_pct", 42 - 3 * arch + rng.normal(0, 3, n), 1
        )
        columns[f"peak_{side}_kPa"] = fit(
            ctx, "foot", f"peak_{side}_kPa", 120 + 2.2 * weight + rng.normal(0, 25, n), 0
        )
        columns[f"arch_index_{side}"] = fit(
            ctx, "foot", f"arch_index_{side}", 0.235 + 0.03 * arch + rng.normal(0, 0.008, n), 3
        )
    return columns


def posture_rows(ctx: Day, s: Sessions, rng: np.random.Generator) -> dict[str, Any]:
    """Posture in standing: the head moves forward with age, the other asymmetries are the
    member's own (persistent traits), each with a little session noise."""
    c, d = ctx.cohort, ctx.epoch
    idx, n = s.member, len(s.member)
    trait = c.posture[idx]
    head = 3.0 + 0.06 * (c.age(idx, d) - 65) + 1.2 * trait[:, 0] + rng.normal(0, 0.4, n)
    return {
        "검사번호": POSTURE.ids(ctx.day, 1, n),
        "회원번호": member_nos(ctx, idx),
        "검사일시": POSTURE.timestamp(ctx.day, s.second),
        "머리전방이동": fit(ctx, "posture", "머리전방이동", np.abs(head), 1),
        "어깨높이차": fit(
            ctx, "posture", "어깨높이차", np.abs(0.8 * trait[:, 1] + rng.normal(0, 0.3, n)), 1
        ),
        "골반높이차": fit(
            ctx, "posture", "골반높이차", np.abs(0.6 * trait[:, 2] + rng.normal(0, 0.3, n)), 1
        ),
        "몸통기울기": fit(
            ctx, "posture", "몸통기울기", np.abs(1.5 * trait[:, 3] + rng.normal(0, 0.5, n)), 1
        ),
    }
