"""``gjh synth``: generate a synthetic Gwangju and deliver it the way the real feeds do.

The output folder holds only raw deliveries (what the city's pipelines ingest), plus
``faults.json``, ``MANIFEST.json`` and ``ground_truth/``, which no pipeline reads: it is there so
that models can be trained and evaluated honestly and tests can check the pipelines.

The population is generated whole (it is small); claims are generated in slices of the
population, in worker processes when asked, and appended to the monthly files in slice order, so
memory stays bounded and the bytes never depend on the number of workers.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl

from lakehouse.pool import WorkerPool
from synth import reference as ref
from synth.adverse import write_truth as write_adverse_truth
from synth.care import CareModel
from synth.claims import ClaimsBuilder, ClaimsChunk
from synth.claims_writer import ClaimsPlan, ClaimsWriter, RenderedPart, render_slice
from synth.config import CityConfig
from synth.faults import FaultLog
from synth.history import with_history
from synth.imaging.orders import ImagingOrder
from synth.institutions import Enrolment, enrol, exam_capable, generate_institutions
from synth.morbidity import generate_conditions
from synth.population import age_years, generate_people
from synth.registry import write_citizens, write_institutions
from synth.rng import stream

GENERATOR: Final = "gjh synth 1"
MANIFEST: Final = "MANIFEST.json"
TRUTH: Final = "ground_truth"
# Slices of the population; at most 98 so that prescription issue numbers never collide
# (see ClaimsBuilder._issue_numbers): the top-up visits and the planted adverse effects'
# visits are built as two more chunks after them.
SLICE_PEOPLE: Final = 20_000
MAX_SLICES: Final = 98
# A worker that holds one slice (or sits in its start-up, which unpickles the population) this
# long is deemed hung; a slice of 20,000 people takes well under a minute.
SLICE_TIMEOUT_S: Final = 1800.0
# Even the smallest city gets this many studies for every AI service, normal and abnormal.
MIN_STUDIES_PER_SERVICE: Final = 4
# The exam used to top up each service.
TOPUP_EXAM: Final = {
    "chest": "CXR_PA",
    "spine_fracture": "LSPINE_LAT",
    "dental": "DENTAL_PANO",
    "leg_length": "LEG_LENGTH",
    "bone_age": "HAND_BONEAGE",
    "ecg": "ECG_12LEAD",
    "brain": "BRAIN_DWI",
    "fundus": "FUNDUS",
    "gastroscopy": "GASTROSCOPY",
    "colonoscopy": "COLONOSCOPY",
    "mammography": "MAMMO_SCREEN",
    "prostate": "PROSTATE_MR",
}
QA_EXAM: Final = "QA_PHANTOM"


@dataclass
class Summary:
    """What a run produced, for the command line and the manifest."""

    counts: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def _prepare_output(out: Path) -> None:
    """Start from an empty folder; only a previous synth output may be replaced."""
    if out.exists() and any(out.iterdir()):
        if not (out / MANIFEST).exists():
            raise FileExistsError(
                f"{out} is not empty and holds no previous `gjh synth` output; "
                "choose an empty folder or remove it first"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


# -- slices, in worker processes -----------------------------------------------------------------

_STATE: dict[str, Any] = {}


def _init_worker(
    cfg: CityConfig,
    people: pl.DataFrame,
    conditions: pl.DataFrame,
    institutions: pl.DataFrame,
    enrolments: list[Enrolment],
    plan: ClaimsPlan,
) -> None:
    _STATE.update(
        cfg=cfg,
        plan=plan,
        people=people,
        conditions=conditions,
        care=CareModel(cfg, institutions),
        claims=ClaimsBuilder(cfg, institutions, enrolments),
    )


def _slice_bounds(total: int) -> list[tuple[int, int]]:
    size = max(SLICE_PEOPLE, -(-total // MAX_SLICES))
    return [(lo, min(lo + size, total)) for lo in range(0, total, size)]


@dataclass
class _SliceResult:
    """What a worker sends back: encoded file parts, imaging orders, corrections' truth."""

    parts: list[RenderedPart]
    orders: list[ImagingOrder]
    corrections: pl.DataFrame
    planted: pl.DataFrame  # the planted adverse effects' visits, built after every slice


def _run_slice(task: tuple[int, int, int]) -> _SliceResult:
    index, lo, hi = task
    cfg: CityConfig = _STATE["cfg"]
    people = _STATE["people"].slice(lo, hi - lo)
    conditions = _STATE["conditions"].filter(pl.col("pid").is_between(lo, hi - 1))
    visits, planted = _STATE["care"].visits_and_planted(
        stream(cfg.seed, "visits", index), people, conditions
    )
    chunk: ClaimsChunk = _STATE["claims"].build(
        stream(cfg.seed, "claims", index), index, people, visits
    )
    parts = render_slice(_STATE["plan"], index, chunk)
    return _SliceResult(parts, chunk.orders, chunk.corrections, planted)


def _ordered(
    tasks: list[tuple[int, int, int]], workers: int, init_args: tuple[Any, ...]
) -> Iterator[_SliceResult]:
    """Results in task order, with at most ``2 * workers`` slices in flight (bounded memory).
    One slice runs in this process: a pool would only add start-up time."""
    with WorkerPool(
        workers if len(tasks) > 1 else 1,
        initializer=_init_worker,
        initargs=init_args,
        timeout=SLICE_TIMEOUT_S,
        name="claims-slice",
    ) as pool:
        yield from pool.map(_run_slice, tasks)


# -- top-ups and QA ------------------------------------------------------------------------------


def _trigger_reason(exam: str) -> str:
    triggers = ref.param("imaging_triggers").filter(pl.col("exam") == exam)
    return str(triggers["reason"][0])


def _reason_details(reason: str) -> tuple[str, str]:
    """The usual main diagnosis and first adult department of a visit reason."""
    acute = ref.param("acute_conditions").filter(pl.col("category") == reason)
    if acute.height:
        codes, depts = acute["kcd"][0], acute["departments"][0]
    else:
        chronic = ref.param("chronic_care").filter(pl.col("condition") == reason)
        codes, depts = chronic["kcd"][0], chronic["departments"][0]
    dept = next((d for d in depts.split("|") if d not in ("11", "PHC")), "01")
    return codes.split("|")[0], dept


def _topup_visits(
    cfg: CityConfig,
    people: pl.DataFrame,
    institutions: pl.DataFrame,
    enrolments: list[Enrolment],
    orders: list[ImagingOrder],
) -> tuple[pl.DataFrame, list[str], dict[str, int]]:
    """Extra visits at the enrolled university hospital for services a small city lacks."""
    exams = ref.param("imaging_exams")
    service_of = dict(exams.select("exam", "service").iter_rows())
    have = Counter(service_of[o.exam] for o in orders if service_of[o.exam])
    hospital = next(
        e for e in enrolments if institutions.filter(pl.col("ykiho") == e.ykiho)["cl_cd"][0] == "01"
    )
    inst_row = int(
        institutions.with_row_index("i").filter(pl.col("ykiho") == hospital.ykiho)["i"][0]
    )
    rng = stream(cfg.seed, "topup")
    start = np.datetime64(cfg.start, "D")
    first_day = max(0, int((np.datetime64(hospital.selected, "D") - start).astype(np.int64)))
    birth = people["birth_date"].to_numpy().astype("datetime64[D]")
    pf = (people["present_from"].to_numpy().astype("datetime64[D]") - start).astype(np.int64)
    pt = (people["present_to"].to_numpy().astype("datetime64[D]") - start).astype(np.int64)
    sex = people["sex"].to_numpy()
    shift = (cfg.start - cfg.origin).days  # visit days count from the origin (synth.history)
    rows: list[dict[str, Any]] = []
    forced: list[str] = []
    added: dict[str, int] = {}
    for service, exam in TOPUP_EXAM.items():
        need = MIN_STUDIES_PER_SERVICE - have.get(service, 0)
        if need <= 0:
            continue
        spec = exams.filter(pl.col("exam") == exam).row(0, named=True)
        day = first_day + rng.integers(0, max(cfg.days - first_day, 1), len(sex))
        age = age_years(birth, start + day.astype("timedelta64[D]"))
        wanted_sex = spec["sex"] or ""
        ok = (
            (pf <= day)
            & (day < pt)
            & (age >= int(spec["age_min"]))
            & (age <= int(spec["age_max"]))
            & ((sex == wanted_sex) if wanted_sex else True)
        )
        candidates = np.flatnonzero(ok)
        if not len(candidates):
            continue
        chosen = rng.choice(candidates, size=min(need, len(candidates)), replace=False)
        reason = _trigger_reason(exam)
        kcd, dept = _reason_details(reason)
        for i in np.sort(chosen):
            rows.append(
                {
                    "pid": int(people["pid"][int(i)]),
                    "day": int(day[i]) + shift,
                    "inst": inst_row,
                    "kind": "acute",
                    "reason": reason,
                    "kcd": kcd,
                    "subs": "",
                    "los": 1,
                    "first": True,
                    "regimens": "",
                    "rx_days": 0,
                    "dept": dept,
                }
            )
            forced.append(exam)
        added[service] = len(chosen)
    if not rows:
        return pl.DataFrame(), forced, added
    typed = pl.DataFrame(rows).with_columns(
        pl.col("pid", "day", "inst", "los", "rx_days").cast(pl.Int32),
        pl.Series("exam", forced),
    )
    ordered = typed.sort("pid", "day")
    return ordered.drop("exam"), ordered["exam"].to_list(), added


def _balance(orders: list[ImagingOrder]) -> list[ImagingOrder]:
    """Make sure every service has at least one normal and one abnormal study."""
    exams = ref.param("imaging_exams")
    service_of = dict(exams.select("exam", "service").iter_rows())
    out = list(orders)
    for service in TOPUP_EXAM:
        idx = [i for i, o in enumerate(out) if service_of[o.exam] == service]
        if len(idx) < 2:
            continue
        flags = {out[i].abnormal for i in idx}
        if flags == {True}:
            out[idx[0]] = replace(out[idx[0]], abnormal=False)
        elif flags == {False}:
            out[idx[-1]] = replace(out[idx[-1]], abnormal=True)
    return out


def _qa_orders(
    cfg: CityConfig, institutions: pl.DataFrame, enrolments: list[Enrolment]
) -> list[ImagingOrder]:
    """Enrolled institutions image a QA phantom once a quarter; those studies reach the drop
    folder too and must be held back by routing."""
    capable = set(exam_capable(institutions).filter(pl.col("exam") == QA_EXAM)["ykiho"].to_list())
    names = dict(institutions.select("ykiho", "name").iter_rows())
    rng = stream(cfg.seed, "qa")
    out = []
    for e in sorted(enrolments, key=lambda e: e.ykiho):
        if e.ykiho not in capable:
            continue
        day = max(cfg.start, e.selected)
        while day < cfg.end:
            when = datetime.combine(day, time(8, int(rng.integers(0, 50))))
            out.append(
                ImagingOrder(
                    accession=f"QA{e.ykiho}{day:%y%m%d}",  # DICOM SH: 16 characters
                    exam=QA_EXAM,
                    patient_id=f"QA-{e.ykiho}",
                    patient_name="QA PHANTOM",
                    sex="O",
                    birth_date=date(1900, 1, 1),
                    institution_code=e.ykiho,
                    institution_name=names[e.ykiho],
                    study_datetime=when,
                    abnormal=False,
                    visit_key="",
                )
            )
            day += timedelta(days=91)
    return out


# -- the whole city -----------------------------------------------------------------------------


def _claims(
    cfg: CityConfig,
    out: Path,
    faults: FaultLog,
    init: tuple[CityConfig, pl.DataFrame, pl.DataFrame, pl.DataFrame, list[Enrolment], ClaimsPlan],
    say: Callable[[str], None],
) -> tuple[list[ImagingOrder], list[pl.DataFrame], dict[str, int], dict[str, int]]:
    """Claims slice by slice, then the top-up visits; returns the imaging orders, the
    corrections' ground truth, the rows per table and the top-up studies per service."""
    _, people, _, institutions, enrolments, plan = init
    writer = ClaimsWriter(out, plan, faults)
    tasks = [(i, lo, hi) for i, (lo, hi) in enumerate(_slice_bounds(people.height))]
    orders: list[ImagingOrder] = []
    corrections: list[pl.DataFrame] = []
    planted: list[pl.DataFrame] = []
    for i, result in enumerate(_ordered(tasks, cfg.workers, init)):
        writer.append(result.parts)
        orders += result.orders
        corrections.append(result.corrections)
        planted.append(result.planted)
        say(f"claims: slice {i + 1}/{len(tasks)}")
    visits, forced, added = _topup_visits(cfg, people, institutions, enrolments, orders)
    if visits.height:
        _init_worker(*init)
        builder: ClaimsBuilder = _STATE["claims"]
        seed = stream(cfg.seed, "claims", "topup")
        extra = builder.build(seed, len(tasks), people, visits, force_exam=pl.Series(forced))
        writer.append(render_slice(plan, len(tasks), extra))
        orders += extra.orders
        corrections.append(extra.corrections)
    # The planted adverse effects' visits (synth.adverse), in a chunk and a stream of their own.
    adverse = pl.concat(planted).sort("pid", "day", "kind", "reason")
    if adverse.height:
        _init_worker(*init)
        seed = stream(cfg.seed, "claims", "adverse")
        extra = _STATE["claims"].build(seed, len(tasks) + 1, people, adverse)
        writer.append(render_slice(plan, len(tasks) + 1, extra))
        orders += extra.orders
        corrections.append(extra.corrections)
    return orders, corrections, writer.close(), added


def generate(cfg: CityConfig, out: Path, progress: Callable[[str], None] | None = None) -> Summary:
    """Generate the city into ``out`` (which must be empty or a previous synth output)."""
    say = progress or (lambda _msg: None)
    summary = Summary()
    clock = _Clock(summary)
    _prepare_output(out)
    faults = FaultLog(cfg.inject_faults)

    with clock("population"):
        people = generate_people(cfg)
        conditions = generate_conditions(people, cfg)
        institutions = generate_institutions(cfg)
        enrolments = enrol(institutions, cfg)
    say(f"population: {people.height:,} people, {institutions.height:,} institutions")

    with clock("registries"):
        summary.counts["registry"] = write_citizens(people, cfg, out) | write_institutions(
            institutions, enrolments, cfg, out
        )

    with clock("claims"):
        plan = ClaimsPlan.for_city(cfg, faults.enabled)
        # Linked citizens' care reaches back to the history's first day (synth.history).
        init = (cfg, with_history(people, cfg), conditions, institutions, enrolments, plan)
        orders, corrections, summary.counts["claims_rows"], summary.counts["imaging_topup"] = (
            _claims(cfg, out, faults, init, say)
        )
    orders = _balance(orders) + _qa_orders(cfg, institutions, enrolments)
    statements = summary.counts["claims_rows"]["T200"]
    say(f"claims: {statements:,} statements, {len(orders):,} imaging orders")

    with clock("imaging"):
        from synth.imaging.writer import write_imaging

        imaging = write_imaging(
            sorted(orders, key=lambda o: o.accession), out, cfg.seed, faults, cfg.workers
        )
        summary.counts["imaging"] = _plain(imaging, out)
    say("imaging: written")

    with clock("centre"):
        from synth.centre import write_centre

        summary.counts["centre"] = write_centre(people, conditions, cfg, out, faults)
    with clock("programme"):
        from synth.programme import write_programme_events

        summary.counts["programme"] = write_programme_events(people, cfg, out, faults)
    say("centre and programme events: written")

    with clock("accounts"):
        from synth.accounts import write_demo_accounts

        summary.counts["accounts"] = write_demo_accounts(
            cfg, out, people, institutions, enrolments, orders, faults
        )
    say("demo accounts: written")

    with clock("partners"):
        from synth.partners import write_partners

        summary.counts["partners"] = write_partners(cfg, out, people, conditions)

    _write_truth(out, corrections)
    faults.write(out)
    summary.counts["faults"] = Counter(f.kind for f in faults.faults)
    _write_manifest(out, cfg, summary)
    return summary


def _plain(value: Any, out: Path) -> Any:
    """A summary as plain JSON-able data, with paths relative to the output folder (the manifest
    must not depend on where the city was written)."""
    if hasattr(value, "__dataclass_fields__"):
        value = asdict(value)
    if isinstance(value, dict):
        return {k: _plain(v, out) for k, v in value.items()}
    if isinstance(value, Path):
        return value.relative_to(out).as_posix()
    return value


def _write_truth(out: Path, corrections: list[pl.DataFrame]) -> None:
    truth = out / TRUTH
    truth.mkdir(exist_ok=True)
    frames = [c for c in corrections if c.height]
    table = (
        pl.concat(frames).sort("SPEC_ID_SNO")
        if frames
        else pl.DataFrame(
            schema={
                "SPEC_ID_SNO": pl.Utf8,
                "first_delivery": pl.Utf8,
                "corrected_delivery": pl.Utf8,
                "first_total": pl.Int64,
                "corrected_total": pl.Int64,
            }
        )
    )
    table.write_csv(truth / "claims_corrections.csv")
    write_adverse_truth(truth)
    (truth / "README.md").write_text(
        "# Ground truth\n\nWhat the generator knows and the deliveries do not say: the imaging\n"
        "studies' true findings, the claims corrections and the planted adverse drug effects\n"
        "(adverse_effects.csv). No pipeline reads this folder; models\n"
        "train and evaluate on it, and tests check the pipelines against it.\n",
        encoding="utf-8",
    )


def _write_manifest(out: Path, cfg: CityConfig, summary: Summary) -> None:
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != MANIFEST)
    by_source: Counter[str] = Counter()
    for p in files:
        by_source[p.relative_to(out).parts[0]] += 1
    doc = {
        "generator": GENERATOR,
        "arguments": {
            "citizens": cfg.citizens,
            "start": cfg.start.isoformat(),
            "days": cfg.days,
            "seed": cfg.seed,
            "inject_faults": cfg.inject_faults,
            "history_from": cfg.history_from.isoformat() if cfg.history_from else None,
        },
        "files": dict(sorted(by_source.items())),
        "counts": json.loads(json.dumps(summary.counts, default=str, sort_keys=True)),
    }
    (out / MANIFEST).write_text(
        json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
    )


class _Clock:
    """Times the stages of a run (reported by the command line, never written to the output)."""

    def __init__(self, summary: Summary) -> None:
        self.summary = summary

    def __call__(self, stage: str) -> _Stage:
        return _Stage(self.summary, stage)


class _Stage:
    def __init__(self, summary: Summary, stage: str) -> None:
        self.summary, self.stage = summary, stage

    def __enter__(self) -> None:
        import time as _time

        self.t0 = _time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        import time as _time

        self.summary.seconds[self.stage] = round(_time.perf_counter() - self.t0, 3)
