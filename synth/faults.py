"""Fault injection bookkeeping: what ``--inject-faults`` broke, and where.

Real feeds deliver broken rows, wrongly declared encodings, files sent twice and damaged DICOM.
The generator injects such faults at the rates below and records every one in ``faults.json``,
so the pipelines' quarantine can be reconciled with what was injected, kind by kind.

Conventions that keep that reconciliation exact:

* A row fault names the file and its 1-based physical line (the header is line 1).
* Row faults are put only on records that no other record depends on (claim lines, diagnoses,
  prescriptions, device rows, events), or on extra records that have no dependants, so that
  quarantining one record never orphans another.
* A file-level fault (``wrong_encoding``, ``duplicate_delivery``, DICOM damage) names the file and
  no line; the whole file is quarantined, and no row fault is injected into it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

# Fault kinds. The pipelines' quarantine reason codes reuse these names.
MALFORMED_ROW: Final = "malformed_row"
IMPOSSIBLE_DATE: Final = "impossible_date"
UNKNOWN_CODE: Final = "unknown_code"
OUT_OF_RANGE: Final = "out_of_range_value"
DUPLICATE_DELIVERY: Final = "duplicate_delivery"
WRONG_ENCODING: Final = "wrong_encoding"
TRUNCATED_DICOM: Final = "truncated_dicom"
CORRUPT_DICOM: Final = "corrupt_dicom"
NOT_DICOM: Final = "not_dicom"

KINDS: Final = (
    MALFORMED_ROW,
    IMPOSSIBLE_DATE,
    UNKNOWN_CODE,
    OUT_OF_RANGE,
    DUPLICATE_DELIVERY,
    WRONG_ENCODING,
    TRUNCATED_DICOM,
    CORRUPT_DICOM,
    NOT_DICOM,
)

# Injection rates. Row rates are per eligible row; every kind is injected at least once per city
# so that even a small test city exercises every quarantine path.
RATES: Final[dict[str, float]] = {
    MALFORMED_ROW: 1 / 5_000,  # per claim line, diagnosis, prescription, device row or event
    IMPOSSIBLE_DATE: 1
    / 20_000,  # extra statements / device rows / events carrying a date like 20250231
    UNKNOWN_CODE: 1 / 10_000,  # per diagnosis (SICK_CD) or prescription (GNL_NM_CD)
    OUT_OF_RANGE: 1 / 2_000,  # per device measurement row
    DUPLICATE_DELIVERY: 1 / 50,  # per delivery folder, sent again under a new delivery id
    WRONG_ENCODING: 1 / 12,  # per monthly claims delivery: one table declared UTF-8, sent as CP949
    TRUNCATED_DICOM: 1 / 500,  # per DICOM file
    CORRUPT_DICOM: 1 / 500,  # per DICOM file
    NOT_DICOM: 1 / 200,  # per imaging upload folder: a stray non-DICOM file
}


@dataclass(frozen=True, order=True)
class Fault:
    """One injected fault.

    Attributes:
        path: File path relative to the output root, with forward slashes.
        line: 1-based physical line for row faults (the header is line 1); None for a whole file.
        kind: One of ``KINDS``.
        source: The delivering source (``claims``, ``pharmacy``, ``centre``, ``imaging``, ...).
        key: The record's own key where it has one (statement id, event id), for reading back.
        detail: What exactly was broken, in words.
    """

    path: str
    line: int | None
    kind: str
    source: str
    key: str | None = None
    detail: str = ""


class FaultLog:
    """Collects the faults injected during one run and writes ``faults.json``."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._faults: list[Fault] = []

    def add(
        self,
        kind: str,
        source: str,
        path: str,
        line: int | None = None,
        key: str | None = None,
        detail: str = "",
    ) -> None:
        """Record one fault; ``kind`` must be one of ``KINDS``."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        self._faults.append(Fault(path, line, kind, source, key, detail))

    def extend(self, faults: list[Fault]) -> None:
        """Record faults collected elsewhere (for example in a worker process)."""
        for fault in faults:
            self.add(fault.kind, fault.source, fault.path, fault.line, fault.key, fault.detail)

    @property
    def faults(self) -> list[Fault]:
        return sorted(self._faults, key=lambda f: (f.path, f.line or 0, f.kind))

    def write(self, out: Path) -> Path:
        """Write ``faults.json``: the rates, a count per kind and every fault in path order."""
        faults = self.faults
        counts = {kind: sum(1 for f in faults if f.kind == kind) for kind in KINDS}
        doc = {
            "injected": self.enabled,
            "rates": RATES if self.enabled else {},
            "counts": counts,
            "faults": [asdict(f) for f in faults],
        }
        target = out / "faults.json"
        target.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        return target
