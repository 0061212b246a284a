"""Lead dropout: training inputs reduced to the lead sets recorders have.

Recorders send 12, 2 or 1 leads; the model reads the 12 standard leads with the missing ones
zero (``models.runtime.waveform``). Training therefore zeroes leads at random: each input keeps
its own leads or, with probability ``spec.dropout``, only one of ``spec.lead_sets``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from models.training.spec import ServiceSpec


def masks(spec: ServiceSpec) -> NDArray[np.float32]:
    """One row per lead set of ``spec.lead_sets``: 1 where the set has the lead, else 0."""
    assert spec.waveform is not None
    names = spec.waveform.lead_names
    out = np.zeros((len(spec.lead_sets), len(names)), dtype=np.float32)
    for k, kept in enumerate(spec.lead_sets):
        out[k, [names.index(lead) for lead in kept]] = 1.0
    return out


def dropout(spec: ServiceSpec, rng: np.random.Generator, batch: int) -> NDArray[np.float32]:
    """Per-input lead masks ``(batch, leads, 1)``: all ones, or a lead set's with probability
    ``spec.dropout``."""
    assert spec.waveform is not None
    sets = masks(spec)
    out = np.ones((batch, spec.waveform.leads), dtype=np.float32)
    reduced = rng.random(batch) < spec.dropout
    out[reduced] = sets[rng.integers(0, len(sets), int(reduced.sum()))]
    return out[:, :, None]
