"""Planning and placing the faults of daily exports (shared by the centre and the citizen app).

Fault counts are planned for the whole window before anything is written, folder by folder from
each folder's own stream, so that (a) every applicable kind can be guaranteed at least once per
city even when the rates give none, and (b) a folder chosen to be re-sent carries no row faults,
as ``synth.faults`` requires: its copy is quarantined whole, so both copies stay clean.
"""

from __future__ import annotations

import calendar
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Final

import numpy as np

from synth.centre.physiology import IntArray
from synth.faults import DUPLICATE_DELIVERY, IMPOSSIBLE_DATE, MALFORMED_ROW, OUT_OF_RANGE, RATES
from synth.rng import stream

ROW_KINDS: Final = (OUT_OF_RANGE, MALFORMED_ROW, IMPOSSIBLE_DATE)


@dataclass(frozen=True)
class FolderPlan:
    """What to break in one delivery folder.

    Attributes:
        duplicate: Send the folder again under a new delivery id (no row faults then).
        counts: Row-fault kind -> how many: rows to break for ``out_of_range_value`` and
            ``malformed_row``, extra rows carrying an impossible date for ``impossible_date``.
    """

    duplicate: bool = False
    counts: tuple[tuple[str, int], ...] = ()

    def count(self, kind: str) -> int:
        """How many faults of ``kind`` this folder gets."""
        return dict(self.counts).get(kind, 0)


def plan_folders(
    keys: Sequence[str],
    rows: Sequence[int],
    kinds: Collection[str],
    seed: int,
    source: str,
    enabled: bool,
    force: bool = True,
) -> list[FolderPlan]:
    """Plan the faults of a series of delivery folders.

    Args:
        keys: A stable name per folder (its delivery date, for example).
        rows: Rows per folder that may carry a row fault.
        kinds: The fault kinds that apply to these folders (row kinds and/or duplicates).
        seed: The city's seed.
        source: Names the streams (``centre/gait``, ``programme``).
        enabled: ``--inject-faults``; without it every plan is empty.
        force: Guarantee at least one fault of every applicable kind where possible.
    """
    n = len(keys)
    if not enabled:
        return [FolderPlan() for _ in range(n)]
    dup = np.zeros(n, dtype=np.bool_)
    counts = {kind: np.zeros(n, dtype=np.int64) for kind in ROW_KINDS}
    for i, key in enumerate(keys):
        rng = stream(seed, source, "fault-plan", key)
        dup[i] = rng.random() < RATES[DUPLICATE_DELIVERY] and DUPLICATE_DELIVERY in kinds
        free = rows[i]
        for kind in ROW_KINDS:
            drawn = int(rng.binomial(rows[i], RATES[kind]))
            if dup[i] or kind not in kinds:
                continue
            counts[kind][i] = drawn if kind == IMPOSSIBLE_DATE else min(drawn, free)
            if kind != IMPOSSIBLE_DATE:
                free -= counts[kind][i]
    if force:
        row_sizes = np.asarray(rows, dtype=np.int64)
        for kind in ROW_KINDS:
            if kind not in kinds or counts[kind].sum() > 0:
                continue
            used = counts[OUT_OF_RANGE] + counts[MALFORMED_ROW]
            room = row_sizes - (0 if kind == IMPOSSIBLE_DATE else used)
            cand = np.flatnonzero(~dup & (room > 0) & (row_sizes > 0))
            if len(cand):
                pick = stream(seed, source, "fault-plan", "force", kind).integers(len(cand))
                counts[kind][cand[pick]] = 1
        if DUPLICATE_DELIVERY in kinds and not dup.any():
            clean = sum(counts[k] for k in ROW_KINDS) == 0
            cand = np.flatnonzero(clean & (np.asarray(rows) > 0))
            if not len(cand):
                cand = np.flatnonzero(clean)
            if len(cand):
                chooser = stream(seed, source, "fault-plan", "force", DUPLICATE_DELIVERY)
                dup[cand[chooser.integers(len(cand))]] = True
    return [
        FolderPlan(
            bool(dup[i]),
            tuple((k, int(counts[k][i])) for k in ROW_KINDS if counts[k][i]),
        )
        for i in range(n)
    ]


@dataclass(frozen=True)
class RowFaults:
    """Where one folder's planned row faults land.

    Attributes:
        order: The file's row order: a value below ``n`` is a real row, ``n + k`` is extra row k.
        extra_source: The real row each extra (impossible-date) row copies.
        out_of_range: Real rows that get one value outside its plausible range.
        malformed: Real rows whose rendered line loses or gains a field.
    """

    order: IntArray
    extra_source: IntArray
    out_of_range: IntArray
    malformed: IntArray

    def position(self, real: int) -> int:
        """The 0-based position of real row ``real`` in the file."""
        return int(np.flatnonzero(self.order == real)[0])


def choose_rows(plan: FolderPlan, n: int, rng: np.random.Generator) -> RowFaults:
    """Pick the rows for ``plan`` among ``n`` real rows (distinct rows for distinct faults)."""
    bad = plan.count(OUT_OF_RANGE), plan.count(MALFORMED_ROW)
    picked = rng.choice(n, size=sum(bad), replace=False) if sum(bad) else np.zeros(0, np.int64)
    extra = plan.count(IMPOSSIBLE_DATE) if n else 0
    source = rng.integers(0, n, extra) if extra else np.zeros(0, np.int64)
    at = np.sort(rng.integers(0, n + 1, extra)) if extra else np.zeros(0, np.int64)
    order = np.insert(np.arange(n, dtype=np.int64), at, n + np.arange(extra, dtype=np.int64))
    return RowFaults(
        order=order,
        extra_source=source.astype(np.int64),
        out_of_range=np.sort(picked[: bad[0]]).astype(np.int64),
        malformed=np.sort(picked[bad[0] :]).astype(np.int64),
    )


def impossible_day(day: date) -> tuple[int, int, int]:
    """A date in ``day``'s month that cannot exist: the day after the month's last (2025-02-29)."""
    return day.year, day.month, calendar.monthrange(day.year, day.month)[1] + 1


def bad_value(low: float, high: float, decimals: int, rng: np.random.Generator) -> float | int:
    """A value well outside ``[low, high]``, as a device glitch or a slipped keystroke gives.

    Half are far too high (a walking speed of 12 m/s, systolic 400), half negative (grip -12.5).
    """
    if rng.random() < 0.5:
        value = round(high * rng.uniform(2.5, 6.0), decimals)
    else:
        value = -round(max(high, 1.0) * rng.uniform(0.1, 1.0), decimals) - 10.0**-decimals
    return round(value) if decimals == 0 else round(value, decimals)


def break_csv_line(line: str, delimiter: str, rng: np.random.Generator) -> tuple[str, str]:
    """Lose the last field or add a stray one; returns the line and a description."""
    if rng.random() < 0.5:
        return line.rsplit(delimiter, 1)[0], "a field is missing"
    return line + delimiter + "0", "an extra field"


def break_json_line(line: str, rng: np.random.Generator) -> tuple[str, str]:
    """Cut the line short, as an interrupted write leaves it; returns it and a description."""
    cut = int(rng.integers(len(line) // 3, len(line) - 1))
    return line[:cut], f"line cut after {cut} characters"
