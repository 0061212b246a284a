"""The held-out test split's study-level results, as the model card reports them (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.training import metrics
from models.training.metrics import Bin, Rate


@dataclass(frozen=True)
class ClassificationReport:
    studies: int
    positives: int
    auroc: float
    auroc_ci: tuple[float, float]
    threshold: float
    sensitivity: Rate
    specificity: Rate
    brier: float
    ece: float
    reliability: list[Bin]
    by_finding: dict[str, Rate]  # sensitivity per truth finding code
    by_exam: dict[str, float]  # AUROC per exam


@dataclass(frozen=True)
class RegressionReport:
    studies: int
    positives: int
    unit: str
    mae: float
    mae_ci: tuple[float, float]
    bias: float  # mean of predicted - true
    threshold: float
    flag: str
    sensitivity: Rate
    specificity: Rate
    flag_auroc: float
    flag_auroc_ci: tuple[float, float]
    mae_normal: float
    mae_abnormal: float


def classification(
    labels: NDArray[np.generic],
    probs: NDArray[np.float64],
    threshold: float,
    findings: list[str],
    exams: list[str],
    seed: int,
) -> ClassificationReport:
    y = np.asarray(labels).astype(bool)
    flagged = probs >= threshold
    sens, spec = metrics.sensitivity_specificity(y, flagged)
    table = metrics.reliability(y, probs)
    finding = np.asarray(findings)
    exam = np.asarray(exams)
    by_finding = {
        code: Rate.of(flagged[y & (finding == code)]) for code in sorted(set(finding[y]) - {""})
    }
    by_exam = {
        code: metrics.auroc(y[exam == code], probs[exam == code])
        for code in sorted(set(exams))
        if len(set(y[exam == code])) == 2
    }
    return ClassificationReport(
        studies=len(y),
        positives=int(y.sum()),
        auroc=metrics.auroc(y, probs),
        auroc_ci=metrics.bootstrap_auroc(y, probs, seed),
        threshold=threshold,
        sensitivity=sens,
        specificity=spec,
        brier=metrics.brier(y, probs),
        ece=metrics.ece(table),
        reliability=table,
        by_finding=by_finding,
        by_exam=by_exam,
    )


def flag_scores(
    values: NDArray[np.float64], ages: NDArray[np.float64], flag: str
) -> NDArray[np.float64]:
    """What the regression flag thresholds: the value, or its deviation from the age."""
    return np.abs(values - ages) if flag == "deviation" else values


def regression(
    labels: NDArray[np.generic],
    predicted: NDArray[np.float64],
    truth: NDArray[np.float64],
    ages: NDArray[np.float64],
    threshold: float,
    flag: str,
    unit: str,
    seed: int,
) -> RegressionReport:
    y = np.asarray(labels).astype(bool)
    errors = np.abs(predicted - truth)
    scores = flag_scores(predicted, ages, flag)
    sens, spec = metrics.sensitivity_specificity(y, scores > threshold)
    return RegressionReport(
        studies=len(y),
        positives=int(y.sum()),
        unit=unit,
        mae=float(errors.mean()),
        mae_ci=metrics.bootstrap_mean(errors, seed),
        bias=float(np.mean(predicted - truth)),
        threshold=threshold,
        flag=flag,
        sensitivity=sens,
        specificity=spec,
        flag_auroc=metrics.auroc(y, scores),
        flag_auroc_ci=metrics.bootstrap_auroc(y, scores, seed),
        mae_normal=float(errors[~y].mean()),
        mae_abnormal=float(errors[y].mean()),
    )
