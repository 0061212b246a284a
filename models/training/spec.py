"""What one service's reference model is: the declaration each ``models/<service>/train.py`` makes.

Everything a training run needs to know about a service lives in one frozen ``ServiceSpec``: which
exams make its studies, how many per split, what the model reads (the same ``ImageSpec`` or
``WaveformSpec`` the scorer builds from ``config.toml``), the finding it reports, the network's
size and the training budget. The shared code in this package does the rest identically for all
twelve services.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from models.runtime.preprocess import ImageSpec, WaveformSpec

MODELS_DIR: Final = Path(__file__).resolve().parents[1]
VERSION: Final = "1.0.0"
SPLITS: Final = ("train", "validation", "test")
# The city seed each split's studies are rendered with. ``assemble`` draws every study from
# ``stream(seed, "imaging", accession)``, so different seeds give independent studies even where
# accession numbers repeat; the accessions differ as well.
SPLIT_SEEDS: Final = {"train": 710_001, "validation": 720_001, "test": 730_001}
OVERLAP_S: Final = 0.3  # an ECG window showing this much of a finding segment is positive


@dataclass(frozen=True)
class Counts:
    """Studies per split; each split is half normal, half abnormal."""

    train: int
    validation: int
    test: int

    def of(self, split: str) -> int:
        return {"train": self.train, "validation": self.validation, "test": self.test}[split]


@dataclass(frozen=True)
class ServiceSpec:
    """One service's model, data and training budget.

    Attributes:
        service: Routing key (its entry in ``models/registry.toml``), also the folder name.
        exams: Exam codes (``synth/params/imaging_exams.csv``) whose studies the service reads,
            drawn in equal numbers.
        kind: ``classification`` or ``regression``.
        finding_code, finding_ko, finding_en: What a positive score means (classification) or the
            value's code (regression).
        findings_covered: The synthetic city's finding codes the model's score stands for.
        counts: Studies per split.
        image: The image input (``None`` for the ECG).
        waveform: The waveform input (ECG only).
        widths: Channels of the convolution stages; every stage but the last halves the grid
            (for waveforms each stage divides time by the matching entry of ``pools``).
        pools: Waveform only: the time pooling after each stage (their product is the samples
            per heatmap segment).
        stem: Image only: a stride-2 convolution first, for inputs above 64 pixels.
        flip: Image only: mirror a random half of each training batch left to right (where the
            finding and the anatomy are symmetric enough for a mirrored image to be plausible).
        steps: Optimiser steps; batch: inputs per step.
        lr: Peak learning rate (AdamW, cosine decay).
        unit, scale, flag: Regression only, as ``config.toml`` names them.
        sex_input: The model also takes the patient's sex (bone age).
        sensitivity: The operating point: among the thresholds whose sensitivity on the
            validation split is at least this, the one with the largest Youden's J.
        intended_use, inputs_note, limits: Service-specific text for the model card.
        version: The model version the run writes (``VERSION`` until a service is retrained
            for a change of its own).
        lead_sets: Waveform only: the lead subsets a recorder may have, trained by lead dropout
            (each training input keeps all its leads or, with ``dropout``, only one of these
            sets; leads named by ``WaveformSpec.lead_names``) and reported one by one in the card.
        dropout: The fraction of training inputs reduced to one of ``lead_sets``.
    """

    service: str
    exams: tuple[str, ...]
    kind: Literal["classification", "regression"]
    finding_code: str
    finding_ko: str
    finding_en: str
    findings_covered: tuple[str, ...]
    counts: Counts
    image: ImageSpec | None = None
    waveform: WaveformSpec | None = None
    widths: tuple[int, ...] = (8, 16, 32, 64)
    pools: tuple[int, ...] = ()
    stem: bool = False
    flip: bool = False
    steps: int = 1200
    batch: int = 32
    lr: float = 3e-3
    unit: str | None = None
    scale: str = "none"
    flag: str = "above"
    sex_input: bool = False
    sensitivity: float = 0.90
    intended_use: str = ""
    inputs_note: str = ""
    limits: tuple[str, ...] = field(default_factory=tuple)
    version: str = VERSION
    lead_sets: tuple[tuple[str, ...], ...] = ()
    dropout: float = 0.0

    @property
    def folder(self) -> Path:
        return MODELS_DIR / self.service

    @property
    def onnx_path(self) -> Path:
        return self.folder / f"{self.service}-{self.version}.onnx"

    @property
    def is_waveform(self) -> bool:
        return self.waveform is not None

    @property
    def seed(self) -> int:
        """The service's own training seed (weights, batches), stable across runs."""
        return 1000 + sum(ord(c) * (i + 1) for i, c in enumerate(self.service))
