"""Monthly claims and pharmacy deliveries, with the faults real extracts carry.

Each month the city receives ``claims/<YYYYMM>/`` (T200, T300, T400, T530) and
``pharmacy/<YYYYMM>/`` (PHARM_T200, PHARM_T300), delivered on the 10th of the following month.
The record-link history extract (``synth.history``) comes once, with the window's last month, as
``claims/history-<YYYYMM>/`` and ``pharmacy/history-<YYYYMM>/`` for every month of history: the
same layout and period grain, so the pipelines load it like any other month.
Some months arrive in CP949, as Korean public-sector systems still export, and some in UTF-8.

Work is split so that the main process only appends bytes: ``render_slice`` runs in the worker
that built the slice (faults, CSV text, encoding), and ``ClaimsWriter.append`` writes the parts in
slice order, turning each fault's row index into its file line. What to break is decided from the
slice's own random stream, so the bytes do not depend on the number of workers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl

from synth import faults as fk
from synth.claims import ClaimsChunk
from synth.config import KST, CityConfig
from synth.delivery import MANIFEST, CsvFile, Delivery, render_csv, resend
from synth.faults import FaultLog
from synth.hira import TABLES
from synth.rng import stream

SOURCES: Final = {
    "claims": ("T200", "T300", "T400", "T530"),
    "pharmacy": ("PHARM_T200", "PHARM_T300"),
}
# Share of monthly deliveries exported in CP949 (a modelling choice: both occur in practice).
CP949_SHARE: Final = 0.5
# Tables whose rows nothing else depends on: row faults go only there (see synth.faults).
LEAF_TABLES: Final = ("T300", "T400", "T530", "PHARM_T300")
# Codes that look like codes but exist in no code list the platform knows.
UNKNOWN_KCD: Final = ("K999", "E999", "H999")
UNKNOWN_DRUG: Final = ("999901ATB", "888802ACH")
KST_DELIVERY: Final = time(9, 0)


def _delivered_at(year: int, month: int) -> datetime:
    """Claims for a month arrive on the 10th of the next month, at 09:00 KST."""
    y, m = (year + 1, 1) if month == 12 else (year, month + 1)
    return datetime.combine(datetime(y, m, 10).date(), KST_DELIVERY, tzinfo=KST)


# A fault waiting for its line number: row index in the slice, kind, statement id, detail.
_Pending = tuple[int, str, str, str]


def _drop_last_field(line: str) -> str:
    return line.rsplit(",", 1)[0]


def _extra_field(line: str) -> str:
    return line + ",##"


@dataclass(frozen=True)
class ClaimsPlan:
    """Decisions made once per city and shared with every worker: each month's encoding and
    which months' T300 is misdeclared.

    Attributes:
        months: Every month delivered: the history extract's months, then the window's.
        history: The history extract's months (a prefix of ``months``; empty without history).
    """

    seed: int
    months: tuple[str, ...]
    encoding: dict[str, str]
    wrong_encoding: frozenset[str]
    faults: bool
    history: tuple[str, ...] = ()

    @classmethod
    def for_city(cls, cfg: CityConfig, faults: bool) -> ClaimsPlan:
        rng = stream(cfg.seed, "claims-encoding")
        months = tuple(f"{y}{m:02d}" for y, m in cfg.months())
        encoding = {m: ("cp949" if rng.random() < CP949_SHARE else "utf-8") for m in months}
        wrong: set[str] = set()
        if faults:
            # CP949 months whose T300 the sender declares as UTF-8 (a real mistake: the bytes are
            # CP949, the manifest says otherwise); at least one per city.
            wrong = {
                m
                for m in months
                if encoding[m] == "cp949" and rng.random() < fk.RATES[fk.WRONG_ENCODING]
            }
            if not wrong:
                month = next((m for m in months if encoding[m] == "cp949"), months[0])
                encoding[month] = "cp949"
                wrong.add(month)
        # Drawn after the window's, so a history leaves the window's months as they were.
        history = tuple(f"{y}{m:02d}" for y, m in cfg.history_months())
        encoding |= {m: ("cp949" if rng.random() < CP949_SHARE else "utf-8") for m in history}
        return cls(cfg.seed, history + months, encoding, frozenset(wrong), faults, history)

    def delivery(self, month: str) -> tuple[str, datetime]:
        """A month's delivery folder name and sending time: the monthly extract on the 10th of
        the next month; the history extract's months all with the window's last month."""
        if month in self.history:
            last = self.months[-1]
            return f"history-{month}", _delivered_at(int(last[:4]), int(last[4:]))
        return month, _delivered_at(int(month[:4]), int(month[4:]))


@dataclass
class RenderedPart:
    """One slice's rows of one file, encoded, with the faults placed in them (by row index)."""

    table: str
    month: str
    data: bytes
    lines: int
    faults: list[_Pending] = field(default_factory=list)


def render_slice(plan: ClaimsPlan, index: int, chunk: ClaimsChunk) -> list[RenderedPart]:
    """Render one slice's rows file by file, breaking some of them when faults are on."""
    parts: list[RenderedPart] = []
    for table, frame in chunk.tables.items():
        if not frame.height:
            continue
        forced = False
        for (key,), part in frame.partition_by("_month", as_dict=True, maintain_order=True).items():
            month = str(key)
            if month not in plan.months:
                continue  # a pharmacy fill after the window's last month
            rows = part.drop("_month")
            edits: dict[int, Callable[[str], str]] = {}
            pending: list[_Pending] = []
            if plan.faults and month not in plan.wrong_encoding:
                # Every kind at least once per city: in the first slice's first clean month.
                force = index == 0 and not forced
                rows, edits, pending = _inject(plan.seed, index, table, month, rows, force)
                forced = True
            data = render_csv(rows, plan.encoding[month], ",", edits)
            parts.append(RenderedPart(table, month, data, rows.height, pending))
    return parts


def _count(rng: np.random.Generator, n: int, kind: str, force: bool) -> int:
    k = int(rng.binomial(n, fk.RATES[kind]))
    return min(max(k, 1 if force else 0), n)


def _inject(
    seed: int, index: int, table: str, month: str, rows: pl.DataFrame, force: bool
) -> tuple[pl.DataFrame, dict[int, Callable[[str], str]], list[_Pending]]:
    """Break some rows of one slice's part of a file; return the rows, the line edits and the
    faults to record once the lines' numbers are known."""
    rng = stream(seed, "claims-faults", table, month, index)
    edits: dict[int, Callable[[str], str]] = {}
    pending: list[_Pending] = []
    n = rows.height
    if table in LEAF_TABLES:
        order = rng.permutation(n)
        k = _count(rng, n, fk.MALFORMED_ROW, force)
        for i in order[:k]:
            broken = _drop_last_field if rng.random() < 0.7 else _extra_field
            edits[int(i)] = broken
            detail = "a field lost" if broken is _drop_last_field else "an extra field"
            pending.append((int(i), fk.MALFORMED_ROW, str(rows["SPEC_ID_SNO"][int(i)]), detail))
        code_col = {"T400": "SICK_CD", "T530": "GNL_NM_CD"}.get(table)
        if code_col:
            free = [int(i) for i in order[k:]]
            u = _count(rng, len(free), fk.UNKNOWN_CODE, force)
            options = UNKNOWN_KCD if table == "T400" else UNKNOWN_DRUG
            values = rows[code_col].to_list()
            for i in free[:u]:
                values[i] = options[int(rng.integers(0, len(options)))]
                spec = str(rows["SPEC_ID_SNO"][i])
                pending.append((i, fk.UNKNOWN_CODE, spec, f"{code_col}={values[i]}"))
            rows = rows.with_columns(pl.Series(code_col, values))
    elif table == "T200":
        k = _count(rng, n, fk.IMPOSSIBLE_DATE, force)
        if k:
            extra = rows[np.sort(rng.choice(n, size=k, replace=False)).tolist()]
            ids = [f"{month}{index:03d}{9_000_000 + j:07d}" for j in range(k)]
            bad = [f"{month}30" if month.endswith("02") else f"{month}32" for _ in range(k)]
            extra = extra.with_columns(
                pl.Series("SPEC_ID_SNO", ids),
                pl.Series("RECU_FR_DD", bad),
                pl.Series("RECU_TO_DD", bad),
                pl.lit("").alias("PRSC_ISSU_NO"),
            )
            for j in range(k):
                pending.append((n + j, fk.IMPOSSIBLE_DATE, ids[j], f"RECU_FR_DD={bad[j]}"))
            rows = pl.concat([rows, extra])
    return rows, edits, pending


class ClaimsWriter:
    """Appends every month's claims and pharmacy files as rendered slices arrive, in order."""

    def __init__(self, out: Path, plan: ClaimsPlan, faults: FaultLog) -> None:
        self.out = out
        self.plan = plan
        self.faults = faults
        self.deliveries: dict[tuple[str, str], Delivery] = {}
        self.files: dict[tuple[str, str], CsvFile] = {}
        for month in plan.months:
            folder, sent = plan.delivery(month)
            extract = "record-link history" if month in plan.history else "monthly"
            for source, tables in SOURCES.items():
                d = Delivery(
                    out,
                    source,
                    folder,
                    sent,
                    plan.encoding[month],
                    meta={"layout": "HIRA research extract", "extract": extract},
                    period=f"{month[:4]}-{month[4:]}",
                )
                self.deliveries[(source, month)] = d
                for table in tables:
                    wrong = table == "T300" and month in plan.wrong_encoding
                    self.files[(table, month)] = d.csv(
                        f"{table}_{month}.csv",
                        TABLES[table],
                        declared_encoding="utf-8" if wrong else None,
                    )

    def append(self, parts: list[RenderedPart]) -> None:
        """Append one slice's rendered parts and record their faults at their file lines."""
        for part in parts:
            first = self.files[(part.table, part.month)].write_rendered(part.data, part.lines)
            source = "pharmacy" if part.table.startswith("PHARM") else "claims"
            path = self.deliveries[(source, part.month)].relpath(f"{part.table}_{part.month}.csv")
            for row, kind, spec, detail in part.faults:
                self.faults.add(kind, source, path, first + row, spec, detail)

    # -- closing -----------------------------------------------------------------------------

    def close(self) -> dict[str, int]:
        """Close every file and manifest; with faults on, record the wrongly declared files and
        re-send one month's delivery as a duplicate."""
        for d in self.deliveries.values():
            d.close()
        rows = {
            table: sum(f.rows for (t, _), f in self.files.items() if t == table) for table in TABLES
        }
        if self.faults.enabled:
            for month in sorted(self.plan.wrong_encoding):
                path = self.deliveries[("claims", month)].relpath(f"T300_{month}.csv")
                self.faults.add(
                    fk.WRONG_ENCODING, "claims", path, detail="declared utf-8, written in cp949"
                )
            self._resend()
        return rows

    def _resend(self) -> None:
        """Re-send one month (never a wrongly declared one) as a new delivery, unchanged."""
        rng = stream(self.plan.seed, "claims-resend")
        candidates = [
            m
            for m in self.plan.months
            if m not in self.plan.wrong_encoding and m not in self.plan.history
        ]
        if not candidates:
            return
        month = candidates[int(rng.integers(0, len(candidates)))]
        source = "claims"
        original = self.deliveries[(source, month)]
        target = resend(original, f"{month}-resend", original.delivered_at + timedelta(days=3))
        for name in sorted(p.name for p in target.iterdir() if p.name != MANIFEST):
            rel = (target / name).relative_to(self.out).as_posix()
            self.faults.add(
                fk.DUPLICATE_DELIVERY, source, rel, detail=f"same bytes as {month}/{name}"
            )
