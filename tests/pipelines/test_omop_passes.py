"""The OMOP tables built in passes of citizen key buckets (``pipelines.defs.omop``): the same
rows, ids and counts of unknown persons as one pass over all of silver
(``pipelines.transform.omop.build``), and each table still replaced in one Delta commit."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from lakehouse import delta
from lakehouse import read as lake_read
from pipelines.defs import omop
from pipelines.transform.omop import Sources, build
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.slow, pytest.mark.integration]


def _unknown(result: dg.ExecuteInProcessResult) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        value = materialization.metadata[omop.UNKNOWN].value
        assert isinstance(value, int)
        counts[materialization.asset_key.to_user_string().replace("/", ".")] = value
    return counts


def test_a_build_in_passes_gives_the_one_pass_tables_each_in_one_commit(
    built_demo: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A copy of the sources only, so the session's built lake keeps its own versions.
    lake = Lake(tmp_path / "lakehouse", built_demo.sources)
    for name in omop.SOURCES.values():
        source = built_demo.root / name.replace(".", "/")
        if source.exists():
            shutil.copytree(source, lake.root / name.replace(".", "/"))
    with lake.active():
        src = Sources(**{f: lake_read.frame(name) for f, name in omop.SOURCES.items()})
        expected = build(src, omop.as_of(), datetime.now(omop.KOREA).date())
    assert sum(expected.unknown_person.values()) > 0  # the faults put some rows out

    monkeypatch.setattr(omop, "BUCKETS_PER_PASS", 64)  # one pass: creates every table
    lake.materialise([omop.omop_tables])
    with lake.active():
        versions = {name: delta.open_table(name).version() for name in omop.TABLES}

    monkeypatch.setattr(omop, "BUCKETS_PER_PASS", 4)  # sixteen passes
    monkeypatch.setattr(omop, "MOST_TOUCHED", -1)  # rebuilt whole, not brought up to date
    result = lake.materialise([omop.omop_tables])
    with lake.active():
        for name in omop.TABLES:
            # One commit of rows each; the state table's record of its sources is one more.
            own = name == omop.STATE
            assert delta.open_table(name).version() == versions[name] + 1 + own, name
    for name in omop.TABLES:
        want = expected.tables[name]
        got = lake.frame(name)
        assert want.height > 0 or name in ("omop.provider", "omop.observation"), name
        assert_frame_equal(got.sort(pl.all()), want.sort(pl.all()), check_dtypes=True)
    assert _unknown(result) == {name: expected.unknown_person.get(name, 0) for name in omop.TABLES}
