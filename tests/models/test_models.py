"""The shipped reference models: registry, files, cards, ONNX outputs against torch's.

These run with the runtime dependencies only (onnxruntime, numpy): ``reference.json`` holds what
torch returned for seeded inputs when the model was trained, so no torch is needed here.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from models.runtime.services import listed
from models.training import card, files, metrics

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
MAX_ONNX_BYTES = 1_000_000


def _registry() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = tomllib.loads(
        (MODELS / "registry.toml").read_text(encoding="utf-8")
    )["service"]
    return entries


ENTRIES = _registry()
IDS = [e["service"] for e in ENTRIES]


def _config(entry: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = tomllib.loads(
        (MODELS / entry["folder"] / "config.toml").read_text(encoding="utf-8")
    )
    return config


def _onnx(entry: dict[str, Any]) -> Path:
    return MODELS / entry["folder"] / f"{entry['folder']}-{entry['version']}.onnx"


@pytest.fixture(scope="module")
def sessions() -> dict[str, ort.InferenceSession]:
    return {
        e["service"]: ort.InferenceSession(str(_onnx(e)), providers=["CPUExecutionProvider"])
        for e in ENTRIES
    }


def test_the_registry_lists_the_twelve_services_with_their_names() -> None:
    assert len(ENTRIES) == 12
    assert [e["service"] for e in ENTRIES] == list(listed())
    for entry in ENTRIES:
        assert entry["name_ko"] and entry["name_en"] and entry["modalities"]
        assert entry["folder"] == entry["service"]


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_each_entry_has_its_files_and_a_device_uid_from_the_onnx_hash(
    entry: dict[str, Any],
) -> None:
    folder = MODELS / entry["folder"]
    for name in ("config.toml", "card.md", "train.py", "reference.json"):
        assert (folder / name).is_file(), name
    assert re.fullmatch(r"\d+\.\d+\.\d+", entry["version"])
    path = _onnx(entry)
    assert path.is_file()
    assert [p.name for p in folder.glob("*.onnx")] == [path.name]
    data = path.read_bytes()
    assert len(data) < MAX_ONNX_BYTES
    digest = hashlib.sha256(data).hexdigest()[:32]
    assert entry["device_uid"] == f"2.25.{int(digest, 16)}"
    assert entry["device_uid"] == files.device_uid(data)
    assert entry["status"] in {"active", "paused", "retired"}
    threshold = entry["threshold"]
    assert isinstance(threshold, float) and np.isfinite(threshold)
    if _config(entry)["kind"] == "classification":
        assert 0.0 < threshold < 1.0
    else:
        assert threshold > 0.0


def test_the_registry_loads_through_the_scorers_reader() -> None:
    from models.runtime import registry as model_registry

    model_registry._registry.cache_clear()
    try:
        loaded = model_registry._registry(MODELS.resolve())
    finally:
        model_registry._registry.cache_clear()
    assert sorted(loaded) == sorted(IDS)
    for name, service in loaded.items():
        assert service.model_path.is_file(), name
        # Each model's own version (ecg was retrained for issue 21 as 1.1.0).
        assert service.version == next(e for e in ENTRIES if e["service"] == name)["version"]


def _inputs(entry: dict[str, Any], reference: dict[str, Any]) -> dict[str, np.ndarray]:
    config = _config(entry)
    shape = tuple(reference["inputs"]["image"])
    x = files.reference_inputs(reference["seed"], shape, config["input"] == "waveform")
    assert float(x.astype(np.float64).sum()) == pytest.approx(reference["input_sum"]["image"])
    feeds = {config["inputs"]["image"]: x}
    if "sex" in config["inputs"]:
        sex = np.asarray(reference["sex"], dtype=np.float32).reshape(-1, 1)
        assert list(sex.shape) == reference["inputs"]["sex"]
        feeds[config["inputs"]["sex"]] = sex
    return feeds


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_onnxruntime_reproduces_the_training_frameworks_outputs(
    entry: dict[str, Any], sessions: dict[str, ort.InferenceSession]
) -> None:
    reference = json.loads((MODELS / entry["folder"] / "reference.json").read_text("utf-8"))
    assert reference["service"] == entry["service"]
    assert reference["version"] == entry["version"]
    session = sessions[entry["service"]]
    names = [o.name for o in session.get_outputs()]
    got = dict(zip(names, session.run(None, _inputs(entry, reference)), strict=True))
    assert set(reference["outputs"]) == set(names)
    tolerance = reference["tolerance"]
    assert tolerance["absolute"] <= 1e-4 and tolerance["relative"] <= 1e-4
    for name, want in reference["outputs"].items():
        assert got[name].shape == np.asarray(want).shape, name
        np.testing.assert_allclose(
            got[name],
            np.asarray(want),
            rtol=tolerance["relative"],
            atol=tolerance["absolute"],
            err_msg=name,
        )


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_outputs_match_the_config(
    entry: dict[str, Any], sessions: dict[str, ort.InferenceSession]
) -> None:
    config = _config(entry)
    session = sessions[entry["service"]]
    inputs = {i.name: i for i in session.get_inputs()}
    assert set(inputs) == set(config["inputs"].values())
    image = inputs[config["inputs"]["image"]]
    if config["input"] == "waveform":
        wave = config["waveform"]
        samples = round(wave["rate_hz"] * wave["seconds"])
        assert image.shape[1:] == [wave["leads"], samples]
    else:
        spec = config["image"]
        assert image.shape[1:] == [spec["channels"], spec["size"], spec["size"]]
    outputs = config["outputs"]
    expected = ["score", "heatmap"] if config["kind"] == "classification" else ["value", "heatmap"]
    names = [outputs[k] for k in expected]
    assert [o.name for o in session.get_outputs()] == names
    feeds: dict[str, np.ndarray] = {image.name: np.zeros((5, *image.shape[1:]), np.float32)}
    if "sex" in config["inputs"]:
        feeds[config["inputs"]["sex"]] = np.ones((5, 1), np.float32)
    first, heatmap = session.run(names, feeds)
    assert first.shape == (5,) and first.dtype == np.float32
    assert np.isfinite(first).all() and np.isfinite(heatmap).all()
    if config["kind"] == "classification":
        assert ((first >= 0) & (first <= 1)).all()
    else:
        assert outputs["unit"] in {"month", "mm"}
        assert outputs["scale"] in {"none", "image_extent_mm"}
        assert outputs["flag"] in {"above", "deviation"}
    if config["input"] == "waveform":
        assert heatmap.ndim == 2 and heatmap.shape[0] == 5
        assert samples % heatmap.shape[1] == 0
    else:
        assert heatmap.ndim == 3 and heatmap.shape[0] == 5
        assert spec["size"] % heatmap.shape[1] == 0 and heatmap.shape[1] == heatmap.shape[2]


NUMBER = r"\d+(?:\.\d+)?"


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_each_card_states_the_synthetic_origin_and_measured_metrics(entry: dict[str, Any]) -> None:
    text = (MODELS / entry["folder"] / "card.md").read_text(encoding="utf-8")
    assert card.STATEMENT_EN in text and card.STATEMENT_KO in text
    assert "TODO" not in text and "nan" not in text.lower().split()
    ci = rf"{NUMBER} \(95% CI {NUMBER}-{NUMBER}\)"
    rate = rf"{NUMBER} \(\d+/\d+; Wilson 95% CI {NUMBER}-{NUMBER}\)"
    if _config(entry)["kind"] == "classification":
        patterns = [
            rf"- AUROC: {ci}",
            rf"- Sensitivity at {NUMBER}: {rate}",
            rf"- Specificity at {NUMBER}: {rate}",
            rf"- Brier score: {NUMBER}",
            rf"- Expected calibration error \(10 equal-width bins\): {NUMBER}",
            r"\| predicted \| studies \| mean predicted \| observed abnormal \|",
        ]
    else:
        patterns = [
            rf"- MAE: {NUMBER} \w+ \(95% CI {NUMBER}-{NUMBER}\)",
            rf"- Flag sensitivity at {NUMBER} \w+: {rate}",
            rf"- Flag specificity at {NUMBER} \w+: {rate}",
        ]
    patterns += [
        rf"- ONNX check: max \|torch - onnxruntime\| over the \d+ test inputs, all outputs: "
        rf"{NUMBER}(?:e-\d+)?",
        rf"- Threshold: \*\*{re.escape(format(entry['threshold'], 'g'))}",
        rf"Device UID \(DICOM, from the ONNX file's SHA-256\): `{re.escape(entry['device_uid'])}`",
    ]
    for pattern in patterns:
        assert re.search(pattern, text), pattern


def test_auroc_counts_ties_as_half_and_matches_the_pairwise_definition() -> None:
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200), 1)  # many ties
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert metrics.auroc(labels, scores) == pytest.approx(pairs)
    low, high = metrics.bootstrap_auroc(labels, scores, seed=1, n=200)
    assert low < metrics.auroc(labels, scores) < high


def test_the_threshold_keeps_the_target_sensitivity_and_maximises_youden() -> None:
    rng = np.random.default_rng(5)
    labels = np.repeat([0, 1], 100)
    scores = np.concatenate([rng.random(100) * 0.7, 0.3 + rng.random(100) * 0.7])
    chosen = metrics.choose_threshold(labels, scores, 0.9)
    flagged = scores >= chosen.threshold
    assert flagged[labels == 1].mean() == chosen.sensitivity >= 0.9
    assert (~flagged[labels == 0]).mean() == chosen.specificity
    for t in np.unique(scores):  # no threshold with enough sensitivity does better
        f = scores >= t
        if f[labels == 1].mean() >= 0.9:
            youden = f[labels == 1].mean() + (~f[labels == 0]).mean()
            assert youden <= chosen.sensitivity + chosen.specificity + 1e-12
    # Separated classes: the threshold sits in the gap and both rates are 1.
    gap = metrics.choose_threshold(
        labels, np.concatenate([scores[:100] * 0.4, 0.6 + scores[100:] * 0.4]), 0.9
    )
    assert 0.4 * 0.7 < gap.threshold < 0.6 + 0.4 * 0.3 and gap.sensitivity == gap.specificity == 1
    strict = metrics.choose_threshold(labels, scores * 50, 0.9, strict=True, decimals=1)
    assert ((scores * 50 > strict.threshold)[labels == 1]).mean() >= 0.9


def test_calibration_summaries() -> None:
    labels = np.array([0, 0, 1, 1])
    probs = np.array([0.1, 0.3, 0.7, 0.9])
    assert metrics.brier(labels, probs) == pytest.approx(0.05)
    table = metrics.reliability(labels, probs)
    assert sum(b.count for b in table) == 4
    assert metrics.ece(table) == pytest.approx(0.2)
    a, b = metrics.platt(np.array([-2.0, -1.0, 1.0, 2.0, 0.5, -0.5]), np.array([0, 0, 1, 1, 0, 1]))
    assert a > 0 and np.isfinite(b)
