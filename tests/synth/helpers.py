"""Helpers shared by the generator's tests: the real population model at a chosen size, and
readers for delivery folders, manifests and recorded faults."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from synth.config import CityConfig
from synth.faults import FaultLog
from synth.morbidity import generate_conditions
from synth.population import generate_people


def make_people(n: int, start: date, days: int, seed: int = 1) -> tuple[pl.DataFrame, pl.DataFrame]:
    """People and their chronic conditions from the real population model."""
    cfg = CityConfig(citizens=n, start=start, days=days, seed=seed)
    people = generate_people(cfg)
    return people, generate_conditions(people, cfg)


START = date(2025, 1, 1)
RRN_PATTERN = r"\d{6}-\d{7}"


def manifests(out: Path, source: str) -> list[tuple[Path, dict[str, Any]]]:
    """Every delivery folder of ``source`` with its manifest, in path order."""
    return [
        (m.parent, json.loads(m.read_text(encoding="utf-8")))
        for m in sorted((out / source).glob("*/delivery.json"))
    ]


def check_manifest(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """Decode every data file in its declared encoding; check bytes, sha256 and row count.

    Returns the decoded text of each file.
    """
    texts = []
    for entry in manifest["files"]:
        data = (folder / entry["name"]).read_bytes()
        assert len(data) == entry["bytes"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        text = data.decode(entry["encoding"])  # raises if the declared encoding is wrong
        header = 1 if entry["format"] == "csv" else 0
        assert text.count("\n") - header == entry["rows"]
        assert text == "" or text.endswith("\n")
        texts.append(text)
    names = {e["name"] for e in manifest["files"]}
    assert names == {p.name for p in folder.iterdir()} - {"delivery.json"}
    return texts


def rel(path: Path, out: Path) -> str:
    return path.relative_to(out).as_posix()


def recorded(faults: FaultLog, prefix: str) -> set[tuple[str, int | None, str]]:
    return {(f.path, f.line, f.kind) for f in faults.faults if f.path.startswith(prefix)}


def duplicate_pairs(out: Path, source: str) -> set[tuple[str, None, str]]:
    """Re-sent folders (``-2``) checked byte-identical to the original; as expected faults."""
    found: set[tuple[str, None, str]] = set()
    for folder, manifest in manifests(out, source):
        if folder.name.endswith("-1"):
            continue
        original = folder.with_name(folder.name[:-2] + "-1")
        first = json.loads((original / "delivery.json").read_text(encoding="utf-8"))
        assert manifest["delivery_id"] != first["delivery_id"]
        assert manifest["delivered_at"] > first["delivered_at"]
        for entry in manifest["files"]:
            assert (folder / entry["name"]).read_bytes() == (original / entry["name"]).read_bytes()
            found.add((rel(folder / entry["name"], out), None, "duplicate_delivery"))
    return found
