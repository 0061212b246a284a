"""The published figures and code lists the synthetic city is drawn from.

Two kinds of tables, read once per process:

* ``synth/params/*.csv``: rates and distributions (age structure, visit rates, prevalence, ...),
  each file citing its source in its header comment. Only the generator uses them.
* ``lakehouse/reference/``: real-world code lists (KCD, drug ingredients, EDI procedures,
  institution classes, departments) and Gwangju's boundaries. The generator draws codes from them
  and the pipelines conform deliveries against them, so both sides speak the same code systems.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl

PARAMS = Path(__file__).parent / "params"
REFERENCE = Path(__file__).parent.parent / "lakehouse" / "reference"


def _read(path: Path) -> pl.DataFrame:
    # Every value is read as text first: codes such as "01" and "0" must keep their leading zeros.
    return pl.read_csv(path, comment_prefix="#", infer_schema=False)


@cache
def param(name: str) -> pl.DataFrame:
    """One parameter table, ``synth/params/<name>.csv``, as text columns."""
    return _read(PARAMS / f"{name}.csv")


@cache
def codes(name: str) -> pl.DataFrame:
    """One code list, ``lakehouse/reference/codes/<name>.csv``, as text columns."""
    return _read(REFERENCE / "codes" / f"{name}.csv")


@cache
def dongs() -> pl.DataFrame:
    """Gwangju's 95 administrative dongs: code, name, English name and district code."""
    doc: dict[str, Any] = json.loads(
        (REFERENCE / "gwangju" / "dongs.geojson").read_text(encoding="utf-8")
    )
    rows = [f["properties"] for f in doc["features"]]
    return (
        pl.DataFrame(
            {
                "dong_code": [r["code"] for r in rows],
                "dong_name": [r["name"] for r in rows],
                "dong_name_en": [r["name_eng"] for r in rows],
            }
        )
        .with_columns(pl.col("dong_code").str.slice(0, 5).alias("district_code"))
        .sort("dong_code")
    )


def floats(frame: pl.DataFrame, *columns: str) -> pl.DataFrame:
    """Cast the named text columns to Float64."""
    return frame.with_columns(pl.col(c).cast(pl.Float64) for c in columns)


def ints(frame: pl.DataFrame, *columns: str) -> pl.DataFrame:
    """Cast the named text columns to Int64."""
    return frame.with_columns(pl.col(c).cast(pl.Int64) for c in columns)
