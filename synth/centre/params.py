"""The published figures the centre model is built on, read from ``synth/params/centre_*.csv``.

The figures live in CSV files with their sources in the header comments, so a reviewer can check a
number against its citation without reading code, and changing a figure never touches the model.
"""

from __future__ import annotations

import csv
import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from synth import reference as ref

PARAMS_DIR: Final = Path(__file__).resolve().parent.parent / "params"

FloatArray = npt.NDArray[np.float64]


def read_rows(name: str) -> list[dict[str, str]]:
    """The rows of ``synth/params/<name>`` as dicts, skipping the ``#`` comment header."""
    with (PARAMS_DIR / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


@dataclass(frozen=True)
class Measure:
    """One latent measure of the centre model; see ``centre_measures.csv`` for the fields."""

    name: str
    unit: str
    log: bool
    sd_within: float
    drift_sd: float
    wave_sd: float
    loading: float
    seasonal: float
    low: float
    high: float


@dataclass(frozen=True)
class Norm:
    """Age knots with the mean (log of the geometric mean for log measures) and sd at each."""

    ages: FloatArray
    mean: FloatArray
    sd: FloatArray


@dataclass(frozen=True)
class Effect:
    """A condition's effect on a measure, already on the measure's model scale.

    ``shift`` is added (linear measures, ``add``; log measures, log of the factor); ``factor``
    multiplies the mean of a linear measure (``mul`` on a linear measure such as grip); ``spread``
    multiplies the member's deviation from the norm.
    """

    measure: str
    condition: str
    shift: float
    factor: float
    spread: float


@dataclass(frozen=True)
class Muscle:
    """One EMG channel pair (left and right); see ``centre_emg_muscles.csv``."""

    name: str
    mvc_ratio: float
    rms_mvc_uv: float
    mean_freq_hz: float


@dataclass(frozen=True)
class CentreParams:
    """Everything the centre model reads from its parameter files."""

    measures: dict[str, Measure]
    norms: dict[tuple[str, str], Norm]
    effects: tuple[Effect, ...]
    ranges: dict[tuple[str, str], tuple[float, float]]
    muscles: tuple[Muscle, ...]

    def effects_on(self, measure: str) -> tuple[Effect, ...]:
        """The condition effects on one measure, in file order."""
        return tuple(e for e in self.effects if e.measure == measure)


def _measures() -> dict[str, Measure]:
    out: dict[str, Measure] = {}
    for r in read_rows("centre_measures.csv"):
        out[r["measure"]] = Measure(
            name=r["measure"],
            unit=r["unit"],
            log=r["scale"] == "log",
            **{
                k: float(r[k])
                for k in ("sd_within", "drift_sd", "wave_sd", "loading", "seasonal", "low", "high")
            },
        )
    return out


def _norms(measures: dict[str, Measure]) -> dict[tuple[str, str], Norm]:
    knots: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for r in read_rows("centre_norms.csv"):
        mean = float(r["mean"])
        if measures[r["measure"]].log:
            mean = math.log(mean)
        knots.setdefault((r["measure"], r["sex"]), []).append(
            (float(r["age"]), mean, float(r["sd"]))
        )
    return {
        key: Norm(*(np.array(col, dtype=np.float64) for col in zip(*sorted(rows), strict=True)))
        for key, rows in knots.items()
    }


def _effects(measures: dict[str, Measure]) -> tuple[Effect, ...]:
    out = []
    for r in read_rows("centre_condition_effects.csv"):
        value = float(r["effect"])
        base = r["measure"].removesuffix("_paretic")
        log = measures[base].log if base in measures else False
        shift, factor = 0.0, 1.0
        if r["kind"] == "add":
            shift = value
        elif log:
            shift = math.log(value)
        else:
            factor = value
        out.append(Effect(r["measure"], r["condition"], shift, factor, float(r["spread"])))
    return tuple(out)


@functools.cache
def load() -> CentreParams:
    """Read and check every centre parameter file (cached: the files do not change in a run)."""
    measures = _measures()
    norms = _norms(measures)
    for name in measures:
        for sex in ("M", "F"):
            if (name, sex) not in norms:
                raise ValueError(f"centre_norms.csv has no rows for {name} {sex}")
    ranges = {
        (r["device"], r["column"]): (float(r["low"]), float(r["high"]))
        # Shared with the pipelines, which quarantine values outside the same ranges.
        for r in ref.codes("centre_ranges").iter_rows(named=True)
    }
    muscles = tuple(
        Muscle(r["muscle"], float(r["mvc_ratio"]), float(r["rms_mvc_uv"]), float(r["mean_freq_hz"]))
        for r in read_rows("centre_emg_muscles.csv")
    )
    return CentreParams(measures, norms, _effects(measures), ranges, muscles)
