"""Benchmark helpers: where results go. The process-tree measurements live in
``gjh.bench.measure`` (shared with ``gjh bench``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parents[2] / "bench-results"


def record(name: str, result: dict[str, Any]) -> None:
    """Write one benchmark's figures to bench-results/<name>.json and print them."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"\n{name}: {json.dumps(result, indent=1)}")
