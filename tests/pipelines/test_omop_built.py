"""The OMOP tables of the demo city built end to end (``gjh build``'s stages, the omop stage
last): every table of the catalogue's omop layer exists with the specification's schema, its
keys are unique, its foreign keys resolve (persons, visits, images, concepts, care sites,
locations), every event lies in its person's observation period, and no value is a
registration number or a citizen key."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from lakehouse import delta
from lakehouse.catalog import table as catalog_table
from lakehouse.catalog.omop import OMOP
from lakehouse.omop import spec
from lakehouse.omop.ids import person_id
from lakehouse.pseudonym import KEY_PATTERN
from pipelines.defs.omop import SOURCES, omop_tables
from tests.conftest import City
from tests.pipelines.conftest import Lake, assert_no_identifiers, parquet_files

pytestmark = [pytest.mark.slow, pytest.mark.integration]

NAMES = tuple(t.name for t in OMOP)
CITIZEN_KEY = re.compile(KEY_PATTERN[1:-1])


@pytest.fixture(scope="module")
def omop(built_demo: Lake) -> dict[str, pl.DataFrame]:
    return {name: built_demo.frame(name) for name in NAMES}


def test_every_table_exists_with_the_specifications_schema(built_demo: Lake) -> None:
    with built_demo.active():
        for name in NAMES:
            assert delta.exists(name), name
            schema = pl.scan_delta(delta.uri(name)).collect_schema()
            table = catalog_table(name)
            assert list(schema) == [f.name for f in spec.fields(table.short)], name
            assert dict(schema) == dict(table.polars_schema()), name


def test_keys_are_unique_and_required_fields_filled(omop: dict[str, pl.DataFrame]) -> None:
    for name, frame in omop.items():
        short = name.split(".", 1)[1]
        key = spec.primary_key(short)
        if key:
            assert frame.select(key).is_duplicated().sum() == 0, name
        required = [f.name for f in spec.fields(short) if f.required]
        nulls = frame.select(pl.col(required).null_count()).row(0, named=True)
        assert not any(nulls.values()), (name, nulls)


def test_foreign_keys_resolve(omop: dict[str, pl.DataFrame]) -> None:
    checked = 0
    for name, frame in omop.items():
        for column in catalog_table(name).columns:
            if not column.references or not column.references.startswith("omop."):
                continue
            target, field = column.references.rsplit(".", 1)
            values = set(frame[column.name].drop_nulls().unique())
            missing = values - set(omop[target][field])
            assert not missing, f"{name}.{column.name}: {sorted(missing)[:5]} not in {target}"
            checked += 1
    assert checked > 30
    # The ones the issue names, explicitly.
    persons = set(omop["omop.person"]["person_id"])
    visits = set(omop["omop.visit_occurrence"]["visit_occurrence_id"])
    assert set(omop["omop.condition_occurrence"]["person_id"]) <= persons
    assert set(omop["omop.drug_exposure"]["visit_occurrence_id"]) <= visits
    assert set(omop["omop.image_feature"]["image_occurrence_id"]) <= set(
        omop["omop.image_occurrence"]["image_occurrence_id"]
    )


def test_what_the_city_holds_is_there(omop: dict[str, pl.DataFrame], built_demo: Lake) -> None:
    citizens = built_demo.frame("silver.citizens")
    assert omop["omop.person"].height == citizens.height
    assert set(omop["omop.person"]["person_id"]) == {person_id(k) for k in citizens["citizen_key"]}
    assert omop["omop.observation_period"].height == citizens.height
    claims = built_demo.frame("silver.claims")
    assert omop["omop.visit_occurrence"].height == claims.height  # every claimant is a citizen
    assert set(omop["omop.visit_occurrence"]["visit_concept_id"]) >= {9201, 9202, 581458}
    for name in (
        "omop.condition_occurrence",
        "omop.drug_exposure",
        "omop.procedure_occurrence",
        "omop.measurement",
        "omop.location",
        "omop.care_site",
        "omop.concept",
        "omop.cdm_source",
    ):
        assert omop[name].height > 0, name
    assert omop["omop.location"]["location_source_value"].sort().to_list() == [
        "24010",
        "24020",
        "24030",
        "24040",
        "24050",
    ]


def test_every_event_lies_in_its_persons_observation_period(
    omop: dict[str, pl.DataFrame],
) -> None:
    periods = omop["omop.observation_period"]
    for name, day in (
        ("omop.visit_occurrence", "visit_start_date"),
        ("omop.condition_occurrence", "condition_start_date"),
        ("omop.drug_exposure", "drug_exposure_start_date"),
        ("omop.procedure_occurrence", "procedure_date"),
        ("omop.measurement", "measurement_date"),
        ("omop.death", "death_date"),
    ):
        outside = (
            omop[name]
            .join(periods, on="person_id")
            .filter(
                (pl.col(day) < pl.col("observation_period_start_date"))
                | (pl.col(day) > pl.col("observation_period_end_date"))
            )
        )
        assert outside.is_empty(), name


def test_no_registration_number_name_or_citizen_key(
    built_demo: Lake, demo_city: City, omop: dict[str, pl.DataFrame]
) -> None:
    files: list[Path] = []
    for name in NAMES:
        files += parquet_files(built_demo.root / name.replace(".", "/"))
    names: set[str] = set()
    for folder, doc in demo_city.deliveries("registry/citizens"):
        for f in doc["files"]:
            text = (folder / f["name"]).read_bytes().decode(f["encoding"])
            frame = pl.read_csv(text.encode(), infer_schema=False, separator=f["delimiter"])
            names |= set(frame["NAME"].drop_nulls().to_list())
    assert len(names) > 1000
    assert_no_identifiers(files, names)
    for name, frame in omop.items():
        for column, dtype in frame.schema.items():
            if dtype == pl.String:
                held = frame[column].drop_nulls()
                assert not held.str.contains(CITIZEN_KEY.pattern).any(), (name, column)


def test_a_rebuild_replaces_every_table_with_the_same_rows(
    built_demo: Lake, omop: dict[str, pl.DataFrame], tmp_path: Path
) -> None:
    """The omop asset run twice more on a copy of the built sources: each table is replaced
    whole (no row twice) and every row keeps its id."""
    root = tmp_path / "lakehouse"
    for name in (*SOURCES.values(), *NAMES):
        shutil.copytree(
            built_demo.root / name.replace(".", "/"),
            root / name.replace(".", "/"),
            copy_function=os.link,
        )
    lake = Lake(root, built_demo.sources)
    for _ in range(2):
        result = lake.materialise([omop_tables])
        assert result.success
    for name in NAMES:
        again = lake.frame(name)
        if name == "omop.cdm_source":
            assert again.height == 1
            continue
        assert again.sort(pl.all()).equals(omop[name].sort(pl.all())), name


def test_the_dqd_report_on_the_demo_city_explains_every_failure(built_demo: Lake) -> None:
    """The data-quality report the build recorded (``gold.omop_dq_results``, the OMOP stage):
    every check type of OHDSI's list has a result (run, or not applicable with its reason),
    no fatal check fails, and every failed check carries its explanation: on this city the
    failures are the expected ones (codes shipped without a standard mapping), never unknown."""
    from lakehouse.catalog.dq import RESULTS

    results = built_demo.frame(RESULTS)
    assert results.height > 500
    types = {r["checkName"] for r in spec.check_types()}
    assert set(results["check_name"]) == types
    for name in types:
        rows = results.filter(pl.col("check_name") == name)
        assert rows.filter(
            pl.col("passed").is_null() & pl.col("not_applicable_reason").is_null()
        ).is_empty(), name
    assert results.filter(pl.col("passed").is_not_null()).height > 300
    failed = results.filter(pl.col("passed").not_())
    assert failed.filter(pl.col("severity") == "fatal").is_empty(), (
        failed.filter(pl.col("severity") == "fatal").select("check_id", "rows_failing").to_dicts()
    )
    unexplained = failed.filter(pl.col("explanation").is_null())
    assert unexplained.is_empty(), unexplained.select("check_id", "pct_failing").to_dicts()
    # The expected failures are there, explained: diagnoses carry KCD codes with concept 0.
    kcd = failed.filter(pl.col("check_id").str.starts_with("standardconceptrecordcompleteness"))
    assert "condition_occurrence" in set(kcd["cdm_table"])
