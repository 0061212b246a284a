"""The first four exporting devices and what each writes for a day's sessions.

The centre has 11 kinds of equipment (seed article); eight export files the platform ingests,
these four and the stations of ``synth.centre.stations`` (``synth.centre.kinds`` lists them all):

* ``gait`` — whole-body response / gait-pattern analysis (전신반응분석시스템). UTF-8 CSV, English
  headers, as international gait software writes them.
* ``balance`` — balance measurement and training system (균형능력측정 및 훈련시스템). UTF-8 CSV
  with ``;`` as delimiter (a European-style export), one row per trial: eyes open, eyes closed.
* ``checkup`` — the basic check-up station (기초검진: blood pressure, pulse, grip, height, weight,
  optional fasting glucose). CP949 CSV with Korean headers and values, as Korean kiosk software
  writes for Excel.
* ``emg`` — wireless EMG (무선근전도분석기), a five-times sit-to-stand test. JSON Lines, one session
  per line with one object per muscle and side.

Each device knows its members only by member number, as its own software would; the resident
registration number stays in the members registry. Timestamps are local time (KST) in each
device's own layout; only the EMG export writes the +09:00 offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Final

import numpy as np
import polars as pl

from synth.centre.params import CentreParams, FloatArray
from synth.centre.physiology import Cohort, IntArray, observe, paretic_factor
from synth.centre.visits import Roster, Sessions

NON_DOMINANT: Final = 0.9  # dominant hand about 10 % stronger (Petersen et al., 1989)
STS_PROTOCOL: Final = "5xSTS"
EMG_SAMPLE_RATE_HZ: Final = 2000
BALANCE_TRIAL_S: Final = 30
FASTING_BEFORE: Final = 10.5 * 3600  # glucose only for morning sessions, about half of them


@dataclass(frozen=True)
class Day:
    """What every builder needs for one day."""

    params: CentreParams
    cohort: Cohort
    roster: Roster
    day: date
    epoch: int


@dataclass(frozen=True)
class Device:
    """How one device exports.

    Attributes:
        name: Folder under ``centre/`` and the ``centre_ranges.csv`` device key.
        label: What the centre calls the device (manifest).
        fmt: ``csv`` or ``jsonl``.
        encoding: The file encoding, declared in the manifest.
        delimiter: CSV delimiter.
        columns: CSV columns (for JSON Lines: the top-level keys).
        key: The row's own id column.
        time: The timestamp column.
        stamp: The timestamp layout, a ``str.format`` template over y, m, d, H, M, S.
        prefix: Prefix of the row ids.
        decimals: Measured columns -> decimals; these may carry an out-of-range fault.
        nullable: Measured columns that may be empty (not chosen for out-of-range faults).
    """

    name: str
    label: str
    fmt: str
    encoding: str
    delimiter: str
    columns: tuple[str, ...]
    key: str
    time: str
    stamp: str
    prefix: str
    decimals: dict[str, int]
    nullable: frozenset[str] = frozenset()

    def file_name(self, day: date) -> str:
        """The data file's name for ``day``."""
        return f"{self.name}_{day:%Y%m%d}.{self.fmt}"

    def timestamp(self, day: date, seconds: IntArray) -> list[str]:
        """Render ``seconds`` after midnight of ``day`` as the device's timestamps."""
        head = self.with_date("", day.year, day.month, day.day)
        tail = self.stamp[self.stamp.index("{d:02d}") + len("{d:02d}") :]
        return [head + tail.format(H=s // 3600, M=s // 60 % 60, S=s % 60) for s in seconds.tolist()]

    def with_date(self, stamp: str, y: int, m: int, d: int) -> str:
        """``stamp`` with its date part (the first 10 characters) replaced, even by 2025-02-29."""
        return self.stamp.format(y=y, m=m, d=d, H=0, M=0, S=0)[:10] + stamp[10:]

    def ids(self, day: date, first: int, count: int) -> list[str]:
        """Row ids ``first .. first + count - 1`` of ``day`` (device-local sequence numbers)."""
        stem = f"{self.prefix}{day:%y%m%d}-"
        return [f"{stem}{i:04d}" for i in range(first, first + count)]


GAIT: Final = Device(
    name="gait",
    label="전신반응분석시스템(보행패턴 분석)",
    fmt="csv",
    encoding="utf-8",
    delimiter=",",
    columns=(
        "test_id",
        "member_no",
        "measured_at",
        "speed_m_s",
        "cadence_steps_min",
        "stride_length_cm",
        "step_time_symmetry",
        "double_support_pct",
    ),
    key="test_id",
    time="measured_at",
    stamp="{y:04d}-{m:02d}-{d:02d} {H:02d}:{M:02d}:{S:02d}",
    prefix="GA",
    decimals={
        "speed_m_s": 2,
        "cadence_steps_min": 1,
        "stride_length_cm": 1,
        "step_time_symmetry": 2,
        "double_support_pct": 1,
    },
)

BALANCE: Final = Device(
    name="balance",
    label="균형능력측정 및 훈련시스템",
    fmt="csv",
    encoding="utf-8",
    delimiter=";",
    columns=(
        "record_no",
        "member_no",
        "test_datetime",
        "condition",
        "duration_s",
        "path_length_cm",
        "sway_area_cm2",
        "mean_velocity_cm_s",
        "balance_score",
    ),
    key="record_no",
    time="test_datetime",
    stamp="{y:04d}/{m:02d}/{d:02d} {H:02d}:{M:02d}:{S:02d}",
    prefix="BL",
    decimals={
        "path_length_cm": 1,
        "sway_area_cm2": 2,
        "mean_velocity_cm_s": 2,
        "balance_score": 0,
    },
)

CHECKUP: Final = Device(
    name="checkup",
    label="기초검진 측정기(혈압·악력·신체계측)",
    fmt="csv",
    encoding="cp949",
    delimiter=",",
    columns=(
        "측정번호",
        "회원번호",
        "측정일시",
        "성별",
        "연령",
        "수축기혈압",
        "이완기혈압",
        "맥박",
        "악력_좌",
        "악력_우",
        "신장",
        "체중",
        "공복혈당",
    ),
    key="측정번호",
    time="측정일시",
    stamp="{y:04d}-{m:02d}-{d:02d} {H:02d}:{M:02d}",
    prefix="HC",
    decimals={
        "수축기혈압": 0,
        "이완기혈압": 0,
        "맥박": 0,
        "악력_좌": 1,
        "악력_우": 1,
        "신장": 1,
        "체중": 1,
        "공복혈당": 0,
    },
    nullable=frozenset({"공복혈당"}),
)

EMG: Final = Device(
    name="emg",
    label="무선근전도분석기",
    fmt="jsonl",
    encoding="utf-8",
    delimiter="",
    columns=(
        "session_id",
        "member_no",
        "started_at",
        "protocol",
        "sts_time_s",
        "sample_rate_hz",
        "channels",
    ),
    key="session_id",
    time="started_at",
    stamp="{y:04d}-{m:02d}-{d:02d}T{H:02d}:{M:02d}:{S:02d}+09:00",
    prefix="EM",
    decimals={
        "sts_time_s": 1,
        "channels.rms_uv": 1,
        "channels.mvc_pct": 1,
        "channels.mean_freq_hz": 1,
    },
)


def fit(ctx: Day, device: str, column: str, values: FloatArray, decimals: int) -> FloatArray:
    """Round as the device does and keep inside the column's plausible range."""
    low, high = ctx.params.ranges[(device, column)]
    return np.clip(np.round(values, decimals), low, high)


def member_nos(ctx: Day, idx: IntArray) -> list[str]:
    """The member numbers of the members at ``idx``, as the devices know them."""
    return [ctx.roster.member_no[i] for i in idx.tolist()]


def gait_rows(ctx: Day, s: Sessions, rng: np.random.Generator) -> dict[str, Any]:
    """Gait analysis: speed, cadence and stride, symmetry and double support per walk.

    Cadence rises with speed and is higher in women; stride length follows from both
    (speed = cadence / 60 x stride / 2). Double support lengthens as gait slows (approximate
    relations after Hollman et al., Gait Posture 2011;34:111-118).
    """
    idx, n = s.member, len(s.member)
    speed = observe(ctx.params, ctx.cohort, "gait_speed", idx, ctx.epoch, rng)
    asym = observe(ctx.params, ctx.cohort, "step_asymmetry", idx, ctx.epoch, rng)
    female = ctx.cohort.female[idx]
    cadence = 90 + 15 * speed + 5 * female + rng.normal(0, 4, n)
    double = 26 + 12 * (1.2 - speed) + 8 * asym + rng.normal(0, 1.5, n)
    return {
        "test_id": GAIT.ids(ctx.day, 1, n),
        "member_no": member_nos(ctx, idx),
        "measured_at": GAIT.timestamp(ctx.day, s.second),
        "speed_m_s": fit(ctx, "gait", "speed_m_s", speed, 2),
        "cadence_steps_min": fit(ctx, "gait", "cadence_steps_min", cadence, 1),
        "stride_length_cm": fit(ctx, "gait", "stride_length_cm", speed * 12000 / cadence, 1),
        "step_time_symmetry": fit(ctx, "gait", "step_time_symmetry", 1 + asym, 2),
        "double_support_pct": fit(ctx, "gait", "double_support_pct", double, 1),
    }


def balance_rows(ctx: Day, s: Sessions, rng: np.random.Generator) -> dict[str, Any]:
    """Balance: a 30 s eyes-open and a 30 s eyes-closed trial per session, one row each.

    Sway area grows faster than path length (95 % ellipse about 1-10 cm2 in older adults'
    quiet stance, approximate); the score is the device's own 0-100 scale, falling with sway.
    """
    idx, n = s.member, len(s.member)
    eyes_open = observe(ctx.params, ctx.cohort, "sway_velocity", idx, ctx.epoch, rng)
    romberg = observe(ctx.params, ctx.cohort, "romberg", idx, ctx.epoch, rng)
    velocity = np.column_stack([eyes_open, eyes_open * romberg]).ravel()
    area = 1.7 * velocity**1.6 * np.exp(rng.normal(0, 0.25, 2 * n))
    path = fit(ctx, "balance", "path_length_cm", velocity * BALANCE_TRIAL_S, 1)
    seconds = np.column_stack([s.second, s.second + 45]).ravel()
    return {
        "record_no": BALANCE.ids(ctx.day, 1, 2 * n),
        "member_no": member_nos(ctx, np.repeat(idx, 2)),
        "test_datetime": BALANCE.timestamp(ctx.day, seconds),
        "condition": ["EO", "EC"] * n,
        "duration_s": np.full(2 * n, BALANCE_TRIAL_S),
        "path_length_cm": path,
        "sway_area_cm2": fit(ctx, "balance", "sway_area_cm2", area, 2),
        "mean_velocity_cm_s": fit(ctx, "balance", "mean_velocity_cm_s", path / BALANCE_TRIAL_S, 2),
        "balance_score": fit(ctx, "balance", "balance_score", 100 - 22 * velocity, 0),
    }


def checkup_rows(ctx: Day, s: Sessions, rng: np.random.Generator) -> dict[str, Any]:
    """Check-up station: blood pressure, pulse, grip left and right, height, weight, glucose.

    Grip norms are for the dominant hand; the other is about 10 % weaker, and a stroke weakens
    the affected side. Fasting glucose is only taken at about half of the morning sessions.
    """
    p, c, d = ctx.params, ctx.cohort, ctx.epoch
    idx, n = s.member, len(s.member)
    systolic = observe(p, c, "systolic", idx, d, rng)
    diastolic = np.minimum(observe(p, c, "diastolic", idx, d, rng), systolic - 15)
    pulse = observe(p, c, "pulse", idx, d, rng)
    dominant = observe(p, c, "grip", idx, d, rng)
    other = dominant * NON_DOMINANT * np.exp(rng.normal(0, 0.05, n))
    right_handed = c.right_handed[idx]
    weak = paretic_factor(p, c, "grip_paretic", idx, d)
    right = np.where(right_handed, dominant, other) * np.where(c.paretic_right[idx], weak, 1.0)
    left = np.where(right_handed, other, dominant) * np.where(c.paretic_right[idx], 1.0, weak)
    height = observe(p, c, "height", idx, d, rng)
    weight = observe(p, c, "weight", idx, d, rng)
    glucose = observe(p, c, "glucose", idx, d, rng)
    fasting = (s.second < FASTING_BEFORE) & (rng.random(n) < 0.5)
    return {
        "측정번호": CHECKUP.ids(ctx.day, 1, n),
        "회원번호": member_nos(ctx, idx),
        "측정일시": CHECKUP.timestamp(ctx.day, s.second),
        "성별": np.where(c.female[idx], "여", "남").tolist(),
        "연령": np.floor(c.age(idx, d)).astype(np.int64),
        "수축기혈압": fit(ctx, "checkup", "수축기혈압", systolic, 0),
        "이완기혈압": fit(ctx, "checkup", "이완기혈압", diastolic, 0),
        "맥박": fit(ctx, "checkup", "맥박", pulse, 0),
        "악력_좌": fit(ctx, "checkup", "악력_좌", left, 1),
        "악력_우": fit(ctx, "checkup", "악력_우", right, 1),
        "신장": fit(ctx, "checkup", "신장", height, 1),
        "체중": fit(ctx, "checkup", "체중", weight, 1),
        "공복혈당": np.where(fasting, fit(ctx, "checkup", "공복혈당", glucose, 0), np.nan),
    }


def emg_rows(ctx: Day, s: Sessions, rng: np.random.Generator) -> dict[str, Any]:
    """Wireless EMG during five sit-to-stands: per muscle and side RMS, %MVC and mean frequency.

    Older and frailer members work closer to their maximum; after a stroke the affected side
    activates less and the other side compensates. Amplitudes fall with age and are lower in
    women; mean frequency falls slowly with age (see ``centre_emg_muscles.csv``).

    Returns:
        Columns ``session_id``, ``member_no``, ``started_at``, ``sts_time_s`` and, per channel
        field, a (sessions, channels) array; channels are muscle-major, left then right.
    """
    p, c, d = ctx.params, ctx.cohort, ctx.epoch
    idx, n = s.member, len(s.member)
    sts = observe(p, c, "sts_time", idx, d, rng)
    vastus = observe(p, c, "emg_mvc", idx, d, rng)
    age = c.age(idx, d)
    stroke = c.has("stroke", idx, d)
    weak = paretic_factor(p, c, "emg_paretic", idx, d)
    sides = 2 * len(p.muscles)
    mvc, rms, freq = (np.empty((n, sides)) for _ in range(3))
    for j, muscle in enumerate(p.muscles):
        for side in (0, 1):
            k = 2 * j + side
            affected = stroke & (c.paretic_right[idx] == bool(side))
            factor = np.where(affected, weak, np.where(stroke, 1.1, 1.0))
            mvc[:, k] = vastus * muscle.mvc_ratio * factor * np.exp(rng.normal(0, 0.12, n))
            amplitude = (
                muscle.rms_mvc_uv
                * np.where(c.female[idx], 0.85, 1.0)
                * (1 - 0.01 * (age - 65))
                * np.exp(c.emg_amp[idx, k] + rng.normal(0, 0.1, n))
            )
            rms[:, k] = mvc[:, k] / 100 * amplitude
            freq[:, k] = muscle.mean_freq_hz - 0.3 * (age - 65) + c.emg_freq[idx, k]
            freq[:, k] += rng.normal(0, 4, n)
    return {
        "session_id": EMG.ids(ctx.day, 1, n),
        "member_no": member_nos(ctx, idx),
        "started_at": EMG.timestamp(ctx.day, s.second),
        "sts_time_s": fit(ctx, "emg", "sts_time_s", sts, 1),
        "channels.rms_uv": fit(ctx, "emg", "channels.rms_uv", rms, 1),
        "channels.mvc_pct": fit(ctx, "emg", "channels.mvc_pct", mvc, 1),
        "channels.mean_freq_hz": fit(ctx, "emg", "channels.mean_freq_hz", freq, 1),
    }


def csv_frame(device: Device, columns: dict[str, Any]) -> pl.DataFrame:
    """The rows as a frame in the device's column order; integral columns print without ``.0``."""
    series = []
    for name in device.columns:
        values = columns[name]
        if isinstance(values, np.ndarray) and values.dtype.kind == "f":
            s = pl.Series(name, values).fill_nan(None)
            if device.decimals.get(name) == 0:
                s = s.cast(pl.Int64)
            series.append(s)
        else:
            series.append(pl.Series(name, values))
    return pl.DataFrame(series)


def emg_records(columns: dict[str, Any], muscles: tuple[str, ...]) -> list[dict[str, Any]]:
    """The EMG sessions as JSON-ready records."""
    rms, mvc, freq = (
        columns[f"channels.{f}"].tolist() for f in ("rms_uv", "mvc_pct", "mean_freq_hz")
    )
    labels = [(m, side) for m in muscles for side in ("L", "R")]
    return [
        {
            "session_id": columns["session_id"][i],
            "member_no": columns["member_no"][i],
            "started_at": columns["started_at"][i],
            "protocol": STS_PROTOCOL,
            "sts_time_s": float(columns["sts_time_s"][i]),
            "sample_rate_hz": EMG_SAMPLE_RATE_HZ,
            "channels": [
                {
                    "muscle": muscle,
                    "side": side,
                    "rms_uv": rms[i][k],
                    "mvc_pct": mvc[i][k],
                    "mean_freq_hz": freq[i][k],
                }
                for k, (muscle, side) in enumerate(labels)
            ],
        }
        for i in range(len(columns["session_id"]))
    ]
