"""Officials' app benchmark (issue 20): each page's access-layer queries at Gwangju's size,
against a naive scan of the raw daily table in the same run.

The daily table is built synthetically, not from the generator (a year of the full city would
take hours here): ``gold.programme_uptake_daily`` for 1.43 M residents over 2025 (365 days x 95
dongs x 5 age groups x 2 sexes, 346,750 rows). Residents per cell follow Gwangju's districts
(``synth/params/districts.csv``), its age and sex structure (``population_age_sex.csv``) and its
dongs (``lakehouse/reference/gwangju``; a district's residents spread over its dongs with
weights drawn at random). The flows and the funnel's stocks are drawn per cell and day at the
rates the synthetic city uses (``programme_adoption.csv``, ``programme_parameters.csv``: Bass
sign-ups, the record-link consent share, logins); the AI service and centre rates are
benchmark choices of the same order as the synthetic city's, named in ``RATES``. It is written
as the gold job writes it (``lakehouse.delta.replace`` over the period), then published with
the gold job's own transform (``pipelines.transform.published.published``, its LP audit
included) and written the same way; how long that publication takes is recorded. The built
lake is kept under the temporary folder (``gjh-bench-officials``) and reused.

Measured, ``RUNS`` times each after one warm-up, with a fresh ``Access`` and no app cache: the
access-layer calls each page makes for its default view (``PAGES``: read from
``apps/public_health/app_pages``), and a naive scan computing the same figures from the raw
daily table with Polars (a group-by over the period, no suppression). Target: each page's p95
under 300 ms. Wall and CPU time (this process, all threads) are both kept: the machine is shared.
The DuckDB connection is kept for the process, as the app keeps it (``apps.common.cache``); no
result is cached. Each page's calls run in one audited view (``Gate.view``), as the pages make
them: every call's audit row, one Delta commit a view. A commit's cost grows with the access
log's files and history, so the log is first compacted (``lakehouse.audit.compact``, as it
compacts itself every ``COMPACT_EVERY`` commits); its files at the start and end, one append's
time alone and each view's audit rows and commits are recorded beside the pages, and each page
is timed once more with the audit append made a no-op (``reads_*``: what the reads alone cost),
and its p95 set against the naive scan's (``p95_over_naive_p95``).
The tables of institutions, AI findings, deliveries and quarantine are not built here (the
pages' calls read them as empty), so ``kpis``, ``service_table`` and ``data_health`` are timed
on the uptake tables at city size only.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl
import pytest

from apps.public_health.charts import FUNNEL
from lakehouse import audit, delta
from lakehouse import read as lake_read
from lakehouse.access import Access, Principal, Readers
from lakehouse.access.aggregates import UPTAKE_MEASURES
from lakehouse.audit import AUDIT
from lakehouse.catalog import table
from pipelines.transform.gold import AGE_GROUPS
from pipelines.transform.published import PUBLISHED, published
from synth import reference
from tests.benchmarks.conftest import record
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.benchmark, pytest.mark.timeout(0)]
RESIDENTS: Final = int(os.environ.get("GJH_BENCH_RESIDENTS", "1430000"))
RUNS: Final = int(os.environ.get("GJH_BENCH_OFFICIAL_RUNS", "30"))
TARGET_S: Final = 0.300
FIRST: Final = date(2025, 1, 1)
DAYS: Final = 365
UPTAKE: Final = table("gold.programme_uptake_daily")
DISTRICT: Final = "district_code"
# Per resident: the share who would ever sign up, by age group (market share 0.5 x smartphone x
# capability x interest of programme_adoption.csv, weighted over each group's ages; under 14s
# cannot sign up); then the benchmark's rates.
EVER: Final = {"0-19": 0.05, "20-39": 0.40, "40-64": 0.48, "65-74": 0.28, "75+": 0.08}
RATES: Final = {
    "bass_p": 0.10,  # programme_parameters.csv
    "bass_q": 0.38,
    "consent": 0.85,  # consent_record_link
    "link": 0.93,  # 1 - link_failure
    "logins_per_user_day": 0.05,  # floor 0.3 x 0.12 plus the first weeks' decay, about
    "ai_users_per_resident_year": 0.03,  # residents 40+ with a study scored (benchmark choice)
    "centre_visits_per_resident_day": 0.002,  # residents 65+ (benchmark choice)
    "centre_first_visit": 0.2,  # share of a day's visitors who visit for the first time
}


def _cells(rng: np.random.Generator) -> pl.DataFrame:
    """Residents per dong x age group x sex, adding up to ``RESIDENTS``."""
    districts = reference.param("districts").select(
        pl.col(DISTRICT).cast(pl.Utf8), pl.col("population_m").cast(pl.Float64)
    )
    dongs = reference.dongs().select(DISTRICT, "dong_code")
    dongs = dongs.with_columns(pl.Series("w", rng.gamma(4.0, size=dongs.height)))
    dongs = dongs.with_columns((pl.col("w") / pl.col("w").sum().over(DISTRICT)).alias("w"))
    ages = reference.param("population_age_sex").select(
        pl.col("age_lo").cast(pl.Int64),
        pl.col("male").cast(pl.Float64),
        pl.col("female").cast(pl.Float64),
    )
    groups = []
    for label, low, high in AGE_GROUPS:
        inside = ages.filter((pl.col("age_lo") >= low) & (pl.col("age_lo") < high))
        groups += [(label, "M", inside["male"].sum()), (label, "F", inside["female"].sum())]
    structure = pl.DataFrame(groups, schema=["age_group", "sex", "n"], orient="row")
    structure = structure.with_columns(pl.col("n") / pl.col("n").sum())
    people = districts.with_columns(pl.col("population_m") / pl.col("population_m").sum())
    return (
        dongs.join(people, on=DISTRICT)
        .join(structure, how="cross")
        .select(
            DISTRICT,
            "dong_code",
            "age_group",
            "sex",
            (pl.col("w") * pl.col("population_m") * pl.col("n") * RESIDENTS)
            .round()
            .cast(pl.Int64)
            .alias("residents"),
        )
        .sort("dong_code", "age_group", "sex")
    )


def _daily(seed: int = 20) -> pl.DataFrame:
    """A year of the programme per cell and day (rows in the gold job's order)."""
    rng = np.random.default_rng(seed)
    cells = _cells(rng)
    n = cells.height
    residents = np.repeat(cells["residents"].to_numpy()[None, :], DAYS, axis=0)
    group = cells["age_group"].to_numpy()
    ever = np.array([EVER[g] for g in group])
    p, q = RATES["bass_p"], RATES["bass_q"]
    years = np.arange(DAYS + 1) / 365.25
    bass = (1 - np.exp(-(p + q) * years)) / (1 + q / p * np.exp(-(p + q) * years))
    signups = rng.poisson(np.diff(bass)[:, None] * ever[None, :] * residents)
    app_users = signups.cumsum(axis=0)
    consents = rng.binomial(signups, RATES["consent"])
    links = rng.binomial(consents, RATES["link"])
    older = np.isin(group, ("40-64", "65-74", "75+"))[None, :]
    ai = rng.poisson(residents * older * RATES["ai_users_per_resident_year"] / 365)
    seniors = np.isin(group, ("65-74", "75+"))[None, :]
    visitors = rng.poisson(residents * seniors * RATES["centre_visits_per_resident_day"])
    firsts = rng.binomial(visitors, RATES["centre_first_visit"])
    days = pl.date_range(FIRST, date(2025, 12, 31), "1d", eager=True)
    columns = {
        "residents": residents,
        "signups": signups,
        "app_users": app_users,
        "active_users": rng.poisson(app_users * RATES["logins_per_user_day"]),
        "centre_visitors": visitors,
        "consented": consents.cumsum(axis=0),
        "linked": links.cumsum(axis=0),
        "ai_users": ai.cumsum(axis=0),
        "centre_users": firsts.cumsum(axis=0),
    }
    frame = pl.DataFrame(
        {
            "day": days.gather(np.repeat(np.arange(DAYS), n)),
            **{c: pl.concat([cells[c]] * DAYS) for c in (DISTRICT, "dong_code", "age_group")},
            "sex": pl.concat([cells["sex"]] * DAYS),
            **{k: v.ravel().astype(np.int64) for k, v in columns.items()},
        }
    )
    return frame.select(UPTAKE.names).cast(UPTAKE.polars_schema())


def _build(lake: Lake) -> dict[str, Any]:
    """The daily and published tables (built once, then reused); how long each took."""
    marker = lake.root / "built.json"
    if marker.exists():
        return dict(pl.read_json(marker).row(0, named=True))
    with lake.active():
        began = time.perf_counter()
        daily = _daily()
        drawn = time.perf_counter()
        delta.replace(UPTAKE, daily, "day >= '2025-01-01' AND day <= '2025-12-31'")
        written = time.perf_counter()
        used = time.process_time()
        rows, unresolved = published(lake_read.scan(UPTAKE).collect())
        publish_cpu = time.process_time() - used
        audited = time.perf_counter()
        delta.replace(PUBLISHED, rows, "measure IS NOT NULL")
        done = time.perf_counter()
    built = {
        "daily_rows": daily.height,
        "residents": int(daily.filter(pl.col("day") == FIRST)["residents"].sum()),
        "published_rows": rows.height,
        "published_suppressed": int(rows["suppressed"].sum()),
        "unresolved": unresolved,
        "draw_s": round(drawn - began, 1),
        "write_daily_s": round(written - drawn, 1),
        "publish_with_audit_s": round(audited - written, 1),
        "publish_with_audit_cpu_s": round(publish_cpu, 1),
        "write_published_s": round(done - audited, 1),
    }
    pl.DataFrame([built]).write_json(marker)
    return built


def _pages(layer: Access, months: list[str]) -> dict[str, Callable[[], object]]:
    """Each page's access-layer calls for its default view, in the page's order
    (``apps/public_health/app_pages``; the freshness line every page shows is one of them)."""
    first, last = months[0], months[-1]
    by = [DISTRICT]

    def overview() -> object:
        layer.uptake_months(), layer.freshness()
        return layer.kpis(last), layer.service_table()  # the newest month is the default

    def trends() -> object:
        layer.freshness()
        return layer.kpi_series(), layer.service_table()

    def uptake() -> object:  # the first measure, by district, the whole period
        layer.uptake_months(), layer.freshness()
        return layer.uptake(next(iter(UPTAKE_MEASURES)), by, first, last)

    def compare() -> object:  # app users, by district, the whole period, the city
        layer.uptake_months(), layer.freshness()
        m = "app_users"
        found = [
            layer.uptake(x, d, first, last)
            for d in (by, [*by, "age_group"])
            for x in (m, "residents")
        ]
        found += [layer.uptake_dongs(x, first, last) for x in (m, "residents")]
        found += [layer.uptake(x, by, first, last) for x in FUNNEL]
        found += [layer.uptake(x, [*by, "age_group", "sex"], first, last) for x in (m, "residents")]
        return found

    def health() -> object:
        layer.freshness()
        return layer.data_health()

    def viewed(name: str, calls: Callable[[], object]) -> Callable[[], object]:
        """A page's calls as the page makes them: one audited view (``Gate.view``)."""

        def view() -> object:
            with layer.view(name):
                return calls()

        return view

    pages = {
        "overview": overview,
        "trends": trends,
        "uptake": uptake,
        "compare": compare,
        "health": health,
    }
    return {name: viewed(name, calls) for name, calls in pages.items()}


def _naive(uri: str, measure: str, dims: list[str]) -> pl.DataFrame:
    """One published view's figures straight from the raw daily table: a flow summed over the
    period, a stock on the period's last day, by ``dims`` and in all (no suppression)."""
    daily = pl.scan_delta(uri)
    if UPTAKE_MEASURES[measure] == "last":
        daily = daily.filter(pl.col("day") == pl.col("day").max())
    total = daily.select(pl.col(measure).sum()).with_columns(
        pl.lit(None, pl.Utf8).alias(d) for d in dims
    )
    if not dims:
        return total.collect()
    cells = daily.group_by(dims).agg(pl.col(measure).sum())
    return pl.concat([cells, total.select(*dims, measure)]).collect()


def _naive_kpis(uri: str) -> pl.DataFrame:
    """The KPI cards' uptake figures of every month from the raw daily table: flows summed
    over each month, stocks on its last day."""
    daily = pl.scan_delta(uri).with_columns(pl.col("day").dt.strftime("%Y-%m").alias("month"))
    flows = daily.group_by("month").agg(pl.col("active_users", "centre_visitors").sum())
    ends = daily.filter(pl.col("day") == pl.col("day").max().over("month"))
    stocks = ends.group_by("month").agg(pl.col("residents", "app_users").sum())
    return flows.join(stocks, on="month").collect()


def _naive_pages(uri: str) -> dict[str, Callable[[], object]]:
    """The same figures each page shows, from the raw daily table (``health`` shows none)."""
    by = [DISTRICT]
    compare = [
        *((m, d) for d in (by, [*by, "age_group"]) for m in ("app_users", "residents")),
        *((m, [DISTRICT, "dong_code"]) for m in ("app_users", "residents")),
        *((m, by) for m in FUNNEL),
        *((m, [*by, "age_group", "sex"]) for m in ("app_users", "residents")),
    ]
    return {
        "overview": lambda: _naive_kpis(uri),
        "trends": lambda: _naive_kpis(uri),
        "uptake": lambda: _naive(uri, next(iter(UPTAKE_MEASURES)), by),
        "compare": lambda: [_naive(uri, m, d) for m, d in compare],
    }


def _timed(call: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds (this process, all threads) of each run, after a warm-up."""
    call()
    wall, cpu = [], []
    for _ in range(runs):
        began, used = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - began)
        cpu.append(time.process_time() - used)
    return wall, cpu


def _p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20, method="inclusive")[-1]


def _ms(times: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(times) * 1000, 1),
        "p95_ms": round(_p95(times) * 1000, 1),
    }


def test_each_officials_page_queries_at_city_size(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(tempfile.gettempdir()) / f"gjh-bench-officials-{RESIDENTS}" / "lakehouse"
    lake = Lake(root, root.parent / "sources")
    built = _build(lake)
    uri = str(root / "gold" / "programme_uptake_daily")
    load = [round(x, 1) for x in os.getloadavg()]
    pages: dict[str, Any] = {}
    with lake.active():
        con = lake_read.connect()  # kept for the process, as the app keeps it; no result cache
        readers = Readers(connect=lambda: con)
        layer = Access(Principal("bench.official", "official", origin="bench"), readers=readers)
        months = layer.uptake_months()
        assert len(months) == 12, months
        naive = _naive_pages(uri)
        audit.compact()  # the access log as its own compaction leaves it
        log: dict[str, float] = {
            "audit_log_files_at_start": len(delta.open_table(AUDIT).file_uris())
        }
        entry = [layer._entry("read:aggregate", "monitoring")]
        log |= {
            f"audit_append_{k}": v
            for k, v in _ms(_timed(lambda: audit.append(entry), 10)[0]).items()
        }
        for name, call in _pages(layer, months).items():
            before = lake_read.scan(AUDIT).select(pl.len()).collect().item()
            version = delta.open_table(AUDIT).version()
            wall, cpu = _timed(call, RUNS)
            after = lake_read.scan(AUDIT).select(pl.len()).collect().item()
            pages[name] = {
                "audit_rows_per_view": (after - before) // (RUNS + 1),
                "audit_commits_per_view": (delta.open_table(AUDIT).version() - version)
                // (RUNS + 1),
                **_ms(wall),
                **{f"cpu_{k}": v for k, v in _ms(cpu).items()},
            }
            with monkeypatch.context() as quiet:  # the reads alone: no access-log commit
                quiet.setattr(audit, "append", lambda rows: None)
                wall, cpu = _timed(call, RUNS)
            pages[name] |= {f"reads_{k}": v for k, v in _ms(wall).items()}
            pages[name] |= {f"reads_cpu_{k}": v for k, v in _ms(cpu).items()}
            if name in naive:
                wall, cpu = _timed(naive[name], RUNS)
                pages[name] |= {f"naive_{k}": v for k, v in _ms(wall).items()}
                pages[name] |= {f"naive_cpu_{k}": v for k, v in _ms(cpu).items()}
                # On a shared machine the ratio to the naive scan of the same run says more
                # than either time alone.
                pages[name]["p95_over_naive_p95"] = round(
                    pages[name]["p95_ms"] / pages[name]["naive_p95_ms"], 2
                )
            pages[name]["met"] = pages[name]["p95_ms"] < TARGET_S * 1000
    with lake.active():
        log["audit_log_files_at_end"] = len(delta.open_table(AUDIT).file_uris())
    result = {
        **built,
        "runs": RUNS,
        "load_average_1_5_15min": load,
        "load_average_after": [round(x, 1) for x in os.getloadavg()],
        **log,
        "target_p95_ms": TARGET_S * 1000,
        "pages": pages,
    }
    record("officials", result)
    assert all(p["met"] for p in pages.values()), result
