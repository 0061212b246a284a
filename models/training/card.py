"""The model card (``models/<service>/card.md``), written from what the training run measured.

No number in a card is typed by hand: every one comes from a ``CardFacts`` filled in by
``models.training.run``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from models.training.evaluate import ClassificationReport, RegressionReport
from models.training.metrics import BINS, BOOTSTRAP, Rate
from models.training.spec import OVERLAP_S, SPLIT_SEEDS, SPLITS, ServiceSpec

STATEMENT_EN = "Reference model trained on synthetic data, not for clinical use."
STATEMENT_KO = "합성 데이터로 학습한 참조 모델이며, 임상에 사용할 수 없습니다."


@dataclass(frozen=True)
class SplitFacts:
    name: str
    studies: int
    abnormal: int
    skipped: int
    inputs: int
    positive_inputs: int
    by_exam: dict[str, int]


@dataclass(frozen=True)
class CardFacts:
    spec: ServiceSpec
    name_ko: str
    name_en: str
    splits: list[SplitFacts]
    parameters: int
    best_step: int
    best_validation: float
    train_seconds: float
    data_seconds: float
    calibration: tuple[float, float] | None  # Platt (a, b) for classifiers
    target: tuple[float, float] | None  # regression standardisation (mean, sd)
    validation_sensitivity: Rate
    validation_specificity: Rate
    report: ClassificationReport | RegressionReport
    onnx_bytes: int
    onnx_diff: float
    onnx_inputs: int
    heatmap_shape: tuple[int, ...]
    device_uid: str
    notes: tuple[str, ...] = ()  # further measured facts for the metrics section
    sections: tuple[str, ...] = ()  # further sections (markdown lines) after the metrics


def _pct(rate: Rate) -> str:
    return (
        f"{rate.value:.3f} ({rate.successes}/{rate.total}; Wilson 95% CI "
        f"{rate.low:.3f}-{rate.high:.3f})"
    )


def _plural(unit: str) -> str:
    return {"month": "months"}.get(unit, unit)


def _num(value: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def _intro(f: CardFacts) -> list[str]:
    s = f.spec
    return [
        f"# {f.name_ko} / {f.name_en}: reference model `{s.service}` {s.version}",
        "",
        f"> **{STATEMENT_KO}**",
        ">",
        f"> **{STATEMENT_EN}**",
        "",
        "This card is written by `models/"
        f"{s.service}/train.py`; every number below was measured by that run.",
        "",
        "## Intended use",
        "",
        s.intended_use,
        "",
        "It exists so that the platform runs end to end (routing, scoring, findings, DICOM SR) "
        "and so that a vendor's ONNX model can take its place (models/README.md). It must not be "
        "used on patients.",
        "",
    ]


def _data(f: CardFacts) -> list[str]:
    s = f.spec
    lines = [
        "## Data",
        "",
        "Synthetic studies from the platform's own synthetic city (`synth/imaging`): for each "
        "study an imaging order is built for one of the service's exams "
        f"({', '.join(f'`{e}`' for e in s.exams)}, in equal numbers), with sex and age drawn "
        "within the exam's eligibility, half normal and half abnormal. "
        "`synth.imaging.assemble.assemble` renders and encodes it into DICOM as a clinic's devices "
        "would send it (site-specific transfer syntax, VR, MONOCHROME1, vendors), and the objects "
        "are read back with pydicom. Objects the router holds back are left out (studies with "
        "burned-in annotation, FOR PROCESSING images). Labels come from the synthetic ground "
        "truth: an instance is positive when the truth locates the finding on it"
        + (
            " (an ECG is cut into the model's windows like the scorer cuts it, and a window is "
            "positive when it overlaps the truth's finding segments by at least "
            f"{OVERLAP_S:g} s)."
            if s.is_waveform
            else "; the study label is the truth's `abnormal`."
        ),
        "",
        "| split | city seed | studies | abnormal | held back (left out) | model inputs "
        "| positive inputs | studies per exam |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for split in f.splits:
        exams = ", ".join(f"{k} {v}" for k, v in split.by_exam.items())
        lines.append(
            f"| {split.name} | {SPLIT_SEEDS[split.name]} | {split.studies} | {split.abnormal} "
            f"| {split.skipped} | {split.inputs} | {split.positive_inputs} | {exams} |"
        )
    lines += [
        "",
        "The three splits are rendered from disjoint seeds and accession ranges: training fits the "
        "weights, validation picks the checkpoint, "
        + ("the calibration " if s.kind == "classification" else "")
        + "and the operating threshold, and the test split is used once, for the metrics below. "
        f"Rendering and preparing all splits took {f.data_seconds:.0f} s.",
        "",
    ]
    return lines


def _inputs(f: CardFacts) -> list[str]:
    s = f.spec
    if s.waveform is not None:
        w = s.waveform
        what = (
            f"`image`: (N, {w.leads}, {round(w.rate_hz * w.seconds)}) float32: the leads "
            f"{', '.join(w.lead_names)} in mV, picked by their coded channel source (DICOM CID "
            f"3001), resampled to {w.rate_hz:g} Hz and cut into {w.seconds:g} s windows by "
            "`models.runtime.waveform.waveform_windows`; leads the recording lacks are zero. A "
            "study's score is its worst window's."
        )
    else:
        assert s.image is not None
        i = s.image
        what = (
            f"`image`: (N, {i.channels}, {i.size}, {i.size}) float32 in 0..1, every frame of "
            "every routed instance prepared by `models.runtime.preprocess.image_input` "
            f"(window `{i.window}`: modality LUT, VOI LUT or window, MONOCHROME1 inverted, "
            "area-averaged into the square with its aspect kept and black padding)"
            + ("; colour images scaled to 0..1." if i.channels == 3 else ".")
        )
    lines = ["## Inputs and preprocessing", "", f"- {what}"]
    if s.sex_input:
        lines.append("- `sex`: (N, 1) float32, 1.0 for female, 0.0 for male.")
    if s.inputs_note:
        lines.append(f"- {s.inputs_note}")
    lines += [
        "- Training and scoring call the same two functions, so the model never sees an input "
        "prepared differently from the ones it learnt on.",
        "",
    ]
    return lines


def _outputs(f: CardFacts) -> list[str]:
    s = f.spec
    shape = "x".join(str(d) for d in f.heatmap_shape)
    lines = ["## Outputs and finding codes", ""]
    if s.kind == "classification":
        assert f.calibration is not None
        a, b = f.calibration
        lines += [
            f"- `score`: (N,) probability that the input shows `{s.finding_code}` "
            f"({s.finding_en}; {s.finding_ko}). The study's score is the maximum over its "
            "routed instances" + (" (its four views)." if s.service == "mammography" else "."),
            f"- `heatmap`: (N, {', '.join(str(d) for d in f.heatmap_shape)}) the class-activation "
            f"logit map ({shape} cells over the input "
            + ("duration" if s.is_waveform else "square")
            + "). The score is `sigmoid(a * LSE(heatmap) + b)` with LSE the log-sum-exp pool "
            f"(`log(mean(exp(4 m))) / 4`) and Platt scaling a = {a:.4f}, b = {b:.4f} fitted on the "
            "validation split's study scores, so the map is the explanation.",
        ]
    else:
        assert f.target is not None
        unit = s.unit or ""
        lines += [
            f"- `value`: (N,) `{s.finding_code}` ({s.finding_en}; {s.finding_ko})"
            + (
                ", as a fraction of the image's longer side: the scorer multiplies it by the "
                "source image's longer side in mm (PixelSpacing; config `scale = "
                '"image_extent_mm"`) to get mm.'
                if s.scale == "image_extent_mm"
                else f", in {_plural(unit)}."
            ),
            f"- `heatmap`: (N, {', '.join(str(d) for d in f.heatmap_shape)}) per-cell "
            f"contributions ({shape} cells) in the value's unit: the value is the map's mean"
            + (" plus a learnt sex term." if s.sex_input else "."),
            "- Flag: "
            + (
                f"`|value - chronological age in months| > threshold` ({_plural(unit)})."
                if s.flag == "deviation"
                else f"`value > threshold` ({unit})."
            ),
        ]
    lines += [
        f"- Finding codes of the synthetic truth this covers: "
        f"{', '.join(f'`{c}`' for c in s.findings_covered)}.",
        "",
    ]
    return lines


def _model(f: CardFacts) -> list[str]:
    s = f.spec
    if s.is_waveform:
        arch = (
            f"1-D CNN, {len(s.widths)} conv blocks (widths {', '.join(map(str, s.widths))}; "
            f"max-pool {' x '.join(map(str, s.pools))} in time) and a 1x1 convolution to the map"
        )
    else:
        arch = (
            f"2-D CNN, {'a stride-2 stem and ' if s.stem else ''}{len(s.widths)} conv blocks "
            f"(3x3 conv, batch norm, ReLU; widths {', '.join(map(str, s.widths))}; 2x2 max-pool "
            "between blocks) and a 1x1 convolution to the map"
        )
    what = "validation study AUROC" if s.kind == "classification" else "validation study MAE"
    best = f.best_validation if s.kind == "classification" else -f.best_validation
    loss = (
        "binary cross-entropy on instance labels, batches half positive and half negative instances"
        if s.kind == "classification"
        else "smooth L1 on the standardised target"
    )
    return [
        "## Model and training",
        "",
        f"- {arch}; {f.parameters} parameters; ONNX opset 17, {f.onnx_bytes} bytes.",
        f"- {loss}; AdamW (peak learning rate {s.lr:g}, weight decay 1e-4, one-cycle cosine), "
        f"{s.steps} steps of {s.batch} inputs"
        + (", half of each batch mirrored left to right at random" if s.flip else "")
        + f", seed {s.seed}, one CPU thread.",
        f"- Checkpoint kept: step {f.best_step} ({what} {best:.4f} at that step).",
        f"- Training took {f.train_seconds:.0f} s on the CPU.",
        f"- Device UID (DICOM, from the ONNX file's SHA-256): `{f.device_uid}`.",
        "",
    ]


def _threshold(f: CardFacts) -> list[str]:
    s = f.spec
    r = f.report
    unit = "" if s.kind == "classification" else f" {_plural(s.unit or '')}"
    rule = (
        "score >= threshold"
        if s.kind == "classification"
        else ("|value - age| > threshold" if s.flag == "deviation" else "value > threshold")
    )
    return [
        "## Operating threshold",
        "",
        f"- Threshold: **{r.threshold:g}{unit}** (flag: `{rule}`).",
        "- Chosen on the validation split: among the thresholds whose study sensitivity is at "
        f"least {s.sensitivity:.2f} (a triage service should miss few findings), the one with "
        "the largest Youden's J (sensitivity + specificity - 1), placed in the middle of the gap "
        "between the neighbouring validation scores. On the validation split it gives "
        f"sensitivity {_pct(f.validation_sensitivity)} and specificity "
        f"{_pct(f.validation_specificity)}.",
        "",
    ]


def _metrics(f: CardFacts) -> list[str]:
    r = f.report
    lines = [
        "## Metrics on the held-out test split",
        "",
        f"Study level, {r.studies} studies ({r.positives} abnormal), scored with onnxruntime on "
        "the exported file exactly as the scorer aggregates. Intervals: percentile bootstrap "
        f"with {BOOTSTRAP} resamples of studies (AUROC: resampled within each class), Wilson "
        "score intervals for proportions.",
        "",
    ]
    if isinstance(r, ClassificationReport):
        lines += [
            f"- AUROC: {r.auroc:.3f} (95% CI {r.auroc_ci[0]:.3f}-{r.auroc_ci[1]:.3f})",
            f"- Sensitivity at {r.threshold:g}: {_pct(r.sensitivity)}",
            f"- Specificity at {r.threshold:g}: {_pct(r.specificity)}",
            f"- Brier score: {r.brier:.4f}",
            f"- Expected calibration error ({BINS} equal-width bins): {r.ece:.4f}",
        ]
        for code, rate in r.by_finding.items():
            lines.append(f"- Sensitivity for `{code}`: {_pct(rate)}")
        if len(r.by_exam) > 1:
            for code, value in r.by_exam.items():
                lines.append(f"- AUROC for `{code}` studies: {_num(value)}")
        lines += [
            "",
            "Reliability (test studies by predicted probability):",
            "",
            "| predicted | studies | mean predicted | observed abnormal |",
            "| --- | --- | --- | --- |",
        ]
        for b in r.reliability:
            if b.count:
                lines.append(
                    f"| {b.low:.1f}-{b.high:.1f} | {b.count} | {b.predicted:.3f} "
                    f"| {b.observed:.3f} |"
                )
    else:
        u = _plural(r.unit)
        lines += [
            f"- MAE: {r.mae:.2f} {u} (95% CI {r.mae_ci[0]:.2f}-{r.mae_ci[1]:.2f})",
            f"- MAE in normal studies: {r.mae_normal:.2f} {u}; in abnormal studies: "
            f"{r.mae_abnormal:.2f} {u}",
            f"- Mean error (predicted - true): {r.bias:+.2f} {u}",
            f"- Flag sensitivity at {r.threshold:g} {u}: {_pct(r.sensitivity)}",
            f"- Flag specificity at {r.threshold:g} {u}: {_pct(r.specificity)}",
            f"- Flag AUROC (abnormal vs normal by the flagged quantity): {r.flag_auroc:.3f} "
            f"(95% CI {r.flag_auroc_ci[0]:.3f}-{r.flag_auroc_ci[1]:.3f})",
        ]
        lines += [f"- {note}" for note in f.notes]
    lines += [
        "",
        f"- ONNX check: max |torch - onnxruntime| over the {f.onnx_inputs} test inputs, all "
        f"outputs: {f.onnx_diff:.2e}",
        "",
    ]
    return lines


def _limits(f: CardFacts) -> list[str]:
    s = f.spec
    general = [
        "Trained and tested on synthetic images only: the findings are drawn shapes of known "
        "contrast, the anatomy is simplified and every split comes from the same generator. "
        "These numbers say nothing about real patients or real devices.",
        "Splits are balanced (half abnormal). The calibration and predictive values therefore "
        "hold at 50 % prevalence; the programme's stated rates are lower.",
    ]
    r = f.report
    if isinstance(r, ClassificationReport):
        if r.auroc < 0.8:
            general.append(
                f"Discrimination is modest (test AUROC {r.auroc:.3f}): treat this model as a "
                "placeholder that exercises the platform, not as a useful reader."
            )
        weak = {code: v for code, v in r.by_exam.items() if len(r.by_exam) > 1 and v < 0.8}
        for code, value in weak.items():
            general.append(
                f"Weak on `{code}` studies (test AUROC {value:.3f}): the overall AUROC mostly "
                "reflects the service's other exams."
            )
    if r.sensitivity.value < s.sensitivity:
        general.append(
            f"On the test split the sensitivity at the threshold ({r.sensitivity.value:.3f}) is "
            f"below the {s.sensitivity:.2f} the threshold was chosen for on the validation split."
        )
    return ["## Limits", "", *[f"- {t}" for t in (*s.limits, *general)], ""]


def render(facts: CardFacts) -> str:
    sections = (_intro, _data, _inputs, _outputs, _model, _threshold, _metrics)
    lines = [line for section in sections for line in section(facts)]
    lines += [*facts.sections, *_limits(facts)]
    return "\n".join(lines).rstrip() + "\n"


def split_facts(
    name: str, labels: list[int], exams: list[str], skipped: int, inputs: int, positive_inputs: int
) -> SplitFacts:
    by_exam: dict[str, int] = {}
    for e in exams:
        by_exam[e] = by_exam.get(e, 0) + 1
    assert name in SPLITS
    return SplitFacts(name, len(labels), sum(labels), skipped, inputs, positive_inputs, by_exam)
