"""Turnaround (``Access.triage_stats``) on the built demo city's real tables: measured from when a
study had arrived whole on the platform (its last instance taken in), not from its acquisition,
so a year of studies a first build scored at once does not read as a year's delay, and a study
acquired long ago that arrived recently shows the hours it really waited."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import pytest

from lakehouse import delta
from lakehouse.access import Access, Principal
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.integration]
LONG_AGO = datetime(2019, 3, 14, 1, 30, tzinfo=UTC)  # alone in its month of acquisition


@pytest.fixture(scope="module", autouse=True)
def lake(platform_lake: Lake) -> Iterator[Lake]:
    with platform_lake.active():
        yield platform_lake


def clinician(institution: str, clock: Any = None) -> Access:
    principal = Principal("dr.tat", "clinician", "의사", institution=institution, origin="test")
    return Access(principal, clock=clock) if clock else Access(principal)


def test_a_first_build_of_a_years_studies_does_not_read_as_a_years_delay(lake: Lake) -> None:
    findings = lake.frame("ai.findings")
    studies = lake.frame("silver.imaging_studies")
    acquired = findings.join(studies, on="study_instance_uid").select(
        (pl.col("scored_at") - pl.col("study_datetime")).dt.total_hours().median()
    )
    assert acquired.item() > 24 * 30  # acquired months before the build scored them
    city = Access(Principal("admin", "admin", origin="test")).triage_stats()
    assert city.height and city["hours_to_score"].drop_nulls().len() == city.height
    hours = city["hours_to_score"].to_list()
    assert max(hours) < 1  # taken in and scored in the same build
    assert min(hours) >= 0


def test_a_study_acquired_long_ago_that_arrived_recently_waited_hours(lake: Lake) -> None:
    findings = lake.frame("ai.findings", pl.col("status") == "scored")
    instances = lake.frame("silver.imaging_instances")
    several = instances.group_by("study_instance_uid").len().filter(pl.col("len") > 1)
    finding = (
        findings.filter(pl.col("study_instance_uid").is_in(several["study_instance_uid"].implode()))
        .sort("study_instance_uid")
        .row(0, named=True)
    )
    uid, scored = finding["study_instance_uid"], finding["scored_at"]
    # Acquired years ago, its instances taken in three hours before scoring; a late instance
    # that reopened it after scoring does not make the wait negative.
    study = lake.frame("silver.imaging_studies", pl.col("study_instance_uid") == uid)
    delta.merge("silver.imaging_studies", study.with_columns(study_datetime=pl.lit(LONG_AGO)))
    mine = instances.filter(pl.col("study_instance_uid") == uid).sort("sop_instance_uid")
    arrived = scored - timedelta(hours=3)
    stamps = [arrived - timedelta(minutes=5 * i) for i in range(mine.height - 1)]
    stamps.append(scored + timedelta(hours=10))
    delta.merge(
        "silver.imaging_instances",
        mine.with_columns(
            indexed_at=pl.Series(stamps, dtype=mine.schema["indexed_at"]),
            study_datetime=pl.lit(LONG_AGO),
        ),
    )
    # The first decision five hours after it arrived.
    clinician(finding["institution"], clock=lambda: arrived + timedelta(hours=5)).decide(
        finding["tracking_uid"], "accepted", "confirmed_on_reading"
    )
    stats = clinician(finding["institution"]).triage_stats()
    month = LONG_AGO.astimezone(UTC).strftime("%Y-%m")
    row = stats.filter((pl.col("service") == finding["service"]) & (pl.col("month") == month))
    assert row.height == 1
    assert row["hours_to_score"][0] == pytest.approx(3.0)
    assert row["hours_to_decision"][0] == pytest.approx(5.0)
    assert row["decided"][0] == 1
