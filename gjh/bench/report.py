"""The benchmark's report: one row per stage with its measurements, its floor measured in the same
run, the ratio between them and issue 23's target; written as JSON and as a Markdown table.

Pure functions of the measurements, so the report's logic is tested without running anything.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SCHEMA = 1
# How memory is measured, stated in every report.
MEMORY_METHOD = (
    "peak of the sum of VmRSS over the stage's process and all its descendants, "
    "sampled from /proc every 0.2 s by a thread (gjh.bench.measure.Usage)"
)

Kind = Literal["time_ratio_max", "rate_ratio_min", "p95_ms_max", "peak_mib_max"]


@dataclass(frozen=True)
class Target:
    """Issue 23's target for a stage: a bound on the ratio to the floor (time: at most;
    throughput: at least), on the p95 latency or on the peak memory; and, when
    ``memory_ratio_max`` is set, its peak memory at most that many times the floor's too."""

    kind: Kind
    value: float
    memory_ratio_max: float | None = None

    def describe(self) -> str:
        text = {
            "time_ratio_max": f"time ≤ {self.value:g}× floor",
            "rate_ratio_min": f"throughput ≥ {self.value:g}× floor",
            "p95_ms_max": f"p95 < {self.value:g} ms",
            "peak_mib_max": f"peak < {self.value / 1024:g} GiB",
        }[self.kind]
        if self.memory_ratio_max is not None:
            text += f"; peak memory ≤ {self.memory_ratio_max:g}× floor's"
        return text


# The many-people run's rows (gjh.bench.crowd.STEPS): each step's p95 over one person alone's.
CROWD_STAGES = (
    "people at once: worklist",
    "people at once: timeline",
    "people at once: study images",
)
# The targets of issue 23's table, by stage name.
TARGETS: dict[str, Target] = {
    "claims bronze": Target("time_ratio_max", 1.5),
    "claims silver": Target("time_ratio_max", 1.5),
    "DICOM header indexing": Target("rate_ratio_min", 0.9),
    "DICOM intake": Target("rate_ratio_min", 1.0, memory_ratio_max=2.0),
    "AI scoring": Target("rate_ratio_min", 0.8),
    "whole build": Target("peak_mib_max", 8 * 1024),
    "one new day": Target("time_ratio_max", 0.05),
    # Dagster's own share ≤ 30 % of the build: build time ≤ op bodies' time / 0.7 (overhead.py).
    "make demo's build": Target("time_ratio_max", round(1 / 0.7, 3)),
    "worklist query": Target("p95_ms_max", 100),
    "timeline query": Target("p95_ms_max", 100),
    "KPI query": Target("p95_ms_max", 300),
    **{name: Target("time_ratio_max", 2) for name in CROWD_STAGES},
}


@dataclass(frozen=True)
class Floor:
    """The bare library doing the same input and output, measured in the same run."""

    name: str
    seconds: float
    peak_rss_mib: float


@dataclass(frozen=True)
class Measured:
    """One stage as measured: its own clock (imports excluded), the process's wall time, what
    it processed and its peak memory; ``p95_ms`` for queries (repeated lookups)."""

    stage: str
    seconds: float
    wall_seconds: float
    items: int
    unit: str
    peak_rss_mib: float
    floor: Floor | None = None
    p95_ms: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def ratio(row: Measured) -> float | None:
    """The stage against its floor: time over the floor's time for a time bound or a latency,
    throughput over the floor's throughput (the same items) for a throughput bound."""
    if row.floor is None or row.floor.seconds <= 0 or row.seconds <= 0:
        return None
    target = TARGETS.get(row.stage)
    if target is not None and target.kind == "rate_ratio_min":
        return row.floor.seconds / row.seconds
    return row.seconds / row.floor.seconds


def met(row: Measured) -> bool | None:
    """Whether the stage meets its target; None when it has none or lacks what it is judged on."""
    target = TARGETS.get(row.stage)
    if target is None:
        return None
    if row.detail.get("errors"):  # a person's content never showed, a server did not answer
        return False
    if target.kind == "peak_mib_max":
        return row.peak_rss_mib < target.value
    if target.kind == "p95_ms_max":
        return None if row.p95_ms is None else row.p95_ms < target.value
    found = ratio(row)
    if found is None or row.floor is None:
        return None
    ok = found <= target.value if target.kind == "time_ratio_max" else found >= target.value
    if target.memory_ratio_max is not None:
        ok = ok and row.peak_rss_mib <= target.memory_ratio_max * row.floor.peak_rss_mib
    return ok


def _row(row: Measured) -> dict[str, Any]:
    target = TARGETS.get(row.stage)
    found = ratio(row)
    out = asdict(row)
    out["per_second"] = round(row.items / row.seconds, 1) if row.seconds > 0 else None
    out["ratio"] = None if found is None else round(found, 3)
    out["target"] = (
        None if target is None else {k: v for k, v in asdict(target).items() if v is not None}
    )
    out["met"] = met(row)
    return out


def assemble(size: dict[str, Any], rows: list[Measured], machine: dict[str, Any]) -> dict[str, Any]:
    """The report's JSON document: what was measured, on what, and each stage's row."""
    return {
        "schema": SCHEMA,
        "size": size,
        "machine": machine,
        "memory": MEMORY_METHOD,
        "stages": [_row(r) for r in rows],
    }


def dumps(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=1, ensure_ascii=False) + "\n"


def _cell(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table, one line per stage, with the size and the machine."""
    size, machine = report["size"], report["machine"]
    lines = [
        f"`gjh bench`: {size['citizens']:,} citizens, {size['days']} days "
        f"({size['name']}); {machine['cores']} cores, load average "
        f"{machine['load_before']:.1f} before and {machine['load_after']:.1f} after"
        + (" (**loaded machine**: other work shared the cores)" if machine["loaded"] else ""),
        "",
        "| stage | time s | throughput | peak memory MiB | floor (same run) | floor s "
        "| ratio | target | met |",
        "| --- | ---: | ---: | ---: | --- | ---: | ---: | --- | --- |",
    ]
    for row in report["stages"]:
        floor = row["floor"]
        target = row["target"]
        rate = row["per_second"]
        throughput = "—" if rate is None else f"{rate:,.0f} {row['unit']}/s"
        if row["p95_ms"] is not None:
            throughput += f", p95 {row['p95_ms']:.1f} ms"
        verdict = {True: "met", False: "**not met**", None: "—"}[row["met"]]
        lines.append(
            f"| {row['stage']} | {_cell(row['seconds'])} | {throughput} "
            f"| {_cell(row['peak_rss_mib'], 0)} | {floor['name'] if floor else '—'} "
            f"| {_cell(floor['seconds'] if floor else None)} | {_cell(row['ratio'])} "
            f"| {Target(**target).describe() if target else '—'} | {verdict} |"
        )
    lines += ["", f"Memory: {report['memory']}."]
    return "\n".join(lines) + "\n"
