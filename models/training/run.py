"""One service's whole training run: data, fit, calibrate, threshold, export, check, card, registry.

``models/<service>/train.py`` declares a ``ServiceSpec`` and calls ``main``. The run is
deterministic for a given machine: fixed seeds for the synthetic studies, the weights and the
batches, one CPU thread. It writes, in ``models/<service>/``: the ONNX file, ``config.toml``,
``card.md`` and ``reference.json``, and updates the service's entry in ``models/registry.toml``.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx  # type: ignore[import-not-found,unused-ignore]
import onnxruntime as ort
import torch  # type: ignore[import-not-found,unused-ignore]
from numpy.typing import NDArray
from torch import nn

from models.runtime import services
from models.training import card, evaluate, files, fit, leads, metrics
from models.training.data import Split, split_data, study_max, study_mean
from models.training.net import ExportedClassifier, ExportedRegressor, parameters
from models.training.spec import MODELS_DIR, SPLITS, ServiceSpec

log = logging.getLogger(__name__)
TOLERANCE = 1e-4


def _sigmoid(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -60, 60))), dtype=np.float64)


def _names(spec: ServiceSpec) -> tuple[list[str], list[str]]:
    inputs = ["image", "sex"] if spec.sex_input else ["image"]
    outputs = ["score", "heatmap"] if spec.kind == "classification" else ["value", "heatmap"]
    return inputs, outputs


def _feeds(spec: ServiceSpec, x: NDArray[np.float32], sex: NDArray[np.float32]) -> dict[str, Any]:
    return {"image": x, "sex": sex} if spec.sex_input else {"image": x}


def export(spec: ServiceSpec, module: nn.Module, sample: NDArray[np.float32]) -> bytes:
    """The module as ONNX (opset 17, TorchScript exporter, dynamic batch), checked."""
    inputs, outputs = _names(spec)
    args: tuple[Any, ...] = (torch.from_numpy(sample[:2]),)
    if spec.sex_input:
        args = (*args, torch.zeros(2, 1))
    buffer = io.BytesIO()
    module.eval()
    torch.onnx.export(
        module,
        args,
        buffer,
        dynamo=False,
        opset_version=17,
        input_names=inputs,
        output_names=outputs,
        dynamic_axes={name: {0: "batch"} for name in (*inputs, *outputs)},
    )
    data = buffer.getvalue()
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    return data


def _both(
    spec: ServiceSpec, module: nn.Module, session: ort.InferenceSession, split: Split
) -> tuple[dict[str, NDArray[np.float32]], float]:
    """onnxruntime's outputs on every input of ``split`` and the largest |torch - ort|."""
    _inputs, names = _names(spec)
    sexes = split.sex[split.study].reshape(-1, 1).astype(np.float32)
    out: dict[str, list[NDArray[np.float32]]] = {n: [] for n in names}
    diff = 0.0
    with torch.no_grad():
        for start in range(0, len(split.x), 256):
            x, s = split.x[start : start + 256], sexes[start : start + 256]
            got = session.run(names, _feeds(spec, x, s))
            args = (
                (torch.from_numpy(x), torch.from_numpy(s))
                if spec.sex_input
                else (torch.from_numpy(x),)
            )
            want = module(*args)
            for name, g, w in zip(names, got, want, strict=True):
                out[name].append(np.asarray(g))
                diff = max(diff, float(np.max(np.abs(np.asarray(g) - w.numpy()))))
    return {n: np.concatenate(v) for n, v in out.items()}, diff


def _reference(
    spec: ServiceSpec, module: nn.Module, sample_shape: tuple[int, ...]
) -> dict[str, Any]:
    shape = (files.REFERENCE_BATCH, *sample_shape)
    x = files.reference_inputs(spec.seed, shape, spec.is_waveform)
    sex = files.reference_sex()
    _inputs, names = _names(spec)
    with torch.no_grad():
        args = (
            (torch.from_numpy(x), torch.from_numpy(sex))
            if spec.sex_input
            else (torch.from_numpy(x),)
        )
        outputs = module(*args)
    ref: dict[str, Any] = {
        "service": spec.service,
        "version": spec.version,
        "framework": f"torch {torch.__version__}",
        "seed": spec.seed,
        "generator": "numpy.random.default_rng(seed).random(shape, dtype=float32)"
        + (" * 2 - 1 (mV)" if spec.is_waveform else ""),
        "inputs": {"image": list(shape)},
        "input_sum": {"image": float(x.astype(np.float64).sum())},
        "tolerance": {"absolute": TOLERANCE, "relative": TOLERANCE},
        "outputs": {
            n: o.numpy().astype(np.float64).tolist() for n, o in zip(names, outputs, strict=True)
        },
    }
    if spec.sex_input:
        ref["inputs"]["sex"] = list(sex.shape)
        ref["sex"] = sex.reshape(-1).tolist()
    return ref


def _json(data: dict[str, Any]) -> str:
    """One top-level key per line (the output arrays stay on one line each)."""
    body = ",\n".join(
        f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in data.items()
    )
    return "{\n" + body + "\n}\n"


def _study_values(
    spec: ServiceSpec, split: Split, per_input: NDArray[np.float64]
) -> NDArray[np.float64]:
    values = per_input * split.extent_mm if spec.scale == "image_extent_mm" else per_input
    return study_mean(split, values)


def _split_facts(splits: dict[str, Split]) -> list[card.SplitFacts]:
    return [
        card.split_facts(
            name,
            [int(v) for v in s.study_label],
            s.exam,
            s.skipped,
            len(s.x),
            int(s.label.sum()),
        )
        for name, s in splits.items()
    ]


@dataclass
class Operating:
    """The exported module and its operating point, fitted on the validation split."""

    module: nn.Module
    threshold: float
    calibration: tuple[float, float] | None
    sensitivity: metrics.Rate
    specificity: metrics.Rate


def operate(spec: ServiceSpec, trained: fit.Trained, validation: Split) -> Operating:
    """Calibrate (classifiers) and choose the threshold on the validation split."""
    pooled, _maps = fit.predict(trained.model, validation, spec.sex_input)
    module: nn.Module
    calibration: tuple[float, float] | None = None
    if spec.kind == "classification":
        logits = study_max(validation, pooled)
        a, b = metrics.platt(logits, validation.study_label)
        calibration = (a, b)
        scores = _sigmoid(a * logits + b)
        chosen = metrics.choose_threshold(validation.study_label, scores, spec.sensitivity)
        flagged = scores >= chosen.threshold
        module = ExportedClassifier(trained.model, a, b)
    else:
        values = _study_values(spec, validation, pooled * trained.sd + trained.mean)
        scores = evaluate.flag_scores(values, validation.age_months, spec.flag)
        chosen = metrics.choose_threshold(
            validation.study_label, scores, spec.sensitivity, strict=True, decimals=1
        )
        flagged = scores > chosen.threshold
        module = ExportedRegressor(trained.model, trained.mean, trained.sd)
    module.eval()
    sens, spec_ = metrics.sensitivity_specificity(validation.study_label, flagged)
    return Operating(module, chosen.threshold, calibration, sens, spec_)


def measure(
    spec: ServiceSpec, test: Split, outputs: dict[str, NDArray[np.float32]], threshold: float
) -> evaluate.ClassificationReport | evaluate.RegressionReport:
    """The test split's study-level report from onnxruntime's outputs."""
    if spec.kind == "classification":
        probs = study_max(test, outputs["score"].astype(np.float64))
        return evaluate.classification(
            test.study_label, probs, threshold, test.finding, test.exam, spec.seed
        )
    predicted = _study_values(spec, test, outputs["value"].astype(np.float64))
    return evaluate.regression(
        test.study_label,
        predicted,
        test.value,
        test.age_months,
        threshold,
        spec.flag,
        spec.unit or "",
        spec.seed,
    )


def _notes(spec: ServiceSpec, trained: fit.Trained) -> tuple[str, ...]:
    """Measured facts worth a line of their own (the learnt sex term of bone age)."""
    sex = getattr(trained.model, "sex", None)
    if spec.sex_input and sex is not None:
        weight = float(sex.weight.detach().reshape(-1)[0]) * trained.sd
        return (f"Learnt sex term: {weight:+.2f} {spec.unit}s for a female patient.",)
    return ()


def _lead_sections(
    spec: ServiceSpec,
    session: ort.InferenceSession,
    test: Split,
    outputs: dict[str, NDArray[np.float32]],
    threshold: float,
) -> tuple[str, ...]:
    """The ECG card's metrics per lead set and its real-signal check (nothing for images)."""
    if not spec.lead_sets:
        return ()
    scores = outputs["score"].astype(np.float64)
    results = leads.by_lead_set(spec, session, test, scores, threshold)
    for r in results:
        log.info("%s %s: AUROC %.3f", r.name, r.source, r.auroc)
    real = leads.real_ecg(spec, session, threshold)
    return leads.card_section(spec, results, real, threshold)


def _arguments(spec: ServiceSpec) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=f"Train the {spec.service} reference model.")
    parser.add_argument("--cache", type=Path, help="keep the prepared splits here (.npz)")
    parser.add_argument("--steps", type=int, help="override the step count (trial runs)")
    return parser.parse_args()


def main(spec: ServiceSpec) -> None:
    args = _arguments(spec)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.steps:
        spec = replace(spec, steps=args.steps)
    # The registry lists the service (its names) before it is trained: refuse now, not after.
    listed = services.lookup(spec.service, MODELS_DIR)
    started = time.perf_counter()
    splits = {name: split_data(spec, name, args.cache) for name in SPLITS}
    data_seconds = time.perf_counter() - started
    trained = fit.train(spec, splits["train"], splits["validation"])
    test = splits["test"]
    chosen = operate(spec, trained, splits["validation"])
    data = export(spec, chosen.module, test.x)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    outputs, diff = _both(spec, chosen.module, session, test)
    report = measure(spec, test, outputs, chosen.threshold)
    folder = spec.folder
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"{spec.service}-*.onnx"):
        old.unlink()
    spec.onnx_path.write_bytes(data)
    (folder / "config.toml").write_text(files.config_toml(spec), encoding="utf-8")
    reference = _reference(spec, chosen.module, test.x.shape[1:])
    (folder / "reference.json").write_text(_json(reference), encoding="utf-8")
    facts = card.CardFacts(
        spec=spec,
        name_ko=listed.name_ko,
        name_en=listed.name_en,
        splits=_split_facts(splits),
        parameters=parameters(trained.model),
        best_step=trained.best_step,
        best_validation=trained.best_validation,
        train_seconds=trained.seconds,
        data_seconds=data_seconds,
        calibration=chosen.calibration,
        target=None if spec.kind == "classification" else (trained.mean, trained.sd),
        validation_sensitivity=chosen.sensitivity,
        validation_specificity=chosen.specificity,
        report=report,
        onnx_bytes=len(data),
        onnx_diff=diff,
        onnx_inputs=len(test.x),
        heatmap_shape=tuple(int(d) for d in outputs["heatmap"].shape[1:]),
        device_uid=files.device_uid(data),
        notes=_notes(spec, trained),
        sections=_lead_sections(spec, session, test, outputs, chosen.threshold),
    )
    (folder / "card.md").write_text(card.render(facts), encoding="utf-8")
    files.update_registry(spec.service, data, chosen.threshold, version=spec.version)
    summary = (
        f"AUROC {report.auroc:.3f} ({report.auroc_ci[0]:.3f}-{report.auroc_ci[1]:.3f})"
        if isinstance(report, evaluate.ClassificationReport)
        else f"MAE {report.mae:.2f} {report.unit} ({report.mae_ci[0]:.2f}-{report.mae_ci[1]:.2f})"
    )
    log.info(
        "%s done in %.0f s: %s, sensitivity %.3f, specificity %.3f at %g; onnx %d bytes, "
        "max |torch - ort| %.2e",
        spec.service,
        time.perf_counter() - started,
        summary,
        report.sensitivity.value,
        report.specificity.value,
        chosen.threshold,
        len(data),
        diff,
    )
