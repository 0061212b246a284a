"""A vendor's model drops in with its own contract and scores the city's chest radiographs with no
code change (issue 21, part 2): real DICOM from the small city, real Dagster runs of indexing,
routing and scoring, the models built here with ``onnx.helper`` (``tests/models/vendor.py``).
"""

from __future__ import annotations

import io
import json
import math
import shutil
from copy import deepcopy
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pydicom
import pytest
from pydicom.pixels.processing import apply_modality_lut

from lakehouse import dicom_store
from lakehouse.config import environment
from models.runtime.registry import service
from models.training.files import device_uid
from pipelines.defs.imaging import imaging_index, imaging_routing
from pipelines.defs.resources import Imaging, Scoring
from pipelines.defs.scoring import ai_findings
from pipelines.score import scoring
from tests.conftest import City
from tests.models import vendor
from tests.pipelines.conftest import Lake

pytestmark = pytest.mark.integration
FINDINGS = "ai.findings"


def run(lake: Lake, assets: list[dg.AssetsDefinition], models: Path) -> None:
    """The assets in process, as ``gjh build`` runs them, with the models folder ``models``."""
    resources = lake.resources | {
        "imaging": Imaging(quiet_period_s=0, settle_s=0, workers=2),
        "scoring": Scoring(batch=32, workers=2),
    }
    with lake.active(), environment(GJH_MODELS_DIR=str(models)):
        dg.materialize(assets, resources=resources, instance=dg.DagsterInstance.ephemeral())


@pytest.fixture(scope="module")
def city_lake(small_city: City, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The small city's uploads indexed, routed and scored by the shipped 64 x 64 greyscale
    classifiers (chest, spine, mammography, prostate; the other services paused)."""
    root = tmp_path_factory.mktemp("vendor_contract")
    shutil.copytree(small_city.out / "imaging", root / "sources" / "imaging")
    lake = Lake(root / "lakehouse", root / "sources")
    shipped = vendor.models_folder(root / "shipped", {}, vendor.WRAPPABLE)
    run(lake, [imaging_index, imaging_routing, ai_findings], shipped)
    return lake


def test_vendors_models_score_the_same_studies_by_their_declared_contracts(
    city_lake: Lake, tmp_path: Path
) -> None:
    """The shipped models behind a vendor's tensors (channels last, BGR, 0..255 with
    per-channel mean/std, the score the second entry of ``probabilities``, the heatmap channel 1
    of a channels-last ``cam``) give each study the shipped model's score and location."""
    made = {
        s: vendor.Vendor(vendor.wrapped(s), vendor.wrapped_config(s), "2.0.0")
        for s in vendor.WRAPPABLE
    }
    run(city_lake, [ai_findings], vendor.models_folder(tmp_path, made, vendor.WRAPPABLE))
    findings = city_lake.frame(FINDINGS)
    shipped = findings.filter(pl.col("algorithm_version") == "1.0.0")
    vendors = findings.filter(pl.col("algorithm_version") == "2.0.0")
    assert set(findings["algorithm_version"]) == {"1.0.0", "2.0.0"}
    assert set(vendors["service"]) == set(vendor.WRAPPABLE)
    assert vendors.height == shipped.height > 10
    assert (vendors["status"] == "scored").all(), vendors.filter(pl.col("status") != "scored")
    assert set(vendors["device_uid"]) == {device_uid(m.onnx) for m in made.values()}
    pairs = shipped.join(vendors, on=["study_instance_uid", "service"], suffix="_vendor")
    assert pairs.height == shipped.height
    assert pairs["positive"].any() and not pairs["positive"].all()
    for row in pairs.iter_rows(named=True):
        assert row["score_vendor"] == pytest.approx(row["score"], abs=2e-6)
        assert row["positive_vendor"] == row["positive"]
        assert row["sop_instance_uid_vendor"] == row["sop_instance_uid"]
        box, box_vendor = json.loads(row["location"]), json.loads(row["location_vendor"])
        assert box_vendor == box and box["type"] == "box"
    with city_lake.active():
        heatmap = np.load(io.BytesIO(dicom_store.get(vendors["heatmap_uri"][0])))
    assert heatmap.shape == (8, 8)


def _chest_instance(lake: Lake) -> tuple[dict[str, object], dict[str, object], pydicom.Dataset]:
    """A study the router sent to the chest service, one of its instances and that original."""
    routing = lake.frame("silver.imaging_routing", pl.col("service") == "chest")
    row = (
        lake.frame("silver.imaging_instances")
        .join(
            routing.select("study_instance_uid", "series_instance_uid"),
            on=["study_instance_uid", "series_instance_uid"],
        )
        .row(0, named=True)
    )
    study = lake.frame(
        "silver.imaging_studies", pl.col("study_instance_uid") == row["study_instance_uid"]
    ).row(0, named=True)
    with lake.active():
        ds = pydicom.dcmread(io.BytesIO(dicom_store.get(row["file_uri"])))
    return study, row, ds


def _stored(lake: Lake, ds: pydicom.Dataset, pixels: np.ndarray, sop: str) -> str:
    """``ds`` with these pixels, uncompressed MONOCHROME2, stored under a new instance UID."""
    copy = deepcopy(ds)
    copy.set_pixel_data(pixels, "MONOCHROME2", int(ds.BitsStored))
    copy.SOPInstanceUID = copy.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.UID(sop)
    key = dicom_store.object_key(ds.StudyInstanceUID, ds.SeriesInstanceUID, sop)
    buffer = io.BytesIO()
    copy.save_as(buffer, enforce_file_format=True)
    with lake.active():
        dicom_store.put(key, buffer.getvalue(), replace=True)
    return key


def test_a_non_square_uint8_model_with_a_fixed_batch_locates_what_it_sees(
    city_lake: Lake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 96 x 128 channels-last uint8 model, batch fixed at 1, a fixed window, logits with a
    softmax, its heatmap channel 1 of a channels-first ``cam``: a bright square painted into a
    city radiograph (everything else kept below the window) is scored positive and located
    where it was painted; the same radiograph without it is negative."""
    study, row, ds = _chest_instance(city_lake)
    top = (1 << int(ds.BitsStored)) - 1
    pixels = np.asarray(ds.pixel_array)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        pixels = top - pixels
    plain = np.minimum(pixels, top - 16).astype(pixels.dtype)
    rows, columns = plain.shape
    scale = min(96 / rows, 128 / columns)  # the source's placement in the 96 x 128 input
    cell = 8 / scale  # one heatmap cell, in source pixels
    side = math.ceil(3 * cell)
    y0, x0 = rows // 4, columns // 2
    painted = plain.copy()
    painted[y0 : y0 + side, x0 : x0 + side] = top
    bright = float(apply_modality_lut(np.array([top]), ds)[0])
    dim = float(apply_modality_lut(np.array([top - 16]), ds)[0])
    assert abs(bright - dim) >= 2
    model = vendor.Vendor(
        vendor.bright_spot(), vendor.bright_spot_config(bright - 0.5 * (bright - dim), 2), "3.0.0"
    )
    models = vendor.models_folder(tmp_path, {"chest": model}, vendor.WRAPPABLE)
    monkeypatch.setenv("GJH_MODELS_DIR", str(models))
    chest = service("chest")
    assert chest.version == "3.0.0" and chest.config.batch == 1
    jobs = [
        scoring.Job(study, [row | {"sop_instance_uid": f"2.25.{n}", "file_uri": key}])
        for n, key in (
            (91, _stored(city_lake, ds, painted, "2.25.91")),
            (92, _stored(city_lake, ds, plain, "2.25.92")),
            (93, _stored(city_lake, ds, painted, "2.25.93")),
        )
    ]
    with city_lake.active(), scoring.Scorers() as scorers:
        out = list(scorers.score([(chest, jobs)], datetime.now(UTC)))
        heatmap = np.load(io.BytesIO(dicom_store.get(out[0]["heatmap_uri"])))
    assert [r["status"] for r in out] == ["scored"] * 3, out
    assert [r["positive"] for r in out] == [True, False, True]
    assert out[0]["score"] > 0.999 and out[1]["score"] < 0.001
    assert heatmap.shape == (12, 16) and heatmap.max() == pytest.approx(1.0, abs=1e-3)
    for found in (out[0], out[2]):
        where = json.loads(found["location"])
        assert where["type"] == "box" and where["sop_instance_uid"] == found["sop_instance_uid"]
        bx0, by0, bx1, by1 = where["box"]
        for got, want in ((bx0, x0), (by0, y0), (bx1, x0 + side), (by1, y0 + side)):
            assert abs(got - want) <= cell, (where["box"], (x0, y0, x0 + side, y0 + side), cell)
