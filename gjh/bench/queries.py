"""The apps' query stages of ``gjh bench`` on the built lake: a citizen's timeline as the apps
read it (``lakehouse.queries.timeline``: the citizen's key bucket and row groups), a clinic's
worklist as the clinician app asks for it, and the officials' programme page (the KPI cards and
the AI services' table) as the public-health app asks for it. The worklist and the page go
through the access layer (checks, ``lakehouse.queries``, the audit rows: the app's whole path).
Each is asked many times, read afresh each time (the app's cache would answer repeats without
reading), then the same tables are read by a naive scan by the same keys in the same process,
the reference beside it. Issue 23's targets are on the p95: < 100 ms for the timeline and the
worklist, < 300 ms for the KPIs.

The stage process runs ``main`` (``python -m gjh.bench.queries <stage> <count>``) on the lake of
``LAKEHOUSE_URI`` and prints one JSON line, as every stage script does (``gjh.bench.stages``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import polars as pl

from gjh.bench import stages
from gjh.bench.report import Floor, Measured
from lakehouse import audit, buckets, queries, read
from lakehouse.access import Access
from lakehouse.access.gate import Principal

LOOKUPS: Final = 100  # of each query, as the timeline stage's
TIMELINE: Final = "timeline query"
WORKLIST: Final = "worklist query"
KPI: Final = "KPI query"
FINDINGS: Final = "ai.findings"
STUDIES: Final = "silver.imaging_studies"
TRIAGE: Final = "ops.triage_events"
# The tables the programme page reads (the published uptake and its daily source for the
# freshness, the published AI services, the enrolment register), each scanned whole by the
# naive reference: they are the aggregates, a few thousand rows.
KPI_TABLES: Final = (
    "gold.programme_uptake_published",
    "gold.programme_uptake_daily",
    "gold.ai_services_published",
    "silver.institutions",
)


def p95_ms(seconds: Sequence[float]) -> float:
    """The 95th percentile of these durations (nearest rank), in milliseconds."""
    ordered = sorted(seconds)
    return ordered[max(0, round(0.95 * len(ordered)) - 1)] * 1000


def timed(lookup: Callable[[str], object], keys: Sequence[str]) -> list[float]:
    """Seconds each ``lookup(key)`` took, in the order of ``keys``."""
    times = []
    for key in keys:
        began = time.perf_counter()
        lookup(key)
        times.append(time.perf_counter() - began)
    return times


def _figures(
    keys: Sequence[str],
    layer: Callable[[str], object],
    naive: Callable[[str], object],
    reads: Mapping[str, Callable[[str], Mapping[str, Sequence[object]]]] | None = None,
) -> dict[str, Any]:
    """The access layer's lookups and the naive scan's over the same keys, after one unmeasured
    lookup (the first opens the tables' logs, as a served app's first visitor does).

    Args:
        keys: What each lookup asks for, in turn.
        layer: The lookup as the apps make it.
        naive: The naive scan of the same rows.
        reads: The lookup's key reads (table to the ``lakehouse.read.lookup`` filter of a key):
            the data files they open per lookup (at most, over the keys) and the tables' files
            in all are reported beside the times (``files_read_max``, ``table_files``), what
            shows that the work per lookup does not grow with the tables.
    """
    layer(keys[0])
    through, scanned = timed(layer, keys), timed(naive, keys)
    figures: dict[str, Any] = {
        "seconds": sum(through),
        "items": len(keys),
        "p95_ms": p95_ms(through),
        "floor_seconds": sum(scanned),
        "floor_p95_ms": p95_ms(scanned),
        "keys": len(set(keys)),
    }
    if reads:
        per_key = [
            sum(len(read.files_for(name, where(key)) or ()) for name, where in reads.items())
            for key in set(keys)
        ]
        figures["files_read_max"] = max(per_key)
        figures["table_files"] = sum(
            snap.files.height for name in reads if (snap := read.snapshot(name)) is not None
        )
    return figures


def timeline(count: int) -> dict[str, Any]:
    """The timelines of the first ``count`` citizens by key; the naive reference scans the
    whole table by the key."""
    keys = (
        read.scan(queries.TIMELINE)
        .select("citizen_key")
        .unique()
        .sort("citizen_key")
        .head(count)
        .collect()["citizen_key"]
        .to_list()
    )

    def naive(key: str) -> pl.DataFrame:
        return read.scan(queries.TIMELINE).filter(pl.col("citizen_key") == key).collect()

    def mine(key: str) -> dict[str, list[object]]:
        return {"key_bucket": [buckets.key_bucket(key)], "citizen_key": [key]}

    return _figures(keys, queries.timeline, naive, {queries.TIMELINE: mine})


def worklist(count: int) -> dict[str, Any]:
    """``count`` worklists of the clinics that sent AI-scored studies, busiest first and in turn,
    as a clinician of each asks for it (``Access.worklist``, no filter); the naive reference
    scans the findings and the studies by the clinic and the triage decisions by its studies."""
    clinics = (
        read.scan(FINDINGS)
        .group_by("institution")
        .len()
        .sort("len", "institution", descending=True)
        .collect()["institution"]
        .to_list()
    )
    keys = [clinics[i % len(clinics)] for i in range(count)]

    def through(clinic: str) -> pl.DataFrame:
        layer = Access(
            Principal("bench.clinician", "clinician", institution=clinic, origin="bench")
        )
        return layer.worklist()

    def naive(clinic: str) -> pl.DataFrame:
        own = read.scan(FINDINGS).filter(pl.col("institution") == clinic).collect()
        read.scan(STUDIES).filter(pl.col("institution") == clinic).collect()
        uids = own["study_instance_uid"].unique().implode()
        return read.scan(TRIAGE).filter(pl.col("study_instance_uid").is_in(uids)).collect()

    def clinic(key: str) -> dict[str, list[object]]:
        return {"institution": [key]}

    return _figures(keys, through, naive, {FINDINGS: clinic, STUDIES: clinic})


def kpis(count: int) -> dict[str, Any]:
    """``count`` views of the officials' programme page over its months in turn (newest first),
    as the page asks (``Access.uptake_months``, ``kpis``, ``service_table`` in one audited
    view); the naive reference scans the same tables whole."""
    layer = Access(Principal("bench.official", "official", origin="bench"))
    months = layer.uptake_months()[::-1]
    keys = [months[i % len(months)] for i in range(count)]

    def through(month: str) -> None:
        with layer.view("overview"):
            layer.uptake_months()
            layer.kpis(month)
            layer.service_table()

    def naive(month: str) -> None:
        for name in KPI_TABLES:
            read.scan(name).collect()

    return _figures(keys, through, naive)


STAGES: Final = {TIMELINE: timeline, WORKLIST: worklist, KPI: kpis}


def measured(ctx: stages.Context, stage: str, count: int = LOOKUPS) -> Measured:
    """One query stage run as its own process on the bench's built lake and measured from
    outside, with the naive scan (same process, after the timed lookups) as its floor."""
    env = dict(ctx.env) | {"LAKEHOUSE_URI": str(ctx.work / "built")}
    script = f"from gjh.bench.queries import main; main({stage!r}, {count})"
    row = stages._measured(stage, script, env, "lookups")
    floor = Floor("naive scan_delta by key", row.detail["floor_seconds"], row.peak_rss_mib)
    return stages._with(row, floor, row.items)


def measured_all(ctx: stages.Context) -> list[Measured]:
    """Every query stage, in turn (``measured``)."""
    return [measured(ctx, stage) for stage in STAGES]


def main(stage: str, count: int) -> None:
    """Run one query stage on ``LAKEHOUSE_URI``'s lake and print its figures as a JSON line.
    The access log's flusher runs in a thread meanwhile, as in an app's server
    (``apps/common/flusher.py``): a lookup puts its audit row in the outbox and returns, the
    Delta commit is the flusher's (without it every lookup would commit the log itself)."""
    audit.start_flusher()
    try:
        figures = STAGES[stage](count)
    finally:
        audit.stop_flusher()
    sys.stdout.write(json.dumps(figures) + "\n")
