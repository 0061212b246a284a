"""Real-world reference data the lakehouse conforms to: code lists and Gwangju's boundaries.

One code list is the programme's own rather than a file here: ``ai_services`` is the list of AI
reading services in ``models/registry.toml`` (``models.runtime.services``), served under the same
name so that the catalogue's code checks and every reader see the registry and nothing else. The
lakehouse may import that module: it reads TOML with the standard library and imports nothing of
the project, so no layer above the lakehouse comes in with it.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Final

from models.runtime.services import listed

if TYPE_CHECKING:
    import polars as pl

ROOT = Path(__file__).parent
SERVICES: Final = "ai_services"


@cache
def _csv(name: str) -> pl.DataFrame:
    import polars as pl  # here only: see _csv_set

    return pl.read_csv(ROOT / "codes" / f"{name}.csv", comment_prefix="#", infer_schema=False)


def _services() -> pl.DataFrame:
    import polars as pl

    rows = [
        (s.service, s.name_ko, s.name_en, "|".join(s.modalities), s.status)
        for s in listed().values()
    ]
    return pl.DataFrame(
        rows, schema=["service", "name_ko", "name_en", "modalities", "status"], orient="row"
    )


def codes(name: str) -> pl.DataFrame:
    """One code list as text (codes keep their leading zeros): ``ai_services`` from the
    registry in use, any other from ``lakehouse/reference/codes/<name>.csv``."""
    return _services() if name == SERVICES else _csv(name)


@cache
def _csv_set(name: str) -> frozenset[str]:
    """The first column, read with the standard library: the DICOM header workers take the
    accepted transfer syntaxes from here, and without Polars each starts faster and smaller
    (issue 23). The tests check it against ``codes`` for every list."""
    path = ROOT / "codes" / f"{name}.csv"
    with path.open(encoding="utf-8-sig", newline="") as text:
        rows = csv.reader(line for line in text if not line.startswith("#"))
        next(rows, None)  # the header
        return frozenset(row[0] for row in rows if row)


def code_set(name: str) -> frozenset[str]:
    """The codes of one list (its first column)."""
    return frozenset(listed()) if name == SERVICES else _csv_set(name)


def kcd_with_dot(code: str) -> str:
    """KCD as claims carry it (``E119``) to its conventional form (``E11.9``)."""
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"
