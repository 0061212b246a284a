"""The training loop: balanced batches, AdamW with a cosine schedule, best checkpoint on validation.

Classifiers learn from instance labels with batches half positive, half negative instances (a
study's normal slices and views are negatives), by binary cross-entropy on the pooled logit.
Regressions learn the standardised target with a smooth L1 loss. Every ``spec.steps // 8`` steps
the model is scored on the validation split the way the platform scores a study (the maximum over
its instances or windows, or the mean value), and the best checkpoint is kept: study AUROC for
classifiers, study MAE for regressions. The test split is never seen here. ECG inputs go through
lead dropout (``models.training.dropout``) when the service names lead sets.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass

import numpy as np
import torch  # type: ignore[import-not-found,unused-ignore]
from numpy.typing import NDArray
from torch import nn

from models.training import metrics
from models.training.data import Split, study_max, study_mean
from models.training.dropout import dropout
from models.training.net import Classifier, Regressor
from models.training.spec import ServiceSpec

log = logging.getLogger(__name__)
THREADS = 1  # fixed, so that a rerun on the same machine gives the same weights
EVALUATIONS = 8


@dataclass
class Trained:
    """A trained model and what the run measured on the way."""

    model: nn.Module
    mean: float  # regression target standardisation
    sd: float
    best_step: int
    best_validation: float
    seconds: float


def setup(seed: int) -> None:
    torch.manual_seed(seed)
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)


def _sex_rows(split: Split) -> NDArray[np.float32]:
    return split.sex[split.study].reshape(-1, 1).astype(np.float32)


def predict(
    model: nn.Module, split: Split, sex: bool, batch: int = 256
) -> tuple[NDArray[np.float64], NDArray[np.float32]]:
    """The model's pooled output (logit or standardised value) and map for every instance."""
    model.eval()
    pooled, maps = [], []
    sexes = _sex_rows(split)
    with torch.no_grad():
        for start in range(0, len(split.x), batch):
            x = torch.from_numpy(split.x[start : start + batch])
            if sex:
                out, m = model(x, torch.from_numpy(sexes[start : start + batch]))
            else:
                out, m = model(x)
            pooled.append(out.numpy().astype(np.float64))
            maps.append(m.numpy())
    return np.concatenate(pooled), np.concatenate(maps)


def _validate(
    spec: ServiceSpec, model: nn.Module, validation: Split, mean: float, sd: float
) -> float:
    """Higher is better: study AUROC, or minus the study MAE in the value's unit."""
    pooled, _maps = predict(model, validation, spec.sex_input)
    if spec.kind == "classification":
        return metrics.auroc(validation.study_label, study_max(validation, pooled))
    values = pooled * sd + mean
    if spec.scale == "image_extent_mm":
        values = values * validation.extent_mm
    predicted = study_mean(validation, values)
    return -float(np.mean(np.abs(predicted - validation.value)))


def train(spec: ServiceSpec, data: Split, validation: Split) -> Trained:
    """Fit the service's model on ``data``; keep the checkpoint best on ``validation``."""
    setup(spec.seed)
    started = time.perf_counter()
    rng = np.random.default_rng(spec.seed)
    regression = spec.kind == "regression"
    model: nn.Module = Regressor(spec) if regression else Classifier(spec)
    x = torch.from_numpy(data.x)
    sexes = torch.from_numpy(_sex_rows(data))
    mean = float(np.mean(data.target)) if regression else 0.0
    sd = float(np.std(data.target)) if regression else 1.0
    target = torch.from_numpy(((data.target - mean) / sd).astype(np.float32))
    labels = torch.from_numpy(data.label.astype(np.float32))
    positives = np.flatnonzero(data.label == 1)
    negatives = np.flatnonzero(data.label == 0)
    optimiser = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=spec.lr, total_steps=spec.steps, pct_start=0.1
    )
    every = max(1, spec.steps // EVALUATIONS)
    best = (-np.inf, 0, copy.deepcopy(model.state_dict()))
    for step in range(1, spec.steps + 1):
        model.train()
        if regression:
            idx = rng.integers(0, len(data.x), spec.batch)
        else:
            half = spec.batch // 2
            idx = np.concatenate(
                [rng.choice(positives, half), rng.choice(negatives, spec.batch - half)]
            )
        index = torch.from_numpy(idx)
        inputs = x[index]
        if spec.lead_sets:
            inputs = inputs * torch.from_numpy(dropout(spec, rng, len(idx)))
        if spec.flip:
            mirrored = torch.from_numpy(rng.random(len(idx)) < 0.5)
            inputs = torch.where(mirrored[:, None, None, None], inputs.flip(-1), inputs)
        optimiser.zero_grad()
        if regression:
            value, _ = model(inputs, sexes[index] if spec.sex_input else None)
            loss = nn.functional.smooth_l1_loss(value, target[index], beta=0.5)
        else:
            logit, _ = model(inputs)
            loss = nn.functional.binary_cross_entropy_with_logits(logit, labels[index])
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % every == 0 or step == spec.steps:
            score = _validate(spec, model, validation, mean, sd)
            log.info(
                "%s step %d/%d loss %.4f validation %.4f (%.0f s)",
                spec.service,
                step,
                spec.steps,
                loss.item(),
                score,
                time.perf_counter() - started,
            )
            if score > best[0]:
                best = (score, step, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    model.eval()
    return Trained(model, mean, sd, best[1], float(best[0]), time.perf_counter() - started)
