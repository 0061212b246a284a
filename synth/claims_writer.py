"""Monthly claims and pharmacy deliveries, with the faults real extracts carry.

Each month the city receives ``claims/<YYYYMM>/`` (T200, T300, T400, T530) and
``pharmacy/<YYYYMM>/`` (PHARM_T200, PHARM_T300), delivered on the 10th of the following month.
Some months arrive in CP949, as Korean public-sector systems still export, and some in UTF-8.
Rows are appended slice by slice, so the full city's months never sit in memory.

With faults on, the writer breaks rows the way extracts break (see ``synth.faults``) and records
every fault with its file and line.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl

from synth import faults as fk
from synth.claims import ClaimsChunk
from synth.config import KST, CityConfig
from synth.delivery import MANIFEST, CsvFile, Delivery, resend
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


class ClaimsWriter:
    """Writes every month's claims and pharmacy deliveries as slices arrive."""

    def __init__(self, out: Path, cfg: CityConfig, faults: FaultLog) -> None:
        self.out = out
        self.cfg = cfg
        self.faults = faults
        rng = stream(cfg.seed, "claims-encoding")
        self.months = [f"{y}{m:02d}" for y, m in cfg.months()]
        self.encoding = {
            m: ("cp949" if rng.random() < CP949_SHARE else "utf-8") for m in self.months
        }
        self.wrong_encoding: set[str] = set()
        if faults.enabled:
            self._plan_wrong_encoding(rng)
        self.deliveries: dict[tuple[str, str], Delivery] = {}
        self.files: dict[tuple[str, str], CsvFile] = {}
        for y, m in cfg.months():
            month = f"{y}{m:02d}"
            for source, tables in SOURCES.items():
                d = Delivery(
                    out,
                    source,
                    month,
                    _delivered_at(y, m),
                    self.encoding[month],
                    meta={"period": f"{y}-{m:02d}", "layout": "HIRA research extract"},
                )
                self.deliveries[(source, month)] = d
                for table in tables:
                    declared = "utf-8" if (table, month) in self._wrong else None
                    self.files[(table, month)] = d.csv(
                        f"{table}_{month}.csv", TABLES[table], declared_encoding=declared
                    )
        self.forced: set[str] = set()

    @property
    def _wrong(self) -> set[tuple[str, str]]:
        return {("T300", m) for m in self.wrong_encoding}

    def _plan_wrong_encoding(self, rng: np.random.Generator) -> None:
        """One or more CP949 months whose T300 the sender declares as UTF-8 (a real mistake: the
        bytes are CP949, the manifest says otherwise)."""
        for m in self.months:
            if self.encoding[m] == "cp949" and rng.random() < fk.RATES[fk.WRONG_ENCODING]:
                self.wrong_encoding.add(m)
        if not self.wrong_encoding:
            month = next((m for m in self.months if self.encoding[m] == "cp949"), self.months[0])
            self.encoding[month] = "cp949"
            self.wrong_encoding.add(month)

    def write(self, index: int, chunk: ClaimsChunk) -> None:
        """Append one slice's rows to their months' files (slices arrive in order)."""
        for table, frame in chunk.tables.items():
            if not frame.height:
                continue
            for (month,), part in frame.partition_by(
                "_month", as_dict=True, maintain_order=True
            ).items():
                key = (table, str(month))
                if key not in self.files:
                    continue  # a pharmacy fill after the window's last month
                rows = part.drop("_month")
                pending: list[_Pending] = []
                edits: dict[int, Callable[[str], str]] = {}
                if self.faults.enabled and str(month) not in self.wrong_encoding:
                    rows, edits, pending = self._inject(index, table, str(month), rows)
                first = self.files[key].write_frame(rows, edits=edits or None)
                source = "pharmacy" if table.startswith("PHARM") else "claims"
                path = self.deliveries[(source, str(month))].relpath(f"{table}_{month}.csv")
                for row, kind, spec, detail in pending:
                    self.faults.add(kind, source, path, first + row, spec, detail)

    # -- faults ------------------------------------------------------------------------------

    def _count(self, rng: np.random.Generator, n: int, kind: str, force_key: str) -> int:
        k = int(rng.binomial(n, fk.RATES[kind]))
        if k == 0 and n > 0 and force_key not in self.forced:
            k = 1  # every kind at least once per city
        if k:
            self.forced.add(force_key)
        return min(k, n)

    def _inject(
        self, index: int, table: str, month: str, rows: pl.DataFrame
    ) -> tuple[pl.DataFrame, dict[int, Callable[[str], str]], list[_Pending]]:
        """Break some rows of one slice's part of a file; return the rows, the line edits and
        the faults to record once the lines' numbers are known."""
        rng = stream(self.cfg.seed, "claims-faults", table, month, index)
        edits: dict[int, Callable[[str], str]] = {}
        pending: list[_Pending] = []
        n = rows.height
        if table in LEAF_TABLES:
            order = rng.permutation(n)
            k = self._count(rng, n, fk.MALFORMED_ROW, f"{table}:malformed")
            for i in order[:k]:
                broken = _drop_last_field if rng.random() < 0.7 else _extra_field
                edits[int(i)] = broken
                pending.append(
                    (int(i), fk.MALFORMED_ROW, str(rows["SPEC_ID_SNO"][int(i)]),
                     "a field lost" if broken is _drop_last_field else "an extra field")
                )  # fmt: skip
            code_col = {"T400": "SICK_CD", "T530": "GNL_NM_CD"}.get(table)
            if code_col:
                free = [int(i) for i in order[k:]]
                u = self._count(rng, len(free), fk.UNKNOWN_CODE, f"{table}:unknown")
                options = UNKNOWN_KCD if table == "T400" else UNKNOWN_DRUG
                values = rows[code_col].to_list()
                for i in free[:u]:
                    values[i] = options[int(rng.integers(0, len(options)))]
                    pending.append(
                        (i, fk.UNKNOWN_CODE, str(rows["SPEC_ID_SNO"][i]), f"{code_col}={values[i]}")
                    )
                rows = rows.with_columns(pl.Series(code_col, values))
        elif table == "T200":
            k = self._count(rng, n, fk.IMPOSSIBLE_DATE, "T200:date")
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
            for month in sorted(self.wrong_encoding):
                path = self.deliveries[("claims", month)].relpath(f"T300_{month}.csv")
                self.faults.add(
                    fk.WRONG_ENCODING, "claims", path, detail="declared utf-8, written in cp949"
                )
            self._resend()
        return rows

    def _resend(self) -> None:
        """Re-send one month (never a wrongly declared one) as a new delivery, unchanged."""
        rng = stream(self.cfg.seed, "claims-resend")
        candidates = [m for m in self.months if m not in self.wrong_encoding]
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
