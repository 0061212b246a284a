"""Gold on real data: the small city's deliveries through bronze and silver into gold.

The timeline is checked against silver row by row (every statement in use is a visit, every
child row in use is there and no superseded version is), the uptake table against residents,
sign-ups and centre visits counted independently, in plain Python, from silver. The centre and
app silver tables come from their own pipelines when those exist; until then the test builds
them to the catalogue's schemas from the delivered files.
"""

from __future__ import annotations

import importlib
from collections import Counter
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from types import ModuleType
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl
import pytest

from lakehouse import delta, quality
from lakehouse.buckets import BUCKETS, key_bucket, key_bucket_expr, key_bucket_sql
from lakehouse.catalog import table as catalog_table
from lakehouse.catalog.gold import GOLD
from lakehouse.reference import codes
from pipelines.defs import claims as claims_defs
from pipelines.defs import gold
from pipelines.defs import registry as registry_defs
from pipelines.defs.partitions import DAYS as DAY_PARTITIONS
from pipelines.defs.partitions import MONTHS as MONTH_PARTITIONS
from pipelines.defs.resources import Lakehouse
from pipelines.transform.gold import (
    AGE_GROUPS,
    PASS_CITIZENS,
    bucket_groups,
    inpatient_forms,
    pass_size,
    residence_segments,
    touched_passes,
)
from tests.conftest import City
from tests.pipelines.conftest import Lake

MONTHS = ("2025-03", "2025-05")
DAYS = ("2025-03-01", "2025-05-29")
KST = ZoneInfo("Asia/Seoul")


# --- centre and app silver, from their pipelines or from the delivered files -----------------


def _optional(name: str) -> ModuleType | None:
    """Another engineer's module, if it exists and imports."""
    try:
        return importlib.import_module(name)
    except Exception:
        return None


def _assets(module: ModuleType) -> list[dg.AssetsDefinition]:
    return [v for v in vars(module).values() if isinstance(v, dg.AssetsDefinition)]


def _kst(text: pl.Expr, fmt: str) -> pl.Expr:
    return text.str.strptime(pl.Datetime("us"), fmt, strict=False).dt.replace_time_zone(
        "Asia/Seoul"
    )


def _centre_silver(city: City) -> dict[str, pl.DataFrame]:
    """silver.centre_members and silver.centre_measurements (gait and check-up blood pressure)
    built to the catalogue schemas from the delivered files, faulty rows and re-sends left out."""
    from lakehouse.pseudonym import pseudonymise

    members = city.table("centre/members", "members_")
    out = {
        "silver.centre_members": members.select(
            pl.col("회원번호").alias("member_no"),
            pseudonymise(members["주민등록번호"]).alias("citizen_key"),
            pl.col("가입일").str.strptime(pl.Date, "%Y-%m-%d").alias("joined_on"),
        ).unique("member_no")
    }
    gait = city.table("centre/gait", "gait_")
    measures = ["speed_m_s", "cadence_steps_min", "stride_length_cm"]
    gait_long = gait.unpivot(
        measures, index=["test_id", "member_no", "measured_at"], variable_name="measure"
    ).select(
        pl.col("test_id").alias("measurement_id"),
        "member_no",
        pl.lit("gait").alias("device"),
        _kst(pl.col("measured_at"), "%Y-%m-%d %H:%M:%S").alias("measured_at"),
        "measure",
        pl.lit(None, pl.Utf8).alias("context"),
        pl.col("value").cast(pl.Float64),
        pl.col("measure")
        .replace_strict(
            {"speed_m_s": "m/s", "cadence_steps_min": "steps/min", "stride_length_cm": "cm"}
        )
        .alias("unit"),
    )
    checkup = city.table("centre/checkup", "checkup_")
    bp = checkup.select(
        pl.col("측정번호").alias("measurement_id"),
        pl.col("회원번호").alias("member_no"),
        pl.lit("checkup").alias("device"),
        _kst(pl.col("측정일시"), "%Y-%m-%d %H:%M").alias("measured_at"),
        pl.lit("systolic_mmhg").alias("measure"),
        pl.lit(None, pl.Utf8).alias("context"),
        pl.col("수축기혈압").cast(pl.Float64).alias("value"),
        pl.lit("mmHg").alias("unit"),
    )
    rows = pl.concat([gait_long, bp]).filter(pl.col("measured_at").is_not_null())
    out["silver.centre_measurements"] = rows.with_columns(
        pl.col("measured_at").dt.date().alias("measured_on"),
        pl.col("measured_at").dt.convert_time_zone("UTC"),
    ).unique(["measurement_id", "measure"])
    return out


def _app_silver(city: City) -> dict[str, pl.DataFrame]:
    """silver.app_users and silver.programme_events from the delivered event log."""
    from lakehouse.pseudonym import pseudonymise

    events = city.json_lines("programme/app_events", lambda fault: fault is None)
    frame = pl.DataFrame(
        [
            {k: e.get(k) for k in ("event_id", "event_type", "occurred_at", "app_user_id", "rrn")}
            for e in events
        ],
        schema=dict.fromkeys(
            ("event_id", "event_type", "occurred_at", "app_user_id", "rrn"), pl.Utf8
        ),
    ).with_columns(
        pl.col("occurred_at")
        .str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%S%z", strict=False)
        .alias("at")
    )
    frame = frame.filter(pl.col("at").is_not_null()).unique("event_id")
    signups = frame.filter(pl.col("event_type") == "signup")
    return {
        "silver.app_users": signups.select(
            "app_user_id",
            pseudonymise(signups["rrn"]).alias("citizen_key"),
            pl.col("at").alias("signed_up_at"),
        ),
        "silver.programme_events": frame.select(
            "event_id",
            "event_type",
            pl.col("at").alias("occurred_at"),
            "app_user_id",
            pl.lit(None, pl.Utf8).alias("details"),
            pl.col("at").dt.convert_time_zone("Asia/Seoul").dt.date().alias("event_date"),
        ),
    }


def _build_silver(lake: Lake, city: City) -> str:
    """Registry and claims through the real pipelines; centre and app through theirs when they
    exist, else from the files. Returns how the centre and app tables were made."""
    lake.materialise([registry_defs.bronze_registry, registry_defs.silver_registry])
    lake.materialise(
        [claims_defs.bronze_claims, claims_defs.bronze_pharmacy, claims_defs.silver_claims],
        MONTHS,
    )
    made = []
    for name, fallback in (
        ("pipelines.defs.centre", _centre_silver),
        ("pipelines.defs.programme", _app_silver),
    ):
        module = _optional(name)
        assets = _assets(module) if module else []
        if assets:
            # Registers (unpartitioned) first, then the daily or monthly exports over the window.
            registers = [a for a in assets if a.partitions_def is None]
            if registers:
                lake.materialise(registers)
            for parts, window in ((DAY_PARTITIONS, DAYS), (MONTH_PARTITIONS, MONTHS)):
                runs = [a for a in assets if a.partitions_def == parts]
                if runs:
                    lake.materialise(runs, window)
            made.append(f"{name}: pipeline")
        else:
            with lake.active():
                for table, frame in fallback(city).items():
                    delta.append(table, frame)
            made.append(f"{name}: files")
    return ", ".join(made)


STUDY_SCORED = "1.2.410.200001.1"
STUDY_UNSCORED = "1.2.410.200001.2"


def _imaging_silver(lake: Lake) -> None:
    """Two studies of a citizen of the city (one scored by two model versions and a failed
    service, one not scored yet) and one of a patient the platform could not link, written as
    the imaging and scoring pipelines write them."""
    citizens = lake.frame("silver.citizens").sort("citizen_key")["citizen_key"]
    clinic = lake.frame("silver.institutions").sort("ykiho").row(0, named=True)
    at = datetime(2025, 4, 2, 1, 0, tzinfo=UTC)
    studies = pl.DataFrame(
        [
            {
                "study_instance_uid": uid,
                "citizen_key": who,
                "institution": clinic["ykiho"],
                "institution_name": "헤더에 적힌 이름",
                "study_description": "CHEST PA",
                "study_datetime": at,
                "study_date": date(2025, 4, 2),
                "modalities": "CR",
                "series_count": 1,
                "instance_count": 1,
                "patient_conflict": False,
                "first_received_at": at,
                "last_received_at": at,
            }
            for uid, who in (
                (STUDY_SCORED, citizens[0]),
                (STUDY_UNSCORED, citizens[0]),
                ("1.2.410.200001.3", None),
            )
        ],
        schema=catalog_table("silver.imaging_studies").polars_schema(),
    )

    def finding(version: str, score: float | None, status: str, scored: datetime) -> dict:
        return {
            "study_instance_uid": STUDY_SCORED,
            "citizen_key": citizens[0],
            "institution": clinic["ykiho"],
            "service": "chest" if status == "scored" else "spine",
            "finding_code": "lung_opacity" if status == "scored" else "compression_fracture",
            "status": status,
            "score": score,
            "threshold": 0.5,
            "positive": None if score is None else score >= 0.5,
            "instances_scored": 1,
            "algorithm_name": "test",
            "algorithm_version": version,
            "device_uid": "1.2.3",
            "tracking_id": version,
            "tracking_uid": f"1.2.3.{len(version)}",
            "verification": "unverified",
            "priority": 1,
            "synthetic_reference": True,
            "scored_at": scored,
        }

    findings = pl.DataFrame(
        [
            finding("1.0", 0.91, "scored", at),  # rescored since: no longer the result
            finding("1.1", 0.34, "scored", at + timedelta(days=1)),
            finding("1.1", None, "failed", at + timedelta(days=1)),
        ],
        schema=catalog_table("ai.findings").polars_schema(),
    )
    with lake.active():
        delta.append("silver.imaging_studies", studies)
        delta.append("ai.findings", findings)


@pytest.fixture(scope="module")
def gold_lake(small_city: City, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    lake = Lake(tmp_path_factory.mktemp("gold") / "lakehouse", small_city.out)
    _build_silver(lake, small_city)
    _imaging_silver(lake)
    result = lake.materialise(gold.GOLD_ASSETS)
    assert result.success
    # The catalogue's fatal checks of the gold tables (keys, kinds, UIDs, ranges) pass.
    fatal = {c.dagster_name for t in GOLD for c in quality.checks(t.name) if c.fatal}
    failed = [
        e.asset_check_key.name
        for e in result.get_asset_check_evaluations()
        if e.asset_check_key.name in fatal and not e.passed
    ]
    assert failed == []
    return lake


# --- the rule of key buckets and the small pieces -------------------------------------------


def test_key_bucket_one_rule_in_python_polars_and_sql() -> None:
    import duckdb

    keys = [f"C{i:02x}" + "0" * 30 for i in range(256)] + ["C" + "f3" * 16, "C" + "a" * 32]
    python = [key_bucket(k) for k in keys]
    polars = pl.DataFrame({"citizen_key": keys}).select(key_bucket_expr())["citizen_key"]
    sql = duckdb.sql(
        f"SELECT {key_bucket_sql()} AS b FROM (SELECT unnest(?) AS citizen_key)", params=[keys]
    ).fetchall()
    assert python == polars.to_list() == [b for (b,) in sql]
    assert set(python) == set(range(BUCKETS))
    assert key_bucket("C" + "a" * 32) == 0xAA % 64
    with pytest.raises(ValueError):
        key_bucket("900101-1234567")


def test_bucket_groups_cover_every_bucket_once() -> None:
    groups = bucket_groups(8)
    assert [b for g in groups for b in g] == list(range(BUCKETS))
    with pytest.raises(ValueError):
        bucket_groups(7)


def test_passes_shrink_as_the_city_grows() -> None:
    """A pass holds about ``PASS_CITIZENS`` citizens whatever the city: the demo's 5,000 keep
    their 8 passes of 8 buckets, 300,000 get passes of 2, Gwangju's 1.43 M one bucket each."""
    assert pass_size(5_000, 8) == 8
    assert pass_size(300_000, 8) == 2
    assert pass_size(1_430_000, 8) == 1
    assert pass_size(0, 8) == 8 and pass_size(300, 64) == 64  # a tiny city: one pass if asked
    assert pass_size(100_000, 4) == 4  # never more than asked
    for citizens in (1_000, 50_000, 300_000, 1_430_000, 10_000_000):
        size = pass_size(citizens, 8)
        assert bucket_groups(size)  # divides the buckets
        assert size == 1 or citizens * size / BUCKETS <= PASS_CITIZENS


def test_touched_citizens_pass_in_bounded_rows_and_in_bucket_order() -> None:
    """A night's touched citizens are recomputed in passes that hold at most ``most_rows`` of
    their stored rows (a citizen with more is a pass alone) and ``most_citizens`` citizens,
    every citizen in exactly one pass, in key-bucket order (a pass reads few buckets' files)."""
    keys = [f"C{b:02x}{i:030x}" for b in (0xC1, 0x05, 0x42, 0x7F) for i in range(3)]
    rows = pl.DataFrame({"citizen_key": keys, "rows": [400, 10, 0] * 4})
    passes = touched_passes(rows, most_rows=500, most_citizens=4)
    weight = dict(zip(keys, [400, 10, 0] * 4, strict=True))
    assert sorted(k for p in passes for k in p) == sorted(keys)
    assert all(len(p) <= 4 and (sum(weight[k] for k in p) <= 500 or len(p) == 1) for p in passes)
    order = [key_bucket(k) for p in passes for k in p]
    assert order == sorted(order)
    assert len(passes) == 4  # a bucket's 400 + 10 + 0 fill a pass: the next 400 would pass 500
    assert [len(p) for p in touched_passes(rows, most_rows=10**6, most_citizens=5)] == [5, 5, 2]
    heavy = pl.DataFrame({"citizen_key": [keys[0], keys[1]], "rows": [5_000, 1]})
    assert touched_passes(heavy, most_rows=100) == [[keys[0]], [keys[1]]]
    assert touched_passes(rows) == [sorted(keys, key=lambda k: (key_bucket(k), k))]


def test_residence_segments_cut_at_birthdays_and_residence() -> None:
    citizens = pl.LazyFrame(
        {
            "citizen_key": ["Ca", "Cb"],
            "district_code": ["24010", "24020"],
            "dong_code": ["2401051", "2402061"],
            "sex": ["F", "M"],
            "birth_year": [1960, 2000],
            "birth_month": [4, 1],
            "resident_from": [date(2024, 1, 1), date(2025, 3, 10)],
            "resident_to": [None, date(2025, 3, 20)],
        }
    )
    seg = residence_segments(citizens, date(2025, 3, 1), date(2025, 4, 30)).collect()
    a = seg.filter(pl.col("citizen_key") == "Ca").sort("start")
    # Turns 65 in April 2025: 40-64 until the first of April, then 65-74.
    assert a.select("age_group", "start", "end").rows() == [
        ("40-64", date(2025, 3, 1), date(2025, 4, 1)),
        ("65-74", date(2025, 4, 1), date(2025, 5, 1)),
    ]
    b = seg.filter(pl.col("citizen_key") == "Cb")
    assert b.select("age_group", "start", "end").rows() == [
        ("20-39", date(2025, 3, 10), date(2025, 3, 20))
    ]


def test_inpatient_forms_come_from_the_code_list() -> None:
    assert inpatient_forms() == {"021", "041", "121"}


# --- the timeline -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.integration
def test_every_claim_in_use_is_a_visit_of_its_citizen(gold_lake: Lake) -> None:
    claims = gold_lake.frame("silver.claims")
    timeline = gold_lake.frame("gold.citizen_timeline")
    visits = timeline.filter(pl.col("kind").is_in(["visit", "admission"]))
    assert claims.height > 0
    assert visits.height == claims.height
    expected = claims.select(
        "citizen_key",
        pl.format("silver.claims:{}", "spec_id").alias("source_ref"),
        pl.col("start_date").alias("event_date"),
        pl.col("ykiho").alias("institution"),
        pl.when(pl.col("form_type").is_in(sorted(inpatient_forms())))
        .then(pl.lit("admission"))
        .otherwise(pl.lit("visit"))
        .alias("kind"),
    )
    got = visits.select(expected.columns)
    assert sorted(got.rows()) == sorted(expected.rows())


def _in_use(lake: Lake, name: str) -> pl.DataFrame:
    heads = lake.frame("silver.claims").select("spec_id", "delivery_id")
    return lake.frame(name).join(heads, on=["spec_id", "delivery_id"], how="semi")


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize(
    ("table", "kind", "key"),
    [
        ("silver.diagnoses", "diagnosis", "seq"),
        ("silver.prescriptions", "prescription", "line_no"),
        ("silver.dispensings", "dispensing", "line_no"),
    ],
)
def test_child_rows_are_exactly_those_in_use(
    gold_lake: Lake, table: str, kind: str, key: str
) -> None:
    every = gold_lake.frame(table)
    in_use = _in_use(gold_lake, table)
    rows = gold_lake.frame("gold.citizen_timeline").filter(pl.col("kind") == kind)
    assert in_use.height > 0
    expected = in_use.select(
        "citizen_key",
        pl.format(f"{table}:{{}}:{{}}:{{}}", "spec_id", "delivery_id", key).alias("source_ref"),
    )
    assert sorted(rows.select(expected.columns).rows()) == sorted(expected.rows())
    if table == "silver.diagnoses":
        # The corrected statements' earlier versions are in silver but not in the timeline.
        assert every.height > in_use.height


@pytest.mark.slow
@pytest.mark.integration
def test_one_citizen_is_one_partition(gold_lake: Lake) -> None:
    timeline = gold_lake.frame("gold.citizen_timeline")
    per_citizen = timeline.group_by("citizen_key").agg(
        pl.col("key_bucket").n_unique().alias("n"), pl.col("key_bucket").first().alias("b")
    )
    assert per_citizen["n"].max() == 1
    assert all(key_bucket(k) == b for k, b in per_citizen.select("citizen_key", "b").rows())
    # A reader that knows only the key finds the whole timeline in that one partition.
    someone = timeline.group_by("citizen_key").len().sort("len")[-1, "citizen_key"]
    part = gold_lake.frame(
        "gold.citizen_timeline", pl.col("key_bucket") == key_bucket(someone)
    ).filter(pl.col("citizen_key") == someone)
    assert part.height == timeline.filter(pl.col("citizen_key") == someone).height
    folders = {p.name for p in (gold_lake.root / "gold" / "citizen_timeline").iterdir()}
    assert f"key_bucket={key_bucket(someone)}" in folders


@pytest.mark.slow
@pytest.mark.integration
def test_one_citizens_read_is_their_rows_from_sorted_small_row_groups(gold_lake: Lake) -> None:
    import pyarrow.parquet as pq

    from lakehouse import queries

    timeline = gold_lake.frame("gold.citizen_timeline")
    # Each file holds its citizens sorted, in row groups no larger than the job writes.
    for path in (gold_lake.root / "gold" / "citizen_timeline").rglob("*.parquet"):
        keys = pl.read_parquet(path, columns=["citizen_key"])["citizen_key"]
        assert keys.is_sorted()
        meta = pq.ParquetFile(path).metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        assert max(sizes) <= gold.ROW_GROUP_ROWS
    # The access layer's read (the bucket's files, the key's row groups) gives exactly the rows
    # the table holds for the citizen, with the catalogue's types, newest first.
    counts = timeline.group_by("citizen_key").len().sort("len", "citizen_key")
    with gold_lake.active():
        for key in (counts["citizen_key"][0], counts["citizen_key"][-1]):
            read = queries.timeline(key)
            mine = timeline.filter(pl.col("citizen_key") == key).drop("key_bucket")
            assert read.schema == mine.schema
            assert read.sort("source_ref").equals(mine.sort("source_ref"))
            assert read["event_date"].is_sorted(descending=True)
        assert queries.timeline("C" + "0" * 32).is_empty()


# Columns holding names delivered with the data (code lists, the institution register, DICOM
# headers): the only ones that may hold Korean.
DELIVERED_NAMES = ("name", "institution_name", "prescriber_name")


@pytest.mark.slow
@pytest.mark.integration
def test_no_project_words_are_stored_only_codes_and_delivered_names(gold_lake: Lake) -> None:
    timeline = gold_lake.frame("gold.citizen_timeline")
    text = [c for c, t in timeline.schema.items() if t == pl.Utf8 and c not in DELIVERED_NAMES]
    assert {"title", "detail"}.isdisjoint(timeline.columns)
    hangul = timeline.select(pl.col(text).str.contains("[가-힣]").any())
    assert not any(hangul.row(0)), dict(zip(text, hangul.row(0), strict=True))


@pytest.mark.slow
@pytest.mark.integration
def test_names_come_from_the_code_lists_and_the_register(gold_lake: Lake) -> None:
    timeline = gold_lake.frame("gold.citizen_timeline")
    kcd = dict(codes("kcd").select("code", "name_ko").rows())
    dx = timeline.filter(pl.col("kind").is_in(["diagnosis", "visit", "admission"]))
    for code, name in dx.select("code", "name").unique().rows():
        assert name == kcd.get(code.replace(".", ""))
    drugs = dict(codes("drugs").select("gnl_nm_cd", "name_ko").rows())
    rx = timeline.filter(pl.col("kind").is_in(["prescription", "dispensing"]))
    for code, name in rx.select("code", "name").unique().rows():
        assert name.startswith(drugs[code])
    registered = dict(gold_lake.frame("silver.institutions").select("ykiho", "name").rows())
    coded = timeline.filter(pl.col("institution").is_not_null() & (pl.col("kind") != "imaging"))
    assert coded.height and coded["institution_name"].null_count() == 0
    for code, name in coded.select("institution", "institution_name").unique().rows():
        assert registered[code] == name
    for code, name in (
        rx.filter(pl.col("kind") == "dispensing")
        .select("prescriber", "prescriber_name")
        .unique()
        .rows()
    ):
        assert registered.get(code) == name


@pytest.mark.slow
@pytest.mark.integration
def test_diagnoses_keep_their_role(gold_lake: Lake) -> None:
    in_use = _in_use(gold_lake, "silver.diagnoses").select(
        pl.format("silver.diagnoses:{}:{}:{}", "spec_id", "delivery_id", "seq").alias("source_ref"),
        pl.col("kind").alias("role"),
    )
    rows = gold_lake.frame("gold.citizen_timeline").filter(pl.col("kind") == "diagnosis")
    assert set(rows["role"].to_list()) == {"main", "sub"}
    assert sorted(rows.select("source_ref", "role").rows()) == sorted(in_use.rows())


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize(
    ("table", "kind", "day"),
    [
        ("silver.prescriptions", "prescription", "issued_on"),
        ("silver.dispensings", "dispensing", "dispensed_on"),
    ],
)
def test_medicines_span_their_days_supplied(
    gold_lake: Lake, table: str, kind: str, day: str
) -> None:
    silver = _in_use(gold_lake, table).select(
        pl.format(f"{table}:{{}}:{{}}:{{}}", "spec_id", "delivery_id", "line_no").alias(
            "source_ref"
        ),
        pl.col(day).alias("event_date"),
        (pl.col(day) + pl.duration(days=pl.col("days") - 1)).alias("end_date"),
        "dose",
        "per_day",
        "days",
        "amount",
        "prescription_no",
    )
    rows = gold_lake.frame("gold.citizen_timeline").filter(pl.col("kind") == kind)
    assert rows.height and (rows["end_date"] >= rows["event_date"]).all()
    assert sorted(rows.select(silver.columns).rows()) == sorted(silver.rows())


@pytest.mark.slow
@pytest.mark.integration
def test_visits_carry_form_department_days_and_amounts(gold_lake: Lake) -> None:
    claims = gold_lake.frame("silver.claims").select(
        pl.format("silver.claims:{}", "spec_id").alias("source_ref"),
        pl.col("end_date"),
        pl.col("main_dx").alias("code"),
        "form_type",
        "department",
        pl.col("visit_days").alias("days"),
        pl.col("total_amount").alias("amount"),
        "patient_amount",
    )
    rows = gold_lake.frame("gold.citizen_timeline").filter(
        pl.col("kind").is_in(["visit", "admission"])
    )
    assert sorted(rows.select(claims.columns).rows()) == sorted(claims.rows())


@pytest.mark.slow
@pytest.mark.integration
def test_imaging_studies_carry_their_latest_ai_result(gold_lake: Lake) -> None:
    rows = gold_lake.frame("gold.citizen_timeline").filter(pl.col("kind") == "imaging")
    by_uid = {r["study_uid"]: r for r in rows.iter_rows(named=True)}
    assert set(by_uid) == {STUDY_SCORED, STUDY_UNSCORED}  # the unlinked patient is no citizen's
    scored, waiting = by_uid[STUDY_SCORED], by_uid[STUDY_UNSCORED]
    # The newest model version's result, not the failed service's, not the superseded score.
    assert (scored["ai_service"], scored["ai_finding"]) == ("chest", "lung_opacity")
    assert scored["ai_score"] == pytest.approx(0.34) and scored["ai_positive"] is False
    assert (scored["code"], scored["name"], scored["event_date"]) == (
        "CR",
        "CHEST PA",
        date(2025, 4, 2),
    )
    assert scored["institution_name"] != "헤더에 적힌 이름"  # the register's name comes first
    assert waiting["ai_service"] is None and waiting["ai_score"] is None
    assert scored["source_ref"] == f"silver.imaging_studies:{STUDY_SCORED}"


@pytest.mark.slow
@pytest.mark.integration
def test_measurements_of_known_members_are_on_the_timeline(gold_lake: Lake) -> None:
    members = gold_lake.frame("silver.centre_members")
    measured = gold_lake.frame("silver.centre_measurements").join(
        members.select("member_no", "citizen_key"), on="member_no", how="inner"
    )
    rows = gold_lake.frame("gold.citizen_timeline").filter(pl.col("kind") == "measurement")
    assert measured.height > 0
    assert rows.height == measured.height
    assert Counter(rows["citizen_key"].to_list()) == Counter(measured["citizen_key"].to_list())
    expected = measured.select(
        "citizen_key",
        pl.col("measured_on").alias("event_date"),
        pl.col("measure").alias("code"),
        "device",
        "context",
        "value",
        "unit",
    )
    assert sorted(rows.select(expected.columns).rows()) == sorted(expected.rows())
    # Every measure is named by the reference list, in both languages.
    listed = set(codes("centre_measures")["code"].to_list())
    assert set(rows["code"].to_list()) <= listed
    assert rows["name"].null_count() == rows.height


@pytest.mark.slow
@pytest.mark.integration
def test_rerun_replaces_rather_than_duplicates(gold_lake: Lake) -> None:
    published = gold_lake.frame("gold.programme_uptake_published").sort(pl.all())
    services = gold_lake.frame("gold.ai_services_published").sort(pl.all())
    assert services.height  # the imaging silver's scored study
    before = {
        n: gold_lake.frame(n).height
        for n in ("gold.citizen_timeline", "gold.programme_uptake_daily")
    }
    # A row silver no longer has (a citizen whose claims were withdrawn) goes on the next run.
    stale = gold_lake.frame("gold.citizen_timeline").head(1)
    stale = stale.with_columns(pl.lit("silver.claims:withdrawn").alias("source_ref"))
    with gold_lake.active():
        delta.append("gold.citizen_timeline", stale)
    assert gold_lake.materialise(list(gold.GOLD_ASSETS)).success
    after = {n: gold_lake.frame(n).height for n in before}
    assert after == before
    refs = gold_lake.frame("gold.citizen_timeline")["source_ref"]
    assert refs.is_unique().all()
    assert "silver.claims:withdrawn" not in refs.to_list()
    # The same silver publishes the same suppression (every choice is deterministic).
    assert gold_lake.frame("gold.programme_uptake_published").sort(pl.all()).equals(published)
    assert gold_lake.frame("gold.ai_services_published").sort(pl.all()).equals(services)


# --- programme uptake -------------------------------------------------------------------------


def _age(birth_year: int, birth_month: int, day: date) -> int:
    return day.year - birth_year - (day.month < birth_month)


def _group(age: int) -> str:
    return next(g for g, lo, hi in AGE_GROUPS if lo <= age < hi)


def _resident(c: dict, day: date) -> bool:
    return c["resident_from"] <= day and (c["resident_to"] is None or day < c["resident_to"])


@pytest.mark.slow
@pytest.mark.integration
def test_uptake_residents_match_the_register_every_day(gold_lake: Lake) -> None:
    uptake = gold_lake.frame("gold.programme_uptake_daily")
    citizens = gold_lake.frame("silver.citizens").to_dicts()
    first, last = uptake["day"].min(), uptake["day"].max()
    assert isinstance(first, date) and isinstance(last, date)
    assert first == date(2025, 3, 1)
    days = (last - first).days + 1
    dongs = {(c["district_code"], c["dong_code"]) for c in citizens}
    # Every cell of every day, zeros included; one row per key; a dong in its district.
    assert uptake.height == days * len(dongs) * len(AGE_GROUPS) * 2
    assert uptake.select("day", "dong_code", "age_group", "sex").is_unique().all()
    assert uptake["dong_code"].str.head(4).eq(uptake["district_code"].str.head(4)).all()
    cells = {
        (r["day"], r["dong_code"], r["age_group"], r["sex"]): r["residents"]
        for r in uptake.iter_rows(named=True)
    }
    for i in range(days):
        day = first + timedelta(days=i)
        expected: Counter[tuple[str, str, str]] = Counter(
            (c["dong_code"], _group(_age(c["birth_year"], c["birth_month"], day)), c["sex"])
            for c in citizens
            if _resident(c, day)
        )
        got = {k[1:]: v for k, v in cells.items() if k[0] == day and v}
        assert got == dict(expected), day
        assert sum(got.values()) == sum(_resident(c, day) for c in citizens)


@pytest.mark.slow
@pytest.mark.integration
def test_uptake_signups_users_and_visitors_match_silver(gold_lake: Lake) -> None:
    uptake = gold_lake.frame("gold.programme_uptake_daily")
    first, last = uptake["day"].min(), uptake["day"].max()
    assert isinstance(first, date) and isinstance(last, date)
    people = {c["citizen_key"]: c for c in gold_lake.frame("silver.citizens").to_dicts()}
    users = gold_lake.frame("silver.app_users").to_dicts()

    def kst(ts: datetime) -> date:
        return ts.replace(tzinfo=ts.tzinfo or UTC).astimezone(KST).date()

    signups = Counter(
        kst(u["signed_up_at"])
        for u in users
        if u["citizen_key"] in people
        and first <= kst(u["signed_up_at"]) <= last
        and _resident(people[u["citizen_key"]], kst(u["signed_up_at"]))
    )
    daily = dict(uptake.group_by("day").agg(pl.col("signups").sum()).rows())
    assert {d: n for d, n in daily.items() if n} == dict(signups)

    # App users on the last day: residents that day with an account signed up by then.
    owners = {u["citizen_key"] for u in users if kst(u["signed_up_at"]) <= last}
    expected_users = sum(1 for k in owners if k in people and _resident(people[k], last))
    on_last = uptake.filter(pl.col("day") == last)
    assert on_last["app_users"].sum() == expected_users

    account = {u["app_user_id"]: u["citizen_key"] for u in users}
    logins = {
        (account[e["app_user_id"]], e["event_date"])
        for e in gold_lake.frame("silver.programme_events").to_dicts()
        if e["event_type"] == "login" and e["app_user_id"] in account
    }
    active = Counter(
        d for k, d in logins if k in people and _resident(people[k], d) and first <= d <= last
    )
    daily = dict(uptake.group_by("day").agg(pl.col("active_users").sum()).rows())
    assert {d: n for d, n in daily.items() if n} == dict(active)

    member = dict(
        gold_lake.frame("silver.centre_members").select("member_no", "citizen_key").rows()
    )
    visits = {
        (member[m], d)
        for m, d in gold_lake.frame("silver.centre_measurements")
        .select("member_no", "measured_on")
        .rows()
        if m in member
    }
    visitors = Counter(
        d for k, d in visits if k in people and _resident(people[k], d) and first <= d <= last
    )
    assert sum(visitors.values()) > 0
    daily = dict(uptake.group_by("day").agg(pl.col("centre_visitors").sum()).rows())
    assert {d: n for d, n in daily.items() if n} == dict(visitors)


@pytest.mark.slow
@pytest.mark.integration
def test_uptake_funnel_stocks_match_silver(gold_lake: Lake) -> None:
    """On every day: residents whose record-link consent stands and whose records are linked
    (the access layer's fold over their events up to that day), who have had a study scored by
    an AI service and who have been measured at the centre, each counted in their cell."""
    from lakehouse.consent import consent

    uptake = gold_lake.frame("gold.programme_uptake_daily")
    first, last = uptake["day"].min(), uptake["day"].max()
    assert isinstance(first, date) and isinstance(last, date)
    people = {c["citizen_key"]: c for c in gold_lake.frame("silver.citizens").to_dicts()}
    users = gold_lake.frame("silver.app_users").select("app_user_id", "citizen_key")
    events = gold_lake.frame("silver.programme_events").join(users, on="app_user_id")
    # The one scored study's citizen (_imaging_silver), from its first scoring day (KST).
    scored_on = {
        s["citizen_key"]: date(2025, 4, 2)
        for s in gold_lake.frame("silver.imaging_studies").to_dicts()
        if s["study_instance_uid"] == STUDY_SCORED
    }
    member = dict(
        gold_lake.frame("silver.centre_members").select("member_no", "citizen_key").rows()
    )
    measured: dict[str, date] = {}
    for m, d in (
        gold_lake.frame("silver.centre_measurements").select("member_no", "measured_on").rows()
    ):
        if m in member:
            measured[member[m]] = min(d, measured.get(member[m], d))
    totals = {
        r["day"]: r
        for r in uptake.group_by("day")
        .agg(pl.col("consented", "linked", "ai_users", "centre_users").sum())
        .iter_rows(named=True)
    }
    keys = events["citizen_key"].unique().to_list()
    for day in (first + timedelta(days=30), last):
        standing = [
            consent(events.filter((pl.col("citizen_key") == k) & (pl.col("event_date") <= day)))
            for k in keys
            if k in people and _resident(people[k], day)
        ]
        got = totals[day]
        assert got["consented"] == sum(s.consented for s in standing), day
        assert got["linked"] == sum(s.linked for s in standing), day
        assert got["ai_users"] == sum(
            1 for k, d in scored_on.items() if d <= day and _resident(people[k], day)
        )
        assert got["centre_users"] == sum(
            1 for k, d in measured.items() if d <= day and k in people and _resident(people[k], day)
        )
    assert totals[last]["consented"] > 0 and totals[last]["centre_users"] > 0
    assert totals[last]["ai_users"] == 1


# --- absent silver tables, the job and the schedule ------------------------------------------


@pytest.mark.slow
@pytest.mark.integration
def test_gold_runs_before_claims_centre_and_app_exist(
    small_city: City, tmp_path_factory: pytest.TempPathFactory
) -> None:
    lake = Lake(tmp_path_factory.mktemp("gold_early") / "lakehouse", small_city.out)
    lake.materialise([registry_defs.bronze_registry, registry_defs.silver_registry])
    with lake.active():
        assert not delta.exists("silver.claims")
        assert not delta.exists("silver.app_users")
    assert lake.materialise(list(gold.GOLD_ASSETS)).success
    assert lake.frame("gold.citizen_timeline").height == 0
    uptake = lake.frame("gold.programme_uptake_daily")
    assert uptake.height > 0
    assert uptake.select("signups", "app_users", "active_users", "centre_visitors").sum().row(
        0
    ) == (0, 0, 0, 0)


def test_job_and_schedule_resolve_and_request_a_run() -> None:
    defs = dg.Definitions(
        assets=list(gold.GOLD_ASSETS),
        jobs=[gold.gold_job],
        schedules=[gold.nightly_gold],
        resources={"lakehouse": Lakehouse()},
    )
    dg.Definitions.validate_loadable(defs)
    job = defs.resolve_job_def("gold_job")
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {
        "gold/citizen_consent",
        "gold/citizen_timeline",
        "gold/programme_uptake_daily",
        "gold/programme_uptake_published",
        "gold/ai_services_published",
    }
    schedule = defs.resolve_schedule_def("nightly_gold")
    assert schedule.execution_timezone == "Asia/Seoul"
    assert schedule.cron_schedule == "0 2 * * *"
    when = datetime(2025, 6, 1, 2, 0, tzinfo=KST)
    result = schedule.evaluate_tick(dg.build_schedule_context(scheduled_execution_time=when))
    requests = result.run_requests or []
    assert len(requests) == 1
    assert isinstance(requests[0], dg.RunRequest)


def test_gold_assets_depend_on_silver_by_key() -> None:
    deps = {
        spec.key.to_user_string(): {d.asset_key.to_user_string() for d in spec.deps}
        for a in gold.GOLD_ASSETS
        for spec in a.specs
    }
    assert deps["gold/citizen_timeline"] >= {
        "silver/claims",
        "silver/diagnoses",
        "silver/prescriptions",
        "silver/dispensings",
        "silver/centre_measurements",
        "silver/centre_members",
    }
    assert deps["gold/programme_uptake_daily"] >= {
        "silver/citizens",
        "silver/app_users",
        "silver/programme_events",
        "silver/imaging_studies",
        "ai/findings",
    }
    assert deps["gold/programme_uptake_published"] == {"gold/programme_uptake_daily"}
    assert deps["gold/ai_services_published"] == {
        "ai/findings",
        "silver/imaging_instances",
        "silver/imaging_studies",
    }
    for a in gold.GOLD_ASSETS:
        for spec in a.specs:
            assert spec.group_name == "gold"
            assert spec.owners


# --- consent ------------------------------------------------------------------------------


def test_the_consent_table_is_the_access_layers_fold_for_every_citizen(gold_lake: Lake) -> None:
    """Every citizen with an app account has one row, and it is what ``folds.consent`` says
    of all their events (the access layer's own rule, not a copy of it); the build records
    which version and day of the events it folded."""
    from lakehouse.access import folds

    users = gold_lake.frame("silver.app_users")
    events = gold_lake.frame("silver.programme_events").join(users, on="app_user_id")
    table = gold_lake.frame("gold.citizen_consent")
    assert table.height == users["citizen_key"].n_unique() > 0
    assert table["citizen_key"].is_unique().all()
    states: Counter[str] = Counter()
    for row in table.iter_rows(named=True):
        expected = folds.consent(events.filter(pl.col("citizen_key") == row["citizen_key"]))
        assert {f: row[f] for f in folds.CONSENT_FIELDS} == asdict(expected)
        assert row["state"] == expected.state
        assert row["key_bucket"] == key_bucket(row["citizen_key"])
        states[row["state"]] += 1
    assert len(states) >= 2, states  # the city holds more than one state to tell apart
    with gold_lake.active():
        version = delta.open_table("silver.programme_events").version()
    assert set(table["events_version"]) == {version}
    assert set(table["events_through"]) == {events["event_date"].max()}
