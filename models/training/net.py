# mypy: allow-subclassing-any
"""The reference networks: small CNNs whose last layer is a 1x1 convolution producing a map.

The map is the explanation. For classifiers each cell is a logit and the score is the sigmoid of
the map's log-sum-exp pool (a smooth maximum: one hot cell is enough for a positive image), scaled
by the Platt calibration fitted on the validation split. For regressions each cell is a
contribution and the value is the map's mean (plus a sex term for bone age), in the value's unit.

torch is a training-time dependency only (the ``.venv-train`` environment, ``make train``); the
project's own environment and its type check have no torch, hence the ignores on the import.
"""

from __future__ import annotations

import math

import torch  # type: ignore[import-not-found,unused-ignore]
from torch import nn

from models.training.spec import ServiceSpec

SHARPNESS = 4.0  # log-sum-exp pooling: 1/r log(mean(exp(r * map)))


def lse_pool(maps: torch.Tensor, cells: int) -> torch.Tensor:
    """(N, ...) map of ``cells`` cells -> (N,) smooth maximum over every cell."""
    return (torch.logsumexp(SHARPNESS * maps.flatten(1), dim=1) - math.log(cells)) / SHARPNESS


def _block2d(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _block1d(cin: int, cout: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(cin, cout, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm1d(cout),
        nn.ReLU(inplace=True),
    )


def cells(spec: ServiceSpec) -> int:
    """How many cells the map has: the input grid over the pooling."""
    if spec.waveform is not None:
        return round(spec.waveform.rate_hz * spec.waveform.seconds) // int(math.prod(spec.pools))
    assert spec.image is not None
    side = (spec.image.size // (2 if spec.stem else 1)) >> (len(spec.widths) - 1)
    return side * side


class MapNet(nn.Module):
    """Input -> (N, h, w) map (images) or (N, segments) map (waveforms)."""

    def __init__(self, spec: ServiceSpec) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if spec.waveform is not None:
            cin = spec.waveform.leads
            kernels = (7, 7, 5, 3, 3)
            for k, (width, pool) in enumerate(zip(spec.widths, spec.pools, strict=True)):
                layers.append(_block1d(cin, width, kernels[min(k, len(kernels) - 1)]))
                if pool > 1:
                    layers.append(nn.MaxPool1d(pool))
                cin = width
            self.head: nn.Module = nn.Conv1d(cin, 1, 1)
        else:
            assert spec.image is not None
            cin = spec.image.channels
            if spec.stem:
                layers.append(_block2d(cin, spec.widths[0] // 2, stride=2))
                cin = spec.widths[0] // 2
            for k, width in enumerate(spec.widths):
                layers.append(_block2d(cin, width))
                if k < len(spec.widths) - 1:
                    layers.append(nn.MaxPool2d(2))
                cin = width
            self.head = nn.Conv2d(cin, 1, 1)
        self.features = nn.Sequential(*layers)
        self.cells = cells(spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)


class Classifier(nn.Module):
    """Training form: the map and its pooled logit."""

    def __init__(self, spec: ServiceSpec) -> None:
        super().__init__()
        self.net = MapNet(spec)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.net(x)
        return lse_pool(maps, self.net.cells), maps


class Regressor(nn.Module):
    """Training form: the map and its mean plus the sex term, in standardised units."""

    def __init__(self, spec: ServiceSpec) -> None:
        super().__init__()
        self.net = MapNet(spec)
        self.sex = nn.Linear(1, 1) if spec.sex_input else None

    def forward(
        self, x: torch.Tensor, sex: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.net(x)
        value = maps.flatten(1).mean(dim=1)
        if self.sex is not None and sex is not None:
            value = value + self.sex(sex).squeeze(1)
        return value, maps


class ExportedClassifier(nn.Module):
    """What the ONNX file holds: ``score`` (N,) and ``heatmap``, calibrated by Platt (a, b)."""

    def __init__(self, model: Classifier, a: float, b: float) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("a", torch.tensor(a, dtype=torch.float32))
        self.register_buffer("b", torch.tensor(b, dtype=torch.float32))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled, maps = self.model(image)
        return torch.sigmoid(self.a * pooled + self.b), maps


class ExportedRegressor(nn.Module):
    """What the ONNX file holds: ``value`` (N,) and ``heatmap`` in the value's unit.

    The heatmap is the map rescaled so that its mean plus the sex term is the value."""

    def __init__(self, model: Regressor, mean: float, sd: float) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("sd", torch.tensor(sd, dtype=torch.float32))

    def forward(
        self, image: torch.Tensor, sex: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        value, maps = self.model(image, sex)
        return value * self.sd + self.mean, maps * self.sd + self.mean


def parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))
