"""Write the centre's deliveries: the members registry and each device's daily exports.

Layout under ``--out``:

* ``centre/members/<YYYYMM>-<n>/members_<YYYYMM>.csv`` — monthly registry of new members (CP949,
  Korean headers): 회원번호, 주민등록번호, 성명, 성별, 생년월일 (YYYYMMDD), 가입일. The first month
  also carries everyone registered before the window. The only centre file with the RRN. It is
  sent on the first of the next month, so a new member's device rows arrive before their
  registry row, as in the real feed.
* ``centre/<device>/<YYYYMMDD>-<n>/<device>_<YYYYMMDD>.<csv|jsonl>`` — one folder per device and
  open day, exported at night (see ``synth.centre.kinds`` for the devices). ``-2`` is a re-send.

The work runs in two passes over the open days: the first only counts each folder's rows (cheap:
visits are drawn, values are not) so the fault plan can guarantee every fault kind; the second
writes. Only one day's sessions are ever in memory.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl

from synth.calendar import centre_open
from synth.centre.devices import Day, Device, csv_frame, emg_records
from synth.centre.kinds import BUILDERS, DEVICE_SPECS, ROWS_PER_SESSION
from synth.centre.members import DEVICES, epoch_day, select_members
from synth.centre.params import load
from synth.centre.physiology import make_cohort
from synth.centre.rowfaults import (
    FolderPlan,
    bad_value,
    break_csv_line,
    break_json_line,
    choose_rows,
    impossible_day,
    plan_folders,
)
from synth.centre.visits import Roster, day_visits
from synth.config import CityConfig
from synth.delivery import Delivery
from synth.faults import DUPLICATE_DELIVERY, IMPOSSIBLE_DATE, MALFORMED_ROW, OUT_OF_RANGE, FaultLog
from synth.rng import stream

SOURCE: Final = "centre"
DEVICE_FAULTS: Final = frozenset({OUT_OF_RANGE, MALFORMED_ROW, IMPOSSIBLE_DATE, DUPLICATE_DELIVERY})
REGISTRY_COLUMNS: Final = ["회원번호", "주민등록번호", "성명", "성별", "생년월일", "가입일"]
REGISTRY_ENCODING: Final = "cp949"
EXPORT_HOUR: Final = 21  # nightly export after closing
RESEND_HOUR: Final = 9  # a re-send goes out the next morning

Fault = tuple[str, int, str, str]  # kind, 0-based row position, key, detail


@dataclass(frozen=True)
class Content:
    """One data file's rendered lines (no header) and the row faults in them (file line numbers)."""

    lines: list[str]
    faults: list[Fault]


def _out_of_range(
    ctx: Day, device: Device, columns: dict[str, Any], rows: list[int], rng: np.random.Generator
) -> list[Fault]:
    """Put one impossible value into each of ``rows`` (in place)."""
    found: list[Fault] = []
    candidates = [c for c in device.decimals if c not in device.nullable]
    for r in rows:
        column = candidates[int(rng.integers(len(candidates)))]
        low, high = ctx.params.ranges[(device.name, column)]
        value = bad_value(low, high, device.decimals[column], rng)
        target = columns[column]
        if target.ndim == 2:
            k = int(rng.integers(target.shape[1]))
            target[r, k] = value
            what = column.replace("channels.", f"channels[{k}].")
        else:
            target[r] = value
            what = column
        found.append(
            (OUT_OF_RANGE, r, columns[device.key][r], f"{what}={value} not in [{low}, {high}]")
        )
    return found


def _render(device: Device, ctx: Day, columns: dict[str, Any]) -> list[str]:
    if device.fmt == "jsonl":
        records = emg_records(columns, tuple(m.name for m in ctx.params.muscles))
        return [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in records]
    buf = io.StringIO()
    csv_frame(device, columns).write_csv(buf, include_header=False, separator=device.delimiter)
    return buf.getvalue().splitlines()


def content(
    ctx: Day, device: Device, columns: dict[str, Any], plan: FolderPlan, rng: np.random.Generator
) -> Content:
    """Apply ``plan``'s row faults to a device's columns and render the file's lines.

    Out-of-range values replace one measured value of a real row; impossible dates come as extra
    rows copied from a real row under a new id; malformed rows lose or gain a field (CSV) or are
    cut short (JSON Lines). Every fault gets its exact physical line.
    """
    n = len(columns[device.key])
    rows = choose_rows(plan, n, rng)
    found = _out_of_range(ctx, device, columns, rows.out_of_range.tolist(), rng)
    source = rows.order.copy()
    extra = source >= n
    source[extra] = rows.extra_source[source[extra] - n]
    final: dict[str, Any] = {
        name: values[source] if isinstance(values, np.ndarray) else [values[i] for i in source]
        for name, values in columns.items()
    }
    y, m, d = impossible_day(ctx.day)
    extra_ids = device.ids(ctx.day, n + 1, len(rows.extra_source))
    faults: list[Fault] = []
    for pos, src in enumerate(rows.order.tolist()):
        if src >= n:
            final[device.key][pos] = extra_ids[src - n]
            final[device.time][pos] = device.with_date(final[device.time][pos], y, m, d)
            stamp = f"{device.time}={final[device.time][pos]}"
            faults.append((IMPOSSIBLE_DATE, pos, extra_ids[src - n], stamp))
    faults += [(kind, rows.position(r), key, what) for kind, r, key, what in found]
    lines = _render(device, ctx, final)
    for r in rows.malformed.tolist():
        pos = rows.position(r)
        if device.fmt == "csv":
            lines[pos], what = break_csv_line(lines[pos], device.delimiter, rng)
        else:
            lines[pos], what = break_json_line(lines[pos], rng)
        faults.append((MALFORMED_ROW, pos, final[device.key][pos], what))
    header = 1 if device.fmt == "csv" else 0
    return Content(lines, [(k, pos + 1 + header, key, what) for k, pos, key, what in faults])


def _deliver(
    out: Path,
    source: str,
    delivery_id: str,
    delivered_at: datetime,
    device: Device,
    name: str,
    lines: list[str],
    meta: dict[str, Any],
) -> str:
    """Write one delivery folder holding one data file; return the file's relative path."""
    period = str(meta["period"])
    extra = {k: v for k, v in meta.items() if k != "period"}
    with Delivery(
        out, source, delivery_id, delivered_at, device.encoding, extra, period=period
    ) as dl:
        if device.fmt == "csv":
            dl.csv(name, list(device.columns), delimiter=device.delimiter).write_lines(lines)
        else:
            dl.jsonl(name).write_lines(lines)
        return dl.relpath(name)


def _send(
    out: Path,
    device: Device,
    day: date,
    stamp: str,
    name: str,
    body: Content,
    plan: FolderPlan,
    seed: int,
    faults: FaultLog,
    meta: dict[str, Any],
) -> int:
    """Deliver one folder (and its re-send if planned), record its faults; return folders sent."""
    rng = stream(seed, SOURCE, device.name, "delivered", stamp)
    at = datetime.combine(day, time(EXPORT_HOUR)) + timedelta(seconds=int(rng.integers(3000)))
    source = f"{SOURCE}/{device.name}"
    path = _deliver(out, source, f"{stamp}-1", at, device, name, body.lines, meta)
    for kind, line, key, detail in body.faults:
        faults.add(kind, SOURCE, path, line, key, detail)
    if not plan.duplicate:
        return 1
    again = datetime.combine(at.date() + timedelta(days=1), time(RESEND_HOUR))
    again += timedelta(seconds=int(rng.integers(7200)))
    copy = _deliver(out, source, f"{stamp}-2", again, device, name, body.lines, meta)
    faults.add(DUPLICATE_DELIVERY, SOURCE, copy, None, None, f"re-send of {path}")
    return 2


# The registry leaves the membership system the way a device export leaves its device: one CSV per
# folder. Only the fields below matter for it (no timestamps, no measured columns).
REGISTRY: Final = Device(
    name="members",
    label="빛고을노인건강타운 회원관리",
    fmt="csv",
    encoding=REGISTRY_ENCODING,
    delimiter=",",
    columns=tuple(REGISTRY_COLUMNS),
    key="회원번호",
    time="가입일",
    stamp="",
    prefix="BG",
    decimals={},
)


def _registry_lines(members: pl.DataFrame) -> list[str]:
    frame = members.select(
        pl.col("member_no").alias("회원번호"),
        pl.col("rrn").alias("주민등록번호"),
        pl.col("name").alias("성명"),
        pl.when(pl.col("sex") == "F").then(pl.lit("여")).otherwise(pl.lit("남")).alias("성별"),
        pl.col("birth_date").dt.strftime("%Y%m%d").alias("생년월일"),
        pl.col("registered_on").dt.strftime("%Y-%m-%d").alias("가입일"),
    )
    buf = io.StringIO()
    frame.write_csv(buf, include_header=False)
    return buf.getvalue().splitlines()


def _write_registry(members: pl.DataFrame, cfg: CityConfig, out: Path, faults: FaultLog) -> int:
    """Monthly registry deliveries of new members; re-sends possible, no row faults (rows have
    dependants: every device row points at a member)."""
    months = cfg.months()
    bounds = [date(y + m // 12, m % 12 + 1, 1) for y, m in months]  # first day of next month
    chunks = []
    for i, upto in enumerate(bounds):
        registered = pl.col("registered_on")
        keep = registered < upto if i == 0 else (registered >= bounds[i - 1]) & (registered < upto)
        chunks.append(members.filter(keep))
    keys = [f"{y}{m:02d}" for y, m in months]
    plans = plan_folders(
        keys,
        [c.height for c in chunks],
        {DUPLICATE_DELIVERY},
        cfg.seed,
        "centre/members",
        faults.enabled,
        force=False,
    )
    sent = 0
    for key, upto, chunk, plan in zip(keys, bounds, chunks, plans, strict=True):
        body = Content(_registry_lines(chunk), [])
        meta = {
            "system": REGISTRY.label,
            "registered_before": upto.isoformat(),
            "period": f"{key[:4]}-{key[4:6]}",
        }
        name = f"members_{key}.csv"
        sent += _send(out, REGISTRY, upto, key, name, body, plan, cfg.seed, faults, meta)
    return sent


def write_centre(
    people: pl.DataFrame,
    conditions: pl.DataFrame,
    cfg: CityConfig,
    out: Path,
    faults: FaultLog,
) -> dict[str, int]:
    """Write the seniors' demonstration centre's deliveries for the whole window.

    Args:
        people: The population, one row per person ever resident in the window.
        conditions: Chronic conditions with onset dates; they move the members' measurements.
        cfg: The city. Volume scales with ``cfg.scale``; output does not depend on
            ``cfg.workers`` (the centre is written in one process: it is small).
        out: The output root.
        faults: Where injected faults are recorded; ``faults.enabled`` switches injection on.

    Returns:
        Summary counts: members, open days, visits, rows per device and delivery folders.
    """
    params = load()
    members = select_members(people, cfg)
    roster = Roster.from_members(members)
    start = epoch_day(cfg.start)
    cohort = make_cohort(members, conditions, params, start, stream(cfg.seed, SOURCE, "cohort"))
    days = [d for d in (cfg.start + timedelta(i) for i in range(cfg.days)) if centre_open(d)]
    stamps = [f"{d:%Y%m%d}" for d in days]

    visits = 0
    rows: dict[str, list[int]] = {name: [] for name in DEVICES}
    for day in days:
        v = day_visits(roster, day, cfg.seed)
        visits += len(v.visitors)
        for name in DEVICES:
            rows[name].append(len(v.sessions[name].member) * ROWS_PER_SESSION[name])
    plans = {
        name: plan_folders(
            stamps, rows[name], DEVICE_FAULTS, cfg.seed, f"{SOURCE}/{name}", faults.enabled
        )
        for name in DEVICES
    }

    summary = {
        "centre_members": members.height,
        "centre_open_days": len(days),
        "centre_visits": visits,
        "centre_deliveries": _write_registry(members, cfg, out, faults),
    }
    for i, (day, stamp) in enumerate(zip(days, stamps, strict=True)):
        v = day_visits(roster, day, cfg.seed)
        ctx = Day(params, cohort, roster, day, epoch_day(day))
        for name in DEVICES:
            device = DEVICE_SPECS[name]
            rng = stream(cfg.seed, SOURCE, name, stamp)
            columns = BUILDERS[name](ctx, v.sessions[name], rng)
            body = content(ctx, device, columns, plans[name][i], rng)
            meta = {"device": device.label, "period": day.isoformat()}
            summary["centre_deliveries"] += _send(
                out,
                device,
                day,
                stamp,
                device.file_name(day),
                body,
                plans[name][i],
                cfg.seed,
                faults,
                meta,
            )
            summary[f"centre_{name}_rows"] = summary.get(f"centre_{name}_rows", 0) + len(body.lines)
    return summary
