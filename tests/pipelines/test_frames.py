"""A finding located on a frame of a multi-frame instance, end to end into the SR and the viewer.

Real DICOM files dropped in the imaging inbox: a synthetic brain CT's slices as multi-frame
secondary captures, the infarct on frame 3 of one and frame 8 of another
(``tests.multiframe``), and the CT's own single-frame slices as a third study. They are indexed,
routed and scored by the shipped brain model through the Dagster assets; the finding row, its
``location`` and its DICOM SR (read back with highdicom, and re-issued verified) name the frame,
and the study viewer (``apps.common.viewer``, in Streamlit's AppTest) opens at that frame with
the AI's box drawn on it, and on no other frame. The single-frame study names no frame and opens
at its located slice, as before.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pydicom
import pytest
from streamlit.testing.v1 import AppTest

from apps.common.i18n import t
from lakehouse import dicom_store, sr
from pipelines.defs.imaging import imaging_index, imaging_routing
from pipelines.defs.scoring import ai_findings
from pipelines.score.scoring import uid
from tests.multiframe import brain_ct, file_bytes, multiframe_sc
from tests.pipelines.conftest import Lake
from tests.pipelines.test_scoring import run

pytestmark = [pytest.mark.integration, pytest.mark.slow]
FRAMES = (3, 8)  # the infarct's frame in each multi-frame study
CLINIC = "36100066"


def _study_uid(k: int) -> str:
    return uid("multi-frame study", str(k))


@pytest.fixture(scope="module")
def framed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, dict[str, Any]]:
    """The three studies scored; the truth by study: frame, box, and the instance's UID."""
    ct = brain_ct()
    sources = tmp_path_factory.mktemp("frames") / "sources"
    inbox = sources / "imaging" / CLINIC
    truth: dict[str, Any] = {}
    for k in FRAMES:
        frames, box = ct.on_frame(k)
        study = _study_uid(k)
        ds = multiframe_sc(frames, study, uid(study, "series"), uid(study, "instance"))
        ds.AccessionNumber = f"MF{k:04d}"
        (inbox / f"mf{k}").mkdir(parents=True)
        (inbox / f"mf{k}" / "IM0001.dcm").write_bytes(file_bytes(ds))
        truth[study] = {"frame": k, "box": box, "sop": str(ds.SOPInstanceUID), "of": len(frames)}
    (inbox / "slices").mkdir()
    for n, ds in enumerate(ct.slices):
        (inbox / "slices" / f"IM{n:04d}.dcm").write_bytes(file_bytes(ds))
    truth[str(ct.slices[0].StudyInstanceUID)] = {"frame": None}
    lake = Lake(sources.parent / "lakehouse", sources)
    run(lake, [imaging_index, imaging_routing, ai_findings])
    return lake, truth


def _overlap(a: Any, b: Any) -> float:
    """The intersection over union of two (x0, y0, x1, y1) boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(width, 0) * max(height, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _row(lake: Lake, study: str) -> dict[str, Any]:
    (row,) = lake.frame("ai.findings", pl.col("study_instance_uid") == study).iter_rows(named=True)
    assert row["status"] == "scored" and row["service"] == "brain", row
    return row


def test_a_finding_on_frame_k_names_the_frame_in_its_row_and_location(
    framed: tuple[Lake, dict[str, Any]],
) -> None:
    lake, truth = framed
    for study, expected in truth.items():
        row = _row(lake, study)
        where = json.loads(row["location"])
        assert row["frame_number"] == where["frame"] == expected["frame"], study
        assert where["type"] == "box" and where["sop_instance_uid"] == row["sop_instance_uid"]
        if expected["frame"] is not None:  # the multi-frame instance, boxed on the infarct
            assert row["positive"] and row["sop_instance_uid"] == expected["sop"]
            assert row["instances_scored"] == 1
            # The box is the heatmap's hot cells (16 source pixels a cell here): it meets the
            # infarct's, on the frame that holds it.
            assert _overlap(where["box"], expected["box"]) > 0, (where["box"], expected)


def test_the_sr_references_frame_k_and_its_verified_reissue_keeps_it(
    framed: tuple[Lake, dict[str, Any]],
) -> None:
    lake, truth = framed
    with lake.active():
        for study, expected in truth.items():
            row = _row(lake, study)
            report = pydicom.dcmread(io.BytesIO(dicom_store.get(row["sr_uri"])))
            (found,) = sr.read_findings(report)
            assert found["frame_number"] == expected["frame"], study
            assert found["sop_instance_uid"] == row["sop_instance_uid"]
            verdict = sr.Verdict(row["tracking_uid"], "accepted", "confirmed_on_reading")
            verified = sr.verified_report(
                report,
                [verdict],
                sr.Verifier("김^의사", "상무중앙영상의학과의원", "dr.kim"),
                uid(study, "verified series"),
                uid(study, "verified"),
                1,
                datetime.now(UTC),
            )
            (kept,) = sr.read_findings(verified)
            assert kept["frame_number"] == expected["frame"]
            assert sr.read_verdicts(verified) == [verdict]


def _viewer(study_uid: str) -> None:
    """The study viewer as the clinician's viewer and the citizen's own images call it, on the
    study's originals and heatmaps as the access layer reads them."""
    from types import SimpleNamespace

    from apps.common.viewer import images
    from lakehouse import queries
    from lakehouse.access.imaging import originals

    findings = queries.findings_of_studies((study_uid,))
    instances, datasets, heatmaps = originals(lambda query: query, study_uid, findings)
    study = SimpleNamespace(instances=instances, datasets=datasets, heatmaps=heatmaps)
    images(study, study_uid, findings.row(0, named=True))


def _boxes(at: AppTest) -> list[list[float]]:
    (chart,) = at.get("plotly_chart")
    shapes = json.loads(chart.proto.spec)["layout"].get("shapes", [])
    return [[s["x0"], s["y0"], s["x1"], s["y1"]] for s in shapes if s["type"] == "rect"]


@pytest.mark.parametrize("k", FRAMES)
def test_the_viewer_opens_at_frame_k_with_the_box_drawn_there(
    framed: tuple[Lake, dict[str, Any]], k: int
) -> None:
    lake, truth = framed
    study = _study_uid(k)
    row = _row(lake, study)
    box = json.loads(row["location"])["box"]
    with lake.active():
        at = AppTest.from_function(_viewer, args=(study,), default_timeout=60)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        (frame,) = [s for s in at.slider if s.label == t("triage.viewer.frame", "ko")]
        assert (frame.value, frame.min, frame.max) == (k, 1, truth[study]["of"])
        assert _boxes(at) == [box, box]  # the outline over its halo, on frame k
        frame.set_value(1).run()
        assert not at.exception, [e.value for e in at.exception]
        assert _boxes(at) == []  # another frame: no box


def test_a_single_frame_series_opens_at_the_located_slice_with_no_frame_control(
    framed: tuple[Lake, dict[str, Any]],
) -> None:
    lake, truth = framed
    (study,) = [s for s, expected in truth.items() if expected["frame"] is None]
    row = _row(lake, study)
    with lake.active():
        at = AppTest.from_function(_viewer, args=(study,), default_timeout=60)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        instances = lake.frame("silver.imaging_instances", pl.col("study_instance_uid") == study)
        located = instances.filter(pl.col("sop_instance_uid") == row["sop_instance_uid"])
        labels = [s.label for s in at.slider]
        assert t("triage.viewer.frame", "ko") not in labels
        (position,) = [s for s in at.slider if s.label == t("triage.viewer.slice", "ko")]
        assert position.value == located["instance_number"][0]
        assert _boxes(at) == [json.loads(row["location"])["box"]] * 2
