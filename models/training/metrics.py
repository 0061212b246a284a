"""Study-level metrics for the model cards, in numpy only (no training framework needed).

* AUROC as the Mann-Whitney statistic (ties count half), with a 95 % percentile bootstrap CI
  over studies, resampled within each class so that every resample has both;
* sensitivity and specificity at a threshold, with Wilson 95 % intervals;
* calibration: Brier score, expected calibration error over equal-width bins, and the reliability
  table behind it;
* regressions: mean absolute error with a percentile bootstrap CI;
* the operating threshold: the highest one whose sensitivity on the validation split reaches the
  target, and a Platt scaling fitted on the validation split's study logits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
BOOTSTRAP = 2000  # resamples
BINS = 10  # reliability bins


def auroc(labels: NDArray[np.generic], scores: NDArray[np.generic]) -> float:
    """Area under the ROC curve (probability a positive outranks a negative; ties half)."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    mean_rank = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(mean_rank, counts)
    return float((ranks[y].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def bootstrap_auroc(
    labels: NDArray[np.generic], scores: NDArray[np.generic], seed: int, n: int = BOOTSTRAP
) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the AUROC, resampling studies within each class."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    pos, neg = s[y], s[~y]
    rng = np.random.default_rng(seed)
    stats = np.empty(n)
    for k in range(n):
        p = pos[rng.integers(0, len(pos), len(pos))]
        q = neg[rng.integers(0, len(neg), len(neg))]
        stats[k] = auroc(
            np.concatenate([np.ones(len(p)), np.zeros(len(q))]), np.concatenate([p, q])
        )
    low, high = np.percentile(stats, [2.5, 97.5])
    return float(low), float(high)


def bootstrap_mean(
    values: NDArray[np.generic], seed: int, n: int = BOOTSTRAP
) -> tuple[float, float]:
    """95 % percentile bootstrap interval of a mean (the MAE from absolute errors)."""
    v = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), (n, len(v)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def wilson(successes: int, total: int) -> tuple[float, float]:
    """Wilson score 95 % interval of a proportion."""
    if total == 0:
        return float("nan"), float("nan")
    z = 1.959963984540054
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return centre - half, centre + half


@dataclass(frozen=True)
class Rate:
    """A proportion with its counts and Wilson interval."""

    value: float
    successes: int
    total: int
    low: float
    high: float

    @classmethod
    def of(cls, hits: NDArray[np.bool_]) -> Rate:
        successes, total = int(hits.sum()), len(hits)
        low, high = wilson(successes, total)
        return cls(successes / total if total else float("nan"), successes, total, low, high)


def sensitivity_specificity(
    labels: NDArray[np.generic], flagged: NDArray[np.bool_]
) -> tuple[Rate, Rate]:
    y = np.asarray(labels).astype(bool)
    return Rate.of(flagged[y]), Rate.of(~flagged[~y])


@dataclass(frozen=True)
class Bin:
    """One reliability bin: predicted range, studies, mean predicted, observed rate."""

    low: float
    high: float
    count: int
    predicted: float
    observed: float


def reliability(
    labels: NDArray[np.generic], probs: NDArray[np.generic], bins: int = BINS
) -> list[Bin]:
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1], right=False), 0, bins - 1)
    out = []
    for b in range(bins):
        inside = which == b
        n = int(inside.sum())
        out.append(
            Bin(
                float(edges[b]),
                float(edges[b + 1]),
                n,
                float(p[inside].mean()) if n else float("nan"),
                float(y[inside].mean()) if n else float("nan"),
            )
        )
    return out


def ece(table: list[Bin]) -> float:
    """Expected calibration error: bins' |observed - predicted| weighted by their share."""
    total = sum(b.count for b in table)
    return float(sum(b.count * abs(b.observed - b.predicted) for b in table if b.count) / total)


def brier(labels: NDArray[np.generic], probs: NDArray[np.generic]) -> float:
    y = np.asarray(labels, dtype=np.float64)
    return float(np.mean((np.asarray(probs, dtype=np.float64) - y) ** 2))


@dataclass(frozen=True)
class Operating:
    """A chosen threshold with its validation sensitivity and specificity."""

    threshold: float
    sensitivity: float
    specificity: float


def choose_threshold(
    labels: NDArray[np.generic],
    scores: NDArray[np.generic],
    target: float,
    strict: bool = False,
    decimals: int = 4,
) -> Operating:
    """The operating threshold on a validation split.

    Among the thresholds whose sensitivity is at least ``target``, the one with the largest
    Youden's J (sensitivity + specificity - 1); ties go to the higher sensitivity. Every threshold
    between two neighbouring distinct scores flags the same studies, so the midpoint of that gap
    is returned, rounded to ``decimals`` (or the fewest more that keep it inside the gap). The
    flag is ``score >= t``, or ``score > t`` when ``strict`` (regressions)."""
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    levels = np.unique(s)
    best: tuple[float, float, int] | None = None  # (J, sensitivity, index of lowest flagged)
    for i in range(len(levels)):
        flagged = s >= levels[i]
        sens, spec = float(flagged[y].mean()), float((~flagged[~y]).mean())
        if sens >= target and (best is None or (sens + spec, sens) > best[:2]):
            best = (sens + spec, sens, i)
    assert best is not None  # the lowest level flags everything: sensitivity 1
    i = best[2]
    # The highest unflagged score (below the lowest when everything is flagged).
    low = levels[i - 1] if i > 0 else levels[0] - 1e-3 * abs(levels[0]) - 1e-6
    high = levels[i]  # lowest flagged score
    mid = (low + high) / 2
    t = next((r for d in range(decimals, 9) if low < (r := round(mid, d)) < high), mid)
    flagged = s > t if strict else s >= t
    return Operating(float(t), float(flagged[y].mean()), float((~flagged[~y]).mean()))


def platt(
    logits: NDArray[np.generic], labels: NDArray[np.generic], iterations: int = 100
) -> tuple[float, float]:
    """Platt scaling ``p = sigmoid(a * logit + b)``: logistic regression on Platt's smoothed
    targets ((N+ + 1) / (N+ + 2) and 1 / (N- + 2)), which keeps the fit finite when the
    validation split is separated perfectly. Newton's method with backtracking on standardised
    logits and a little ridge on the slope. Falls back to the identity if the slope is not
    positive."""
    x = np.asarray(logits, dtype=np.float64)
    positive = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    t = np.where(positive, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    centre, spread = float(x.mean()), float(x.std()) or 1.0
    z = (x - centre) / spread
    ridge = 1e-3

    def loss(w: F64) -> float:
        u = w[0] * z + w[1]
        nll = t * np.logaddexp(0.0, -u) + (1 - t) * np.logaddexp(0.0, u)
        return float(nll.sum() + 0.5 * ridge * w[0] ** 2)

    w = np.zeros(2)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(w[0] * z + w[1], -40, 40)))
        h = p * (1 - p)
        grad = np.array([np.sum((p - t) * z) + ridge * w[0], np.sum(p - t)])
        hess = np.array(
            [[np.sum(h * z * z) + ridge, np.sum(h * z)], [np.sum(h * z), np.sum(h) + 1e-9]]
        )
        step = np.linalg.solve(hess, grad)
        scale, before = 1.0, loss(w)
        while loss(w - scale * step) > before and scale > 1e-8:
            scale /= 2
        w = w - scale * step
        if np.abs(scale * step).max() < 1e-10:
            break
    a, b = float(w[0] / spread), float(w[1] - w[0] * centre / spread)
    if not (np.isfinite(a) and np.isfinite(b)) or a <= 0:
        return 1.0, 0.0
    return a, b
