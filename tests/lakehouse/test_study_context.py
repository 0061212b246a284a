"""The patient beside a study, on the built demo city: each window of the context is the time up
to the study's own day (a diagnosis dated after the study never shows; one eleven months before
does; one thirteen months before does not), and prior studies carry their findings as codes for
the page to name."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import polars as pl
import pytest

from lakehouse import buckets, delta
from lakehouse.access import Access, Principal
from lakehouse.access.imaging import window
from lakehouse.catalog import table
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module", autouse=True)
def lake(platform_lake: Lake) -> Iterator[Lake]:
    with platform_lake.active():
        yield platform_lake


@pytest.fixture(scope="module")
def study(lake: Lake) -> dict[str, Any]:
    """The latest scored study of a citizen (a registration number, so claims are linked)."""
    studies = lake.frame(
        "silver.imaging_studies",
        pl.col("citizen_key").is_not_null() & pl.col("study_date").is_not_null(),
    )
    scored = lake.frame("ai.findings")["study_instance_uid"].unique().implode()
    return (
        studies.filter(pl.col("study_instance_uid").is_in(scored))
        .sort("study_date", "study_instance_uid", descending=[True, False])
        .row(0, named=True)
    )


def timeline_rows(
    subject: str, rows: list[tuple[date, str, str]], institution: str | None = None
) -> pl.DataFrame:
    """Diagnoses and prescriptions on the citizen's timeline, as the gold job writes them, as
    recorded by ``institution``."""
    return pl.DataFrame(
        [
            {
                "citizen_key": subject,
                "event_date": on,
                "kind": kind,
                "code": code,
                "name": f"test {code}",
                "institution": institution,
                "source_ref": f"test:{kind}:{code}",
                "key_bucket": buckets.key_bucket(subject),
            }
            for on, kind, code in rows
        ],
        schema=table("gold.citizen_timeline").polars_schema(),
    )


def test_each_window_ends_on_the_study_day(lake: Lake, study: dict[str, Any]) -> None:
    day: date = study["study_date"]
    subject = study["citizen_key"]
    planted = [
        (day + timedelta(days=30), "diagnosis", "Z99.1"),  # after the study
        (day + timedelta(days=1), "diagnosis", "Z99.2"),  # the next day
        (day, "diagnosis", "Z99.3"),  # the study's day
        (day - timedelta(days=335), "diagnosis", "Z99.4"),  # 11 months before
        (day - timedelta(days=395), "diagnosis", "Z99.5"),  # 13 months before
        (day + timedelta(days=7), "prescription", "999901ATB"),  # after the study
        (day - timedelta(days=60), "prescription", "999902ATB"),  # 2 months before
        (day - timedelta(days=120), "prescription", "999903ATB"),  # 4 months before
    ]
    # Recorded by the study's institution: what its own clinician sees of the patient.
    delta.append("gold.citizen_timeline", timeline_rows(subject, planted, study["institution"]))
    layer = Access(
        Principal("dr.ctx", "clinician", "의사", institution=study["institution"], origin="test")
    )
    context = layer.patient_context(study["study_instance_uid"])
    diagnoses = set(context.diagnoses["code"].to_list())
    prescriptions = set(context.prescriptions["code"].to_list())
    assert {"Z99.3", "Z99.4"} <= diagnoses
    assert not {"Z99.1", "Z99.2", "Z99.5"} & diagnoses
    assert "999902ATB" in prescriptions
    assert not {"999901ATB", "999903ATB"} & prescriptions
    assert context.diagnoses["event_date"].is_between(day - timedelta(days=365), day).all()
    assert context.prescriptions["event_date"].is_between(day - timedelta(days=90), day).all()
    # The viewer's one read of the study shows the same windows.
    opened = layer.open_study(study["study_instance_uid"])
    assert opened.context.diagnoses.equals(context.diagnoses)


def test_the_window_keeps_each_code_once_at_its_latest_date_up_to_the_study() -> None:
    day = date(2025, 6, 30)
    rows = timeline_rows(
        "C" + "0" * 32,
        [
            (date(2025, 7, 2), "diagnosis", "I10"),
            (date(2025, 6, 1), "diagnosis", "I10"),
            (date(2025, 1, 1), "diagnosis", "I10"),
            (date(2025, 3, 1), "diagnosis", "E11"),
            (date(2025, 6, 2), "prescription", "I10"),
        ],
    ).drop("key_bucket")
    shown = window(rows, "diagnosis", day, 365)
    assert shown.select("code", "event_date").rows() == [
        ("I10", date(2025, 6, 1)),
        ("E11", date(2025, 3, 1)),
    ]


def test_prior_studies_carry_their_findings_as_codes(lake: Lake) -> None:
    findings = lake.frame("ai.findings")
    # Two studies of one patient at one institution: what its clinician sees without the
    # patient's say (another institution's studies need it: tests/lakehouse/test_access_rules).
    twice = findings.group_by("patient_key", "institution").agg(
        pl.col("study_instance_uid").unique()
    )
    studies = next(
        sorted(s) for _, _, s in twice.sort("patient_key", "institution").iter_rows() if len(s) > 1
    )
    mine = findings.filter(pl.col("study_instance_uid") == studies[0])
    layer = Access(
        Principal("dr.prior", "clinician", "의사", institution=mine["institution"][0], origin="t")
    )
    priors = layer.patient_context(studies[0]).priors
    other = priors.filter(pl.col("study_instance_uid") == studies[1]).row(0, named=True)
    theirs = findings.filter(pl.col("study_instance_uid") == studies[1])
    assert sorted(zip(other["services"], other["finding_codes"], strict=True)) == sorted(
        set(theirs.select("service", "finding_code").rows())
    )
