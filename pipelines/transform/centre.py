"""The seniors' centre from bronze to silver: the member register and the device measurements.

* ``members``: the monthly member registers fold into ``silver.centre_members``, one row per member
  number (the latest delivered registration wins). The register is the only centre file with a
  registration number; bronze already holds it as a citizen key, and names and birth dates never
  left the bronze boundary.
* ``measurements``: every device row (gait, balance, check-up, EMG session, body composition,
  mobility tests, foot pressure, posture) becomes one
  ``silver.centre_measurements`` row per measured value, in long form with its unit, so that the
  timeline and the uptake figures read one table whatever the device. An empty cell (fasting
  glucose not taken) was not measured and gives no row.

Each device row is checked once, and a row that fails is quarantined whole with the first reason,
in this order: an id, member or time missing (``missing_value``); a time that is no date
(``impossible_date``, such as 2025-04-31) or no timestamp at all (``malformed_row``); a day other
than the one the export covers (``outside_period``); an unknown balance condition
(``unknown_code``); a value that is not a number (``malformed_row``); a value outside the
plausible range of ``lakehouse/reference/codes/centre_ranges.csv``, the file the generator also
clips to (``out_of_range_value``); a member number not in the register (``unknown_member``).

The register is sent on the first of the next month, so a new member's first visits arrive
before their registration: run alone, those days quarantine them as ``unknown_member``, and a
rerun of the days once the register has arrived accepts them (the rerun replaces its window,
quarantine included).

Every function here is plain Polars over bronze frames; ``pipelines.defs.centre`` runs them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

import polars as pl

from lakehouse.catalog import table as catalog_table
from lakehouse.reference import codes
from pipelines.ingest.parse import (
    IMPOSSIBLE_DATE,
    MALFORMED_ROW,
    MISSING_VALUE,
    OUT_OF_RANGE,
    OUTSIDE_PERIOD,
    UNKNOWN_CODE,
    Quarantined,
    first_failure,
    rejected_rows,
)

UNKNOWN_MEMBER: Final = "unknown_member"
KST: Final = "Asia/Seoul"
MEMBER_SOURCE: Final = "centre/members"
MEMBER_PATTERN: Final = r"^BG\d{7}$"
# Balance trials: the export's condition codes and the context silver gives them.
CONDITIONS: Final = {"EO": "eyes_open", "EC": "eyes_closed"}
EMG_CHANNEL_FIELDS: Final = ("rms_uv", "mvc_pct", "mean_freq_hz")
LINEAGE: Final = ("_period", "_delivery_id", "_file", "_line", "_delivered_at")


@dataclass(frozen=True)
class Device:
    """How one device's bronze rows read.

    Attributes:
        name: ``gait``, ``balance``, ``checkup``, ``emg``, ``body``, ``mobility``, ``foot`` or
            ``posture`` (the ``centre_ranges.csv`` device).
        id: The bronze column of the device's record id.
        time: The bronze column of the measurement time (KST, in the device's own layout).
        time_format: That layout (``strptime``); only the EMG export writes an offset.
        measures: Bronze columns holding one measured value each (CSV devices); the silver
            ``measure`` is the column's name, its range the one of its delivered header.
    """

    name: str
    id: str
    time: str
    time_format: str
    measures: tuple[str, ...] = ()

    @property
    def table(self) -> str:
        return f"bronze.centre_{self.name}"

    @property
    def source(self) -> str:
        return f"centre/{self.name}"


DEVICES: Final = {
    d.name: d
    for d in (
        Device(
            "gait",
            "test_id",
            "measured_at",
            "%Y-%m-%d %H:%M:%S",
            (
                "speed_m_s",
                "cadence_steps_min",
                "stride_length_cm",
                "step_time_symmetry",
                "double_support_pct",
            ),
        ),
        # duration_s is the protocol's fixed trial length, not a measurement: it stays in bronze.
        Device(
            "balance",
            "record_no",
            "test_datetime",
            "%Y/%m/%d %H:%M:%S",
            ("path_length_cm", "sway_area_cm2", "mean_velocity_cm_s", "balance_score"),
        ),
        # Sex and age are the member's, not measurements: they stay in bronze.
        Device(
            "checkup",
            "record_no",
            "measured_at",
            "%Y-%m-%d %H:%M",
            (
                "systolic_mmhg",
                "diastolic_mmhg",
                "pulse_bpm",
                "grip_left_kg",
                "grip_right_kg",
                "height_cm",
                "weight_kg",
                "fasting_glucose_mg_dl",
            ),
        ),
        Device("emg", "session_id", "started_at", "%Y-%m-%dT%H:%M:%S%z"),
        # Height, sex and age are entered at the station, not measured: they stay in bronze.
        Device(
            "body",
            "record_no",
            "measured_at",
            "%Y.%m.%d %H:%M:%S",
            (
                "weight_kg",
                "skeletal_muscle_kg",
                "body_fat_kg",
                "body_fat_pct",
                "bmi_kg_m2",
                "smi_kg_m2",
            ),
        ),
        Device(
            "mobility",
            "test_id",
            "test_datetime",
            "%Y-%m-%dT%H:%M:%S",
            ("tug_s", "chair_stand_30s_n", "tandem_stance_s"),
        ),
        Device(
            "foot",
            "exam_id",
            "exam_datetime",
            "%Y-%m-%d %H:%M:%S",
            (
                "load_left_pct",
                "load_right_pct",
                "forefoot_left_pct",
                "forefoot_right_pct",
                "peak_pressure_left_kpa",
                "peak_pressure_right_kpa",
                "arch_index_left",
                "arch_index_right",
            ),
        ),
        Device(
            "posture",
            "record_no",
            "measured_at",
            "%Y-%m-%d %H:%M",
            (
                "head_forward_cm",
                "shoulder_height_diff_cm",
                "pelvic_height_diff_cm",
                "trunk_lean_deg",
            ),
        ),
    )
}


@dataclass
class SilverCentre:
    """One run's ``silver.centre_measurements`` rows, and the rows it quarantined."""

    rows: pl.DataFrame
    quarantined: list[Quarantined] = field(default_factory=list)
    superseded: int = 0


def _ranges() -> pl.DataFrame:
    """``centre_ranges.csv`` typed: device, range key (the exported column), low, high, unit."""
    return codes("centre_ranges").select(
        "device",
        pl.col("column").alias("range_key"),
        pl.col("low").cast(pl.Float64),
        pl.col("high").cast(pl.Float64),
        "unit",
    )


def _date_like(column: str) -> pl.Expr:
    """The text starts like a date (so a value that does not parse names an impossible one)."""
    return pl.col(column).str.contains(r"^\d{4}\D\d{2}\D\d{2}")


def _rows(device: Device, bronze: pl.DataFrame) -> pl.DataFrame:
    """One device's bronze rows in a common shape: the record's id, member, time (raw and parsed,
    UTC), its day in Korea, a row-level problem if any, and the payload a quarantine record
    keeps."""
    stamp = pl.col("_time").str.strptime(
        pl.Datetime("us", "UTC") if device.name == "emg" else pl.Datetime("us"),
        device.time_format,
        strict=False,
    )
    if device.name != "emg":
        stamp = stamp.dt.replace_time_zone(KST).dt.convert_time_zone("UTC")
    texts = [c for c in bronze.columns if not c.startswith("_")]
    problem: pl.Expr = pl.lit(None, pl.Utf8)
    if device.name == "balance":
        problem = (
            pl.when(~pl.col("condition").is_in(list(CONDITIONS)))
            .then(pl.format("condition {} is in no list", pl.col("condition").fill_null("")))
            .otherwise(None)
        )
    return bronze.select(
        *LINEAGE,
        pl.lit(device.name).alias("device"),
        pl.col(device.id).alias("measurement_id"),
        pl.col("member_no"),
        pl.col(device.time).alias("_time"),
        problem.alias("_code_problem"),
        pl.concat_str([pl.col(c).fill_null("") for c in texts], separator=",").alias("payload"),
    ).with_columns(stamp.alias("measured_at"))


def _csv_values(device: Device, bronze: pl.DataFrame) -> pl.DataFrame:
    """A CSV device's measured values in long form (text, as delivered)."""
    spec = catalog_table(device.table)
    headers = {m: spec.column(m).header for m in device.measures}
    context = (
        pl.col("condition").replace_strict(CONDITIONS, default=None)
        if device.name == "balance"
        else pl.lit(None, pl.Utf8)
    )
    return (
        bronze.with_columns(context.alias("context"))
        .unpivot(
            index=["_file", "_line", "context"],
            on=list(device.measures),
            variable_name="measure",
            value_name="raw",
        )
        .with_columns(pl.col("measure").replace_strict(headers).alias("range_key"))
    )


def _emg_values(bronze: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """EMG sessions' values in long form: the sit-to-stand time, and per muscle and side the
    RMS amplitude, %MVC and mean frequency (context ``<muscle> <side>``). Sessions whose payload
    is not the export's layout come back as (file, line, problem)."""
    values: list[dict[str, Any]] = []
    broken: list[dict[str, Any]] = []
    for file, line, payload in bronze.select("_file", "_line", "payload").iter_rows():
        try:
            doc = json.loads(payload)
            channels = doc["channels"]
            rows = [
                {
                    "measure": "sts_time_s",
                    "context": doc.get("protocol"),
                    "raw": doc.get("sts_time_s"),
                    "range_key": "sts_time_s",
                }
            ]
            for ch in channels:
                context = f"{ch['muscle']} {ch['side']}"
                rows += [
                    {
                        "measure": name,
                        "context": context,
                        "raw": ch.get(name),
                        "range_key": f"channels.{name}",
                    }
                    for name in EMG_CHANNEL_FIELDS
                ]
        except (TypeError, KeyError, ValueError) as exc:
            broken.append({"_file": file, "_line": line, "problem": f"not the EMG layout: {exc}"})
            continue
        for r in rows:
            raw = r["raw"]
            r["raw"] = None if raw is None else str(raw)
            values.append({"_file": file, "_line": line, **r})
    schema = {
        "_file": pl.Utf8,
        "_line": pl.Int64,
        "measure": pl.Utf8,
        "context": pl.Utf8,
        "raw": pl.Utf8,
        "range_key": pl.Utf8,
    }
    problems = {"_file": pl.Utf8, "_line": pl.Int64, "problem": pl.Utf8}
    return pl.DataFrame(values, schema=schema), pl.DataFrame(broken, schema=problems)


def _value_problems(values: pl.DataFrame, device: str) -> pl.DataFrame:
    """Per row (file, line): the first value that is not a number, and the first out of range."""
    ranged = (
        values.with_columns(pl.lit(device).alias("device"))
        .join(_ranges(), on=["device", "range_key"], how="left")
        .with_columns(pl.col("raw").str.strip_chars().cast(pl.Float64, strict=False).alias("value"))
    )
    what = (
        pl.when(pl.col("context").is_null())
        .then(pl.col("range_key"))
        .otherwise(pl.format("{}[{}]", pl.col("range_key"), pl.col("context")))
    )
    flagged = ranged.filter(pl.col("raw").is_not_null() & (pl.col("raw").str.strip_chars() != ""))
    flagged = flagged.with_columns(
        pl.when(pl.col("value").is_null() | ~pl.col("value").is_finite())
        .then(pl.format("{}={} is not a number", what, pl.col("raw")))
        .alias("_nan"),
        pl.when(~pl.col("value").is_between(pl.col("low"), pl.col("high")))
        .then(
            pl.format(
                "{}={} not in the plausible range [{}, {}] {}",
                what,
                pl.col("raw"),
                pl.col("low"),
                pl.col("high"),
                pl.col("unit"),
            )
        )
        .alias("_range"),
    )
    return flagged.group_by("_file", "_line").agg(
        pl.col("_nan").drop_nulls().first(), pl.col("_range").drop_nulls().first()
    )


def _check(rows: pl.DataFrame, device: Device, known: pl.Series) -> pl.DataFrame:
    """``rows`` with the first failing check's ``reason`` and ``message`` (null when none)."""
    missing = [pl.col(c).is_null() | (pl.col(c) == "") for c in ("measurement_id", "member_no")]
    day = pl.col("measured_at").dt.convert_time_zone(KST).dt.date()
    checks: list[tuple[pl.Expr, str, pl.Expr]] = [
        (
            missing[0] | missing[1] | pl.col("_time").is_null() | (pl.col("_time") == ""),
            MISSING_VALUE,
            pl.format("record id, member number or {} is empty", pl.lit(device.time)),
        ),
        (
            pl.col("measured_at").is_null() & _date_like("_time"),
            IMPOSSIBLE_DATE,
            pl.format("no such date: {}={}", pl.lit(device.time), pl.col("_time")),
        ),
        (
            pl.col("measured_at").is_null(),
            MALFORMED_ROW,
            pl.format("{}={} is not a timestamp", pl.lit(device.time), pl.col("_time")),
        ),
        (
            day.dt.strftime("%Y-%m-%d") != pl.col("_period"),
            OUTSIDE_PERIOD,
            pl.format(
                "measured on {} but the export covers {}", day.cast(pl.Utf8), pl.col("_period")
            ),
        ),
        (pl.col("_code_problem").is_not_null(), UNKNOWN_CODE, pl.col("_code_problem")),
        (pl.col("_layout").is_not_null(), MALFORMED_ROW, pl.col("_layout")),
        (pl.col("_nan").is_not_null(), MALFORMED_ROW, pl.col("_nan")),
        (pl.col("_range").is_not_null(), OUT_OF_RANGE, pl.col("_range")),
        (
            ~pl.col("member_no").is_in(known.to_list()),
            UNKNOWN_MEMBER,
            pl.format("member {} is not in the member register (yet)", pl.col("member_no")),
        ),
    ]
    return first_failure(rows, checks)


def device_measurements(
    device: Device, bronze: pl.DataFrame, known: pl.Series
) -> tuple[pl.DataFrame, list[Quarantined]]:
    """One device's bronze rows -> long-form measurements of the rows that pass, and a
    quarantine record for each row that does not."""
    if not bronze.height:
        return pl.DataFrame(schema=catalog_table("silver.centre_measurements").polars_schema()), []
    rows = _rows(device, bronze)
    if device.name == "emg":
        values, broken = _emg_values(bronze)
    else:
        values = _csv_values(device, bronze)
        broken = pl.DataFrame(schema={"_file": pl.Utf8, "_line": pl.Int64, "problem": pl.Utf8})
    rows = rows.join(broken.rename({"problem": "_layout"}), on=["_file", "_line"], how="left").join(
        _value_problems(values, device.name), on=["_file", "_line"], how="left"
    )
    checked = _check(rows, device, known)
    bad = checked.filter(pl.col("reason").is_not_null())
    good = checked.filter(pl.col("reason").is_null())
    quarantined = rejected_rows(
        bad.with_columns(pl.col("measurement_id").alias("key")), device.source, device.table
    )
    out = (
        good.select(*LINEAGE, "device", "measurement_id", "member_no", "measured_at")
        .join(values, on=["_file", "_line"], how="inner")
        .filter(pl.col("raw").is_not_null() & (pl.col("raw").str.strip_chars() != ""))
        .join(_ranges(), on=["device", "range_key"])
        .with_columns(
            pl.col("raw").str.strip_chars().cast(pl.Float64).alias("value"),
            pl.col("measured_at").dt.convert_time_zone(KST).dt.date().alias("measured_on"),
        )
    )
    return out, quarantined


def measurements(bronze: dict[str, pl.DataFrame], known: pl.Series) -> SilverCentre:
    """Every device's bronze rows -> ``silver.centre_measurements`` and the quarantine.

    Args:
        bronze: Device name -> its bronze rows (one run's window).
        known: The member numbers in the register (``silver.centre_members``).

    A measurement delivered again with other bytes (a corrected re-export) keeps the version
    delivered last; ``superseded`` counts the older values left out.
    """
    spec = catalog_table("silver.centre_measurements")
    frames: list[pl.DataFrame] = []
    quarantined: list[Quarantined] = []
    for name, rows in bronze.items():
        out, bad = device_measurements(DEVICES[name], rows, known)
        frames.append(out)
        quarantined += bad
    found = [f for f in frames if f.height]
    if not found:
        return SilverCentre(pl.DataFrame(schema=spec.polars_schema()), quarantined)
    every = pl.concat(
        [f.select(*spec.names, "_delivered_at", "_line") for f in found], how="vertical_relaxed"
    ).sort("_delivered_at", "_line")
    latest = every.unique(list(spec.key), keep="last", maintain_order=True)
    return SilverCentre(
        spec.conform(latest.sort("measured_on", "measurement_id", "measure", "context")),
        quarantined,
        every.height - latest.height,
    )


def members(bronze: pl.DataFrame) -> tuple[pl.DataFrame, list[Quarantined]]:
    """``silver.centre_members`` from every register delivery: one row per member number, the
    latest delivered registration winning; rows without a usable number, key or joining date
    are quarantined."""
    spec = catalog_table("silver.centre_members")
    if not bronze.height:
        return pl.DataFrame(schema=spec.polars_schema()), []
    joined = pl.col("joined_on").str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    rows = bronze.with_columns(joined.alias("_joined"))
    checks: list[tuple[pl.Expr, str, pl.Expr]] = [
        (
            pl.any_horizontal(
                pl.col(c).is_null() for c in ("member_no", "citizen_key", "joined_on")
            ),
            MISSING_VALUE,
            pl.lit("member number, registration number or 가입일 is empty"),
        ),
        (
            ~pl.col("member_no").str.contains(MEMBER_PATTERN),
            MALFORMED_ROW,
            pl.format("member number {} is not BG and 7 digits", pl.col("member_no")),
        ),
        (
            pl.col("_joined").is_null() & _date_like("joined_on"),
            IMPOSSIBLE_DATE,
            pl.format("no such date: 가입일={}", pl.col("joined_on")),
        ),
        (
            pl.col("_joined").is_null(),
            MALFORMED_ROW,
            pl.format("가입일={} is not a date", pl.col("joined_on")),
        ),
    ]
    checked = first_failure(rows, checks)
    bad = checked.filter(pl.col("reason").is_not_null()).with_columns(
        pl.col("member_no").alias("key"),
        # The number and the citizen key only: never more of a register row.
        pl.concat_str(
            [pl.col("member_no").fill_null(""), pl.col("citizen_key").fill_null("")],
            separator=",",
        ).alias("payload"),
    )
    quarantined = rejected_rows(bad, MEMBER_SOURCE, "bronze.centre_members")
    good = (
        checked.filter(pl.col("reason").is_null())
        .sort("_delivered_at", "_line")
        .unique("member_no", keep="last", maintain_order=True)
        .select("member_no", "citizen_key", pl.col("_joined").alias("joined_on"))
        .sort("member_no")
    )
    return spec.conform(good), quarantined


def _text(value: Any) -> str | None:
    """A JSON value as bronze text: strings as they are, anything else as JSON."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def emg_fields(session: dict[str, Any]) -> dict[str, str | None]:
    """One EMG session -> ``bronze.centre_emg``: its id, member and start as text, everything
    else (protocol, sit-to-stand time, sample rate, the per-muscle channels) kept as delivered
    in ``payload``."""
    top = ("session_id", "member_no", "started_at")
    rest = {k: v for k, v in session.items() if k not in top}
    return {k: _text(session.get(k)) for k in top} | {
        "payload": json.dumps(rest, ensure_ascii=False, separators=(",", ":"))
    }
