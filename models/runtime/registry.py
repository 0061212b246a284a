"""The AI reading services' models as the registry declares them: what each reads and returns.

``models/registry.toml`` lists the services (``models.runtime.services``: names, modalities,
status) and, for each, its model: folder, version, device UID and threshold. Each service's
folder holds its ``config.toml``, its versioned ONNX file and its card (``models/README.md``).
Nothing here knows a particular service: a vendor's model drops in as a folder and a registry
entry, its ``config.toml`` declaring its input and output contract, which is held against the ONNX
file when the registry loads (``models.runtime.contract``). ``GJH_MODELS_DIR`` points at another
models folder (a deployment's own, or a test's).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal

from models.runtime import contract
from models.runtime.preprocess import ImageSpec, WaveformSpec
from models.runtime.services import Listed, RegistryError, listed_in, lookup, models_dir

MAX_MEANING: Final = 64  # a DICOM code meaning is LO: the SR cannot carry a longer one
ACTIVATIONS: Final = ("none", "sigmoid", "softmax")
HEATMAP_LAYOUTS: Final = ("NHW", "NCHW", "NHWC")
# [outputs] keys that are not output names, and their allowed values (None: any).
OUTPUT_SETTINGS: Final[dict[str, tuple[str, ...] | None]] = {
    "unit": None,
    "scale": ("none", "image_extent_mm"),
    "flag": ("above", "deviation"),
    "score_index": None,
    "value_index": None,
    "score_activation": ACTIVATIONS,
    "heatmap_layout": HEATMAP_LAYOUTS,
    "heatmap_channel": None,
}


@dataclass(frozen=True)
class Config:
    """One model's ``config.toml``.

    Attributes:
        outputs: ``[outputs]``: the ONNX names of ``score``, ``value`` and ``heatmap`` and how
            to read them (``OUTPUT_SETTINGS``), as text.
        inputs: ``[inputs]``: the ONNX names of ``image`` (or the waveform) and ``sex``.
        batch: The model's fixed batch size, or None for any (``batch = "dynamic"``).
    """

    kind: Literal["classification", "regression"]
    input: Literal["image", "waveform"]
    finding_code: str
    finding_ko: str
    finding_en: str
    aggregate: Literal["max", "mean"]
    image: ImageSpec | None
    waveform: WaveformSpec | None
    outputs: dict[str, str]
    inputs: dict[str, str]
    batch: int | None = None

    @property
    def unit(self) -> str | None:
        return self.outputs.get("unit")

    @property
    def scale(self) -> str:
        return self.outputs.get("scale", "none")

    @property
    def flag(self) -> str:
        return self.outputs.get("flag", "above")

    def output_index(self, role: str) -> int | None:
        """Which entry of a vector output is the ``score`` or ``value`` (None: one per input)."""
        index = self.outputs.get(f"{role}_index")
        return None if index is None else int(index)

    @property
    def score_activation(self) -> str:
        """``none`` (the score output is a probability), ``sigmoid`` or ``softmax`` (logits)."""
        return self.outputs.get("score_activation", "none")

    @property
    def heatmap_layout(self) -> str:
        """``NHW`` (one map per input), ``NCHW`` or ``NHWC`` (maps per channel)."""
        return self.outputs.get("heatmap_layout", "NHW")

    @property
    def heatmap_channel(self) -> int:
        """The channel of a per-channel heatmap that locates the finding."""
        return int(self.outputs.get("heatmap_channel", "0"))


@dataclass(frozen=True)
class Service:
    """One registry entry with its model's config."""

    service: str
    name_ko: str
    name_en: str
    folder: Path
    version: str
    device_uid: str
    threshold: float
    status: str
    config: Config

    @property
    def model_path(self) -> Path:
        return self.folder / f"{self.folder.name}-{self.version}.onnx"

    @property
    def algorithm_name(self) -> str:
        return f"GJH reference {self.service}"


def _config(path: Path) -> Config:
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise RegistryError(f"{path}: {error}") from error
    try:
        kind, input_ = raw["kind"], raw["input"]
        if kind not in ("classification", "regression") or input_ not in ("image", "waveform"):
            raise RegistryError(f"{path}: kind {kind!r} / input {input_!r} not supported")
        try:
            image = ImageSpec(**raw["image"]) if input_ == "image" else None
        except ValueError as error:
            raise RegistryError(f"{path}: [image] {error}") from error
        waveform = WaveformSpec(**raw.get("waveform", {})) if input_ == "waveform" else None
        return Config(
            kind=kind,
            input=input_,
            finding_code=str(raw["finding_code"]),
            finding_ko=str(raw.get("finding_ko", raw["finding_code"])),
            finding_en=str(raw.get("finding_en", raw["finding_code"])),
            aggregate=raw.get("aggregate", "max"),
            image=image,
            waveform=waveform,
            outputs=_outputs(path, raw.get("outputs", {})),
            inputs={k: str(v) for k, v in raw.get("inputs", {"image": "image"}).items()},
            batch=_batch(path, raw.get("batch", "dynamic")),
        )
    except (KeyError, TypeError) as error:
        raise RegistryError(f"{path}: missing or malformed {error}") from error


def _batch(path: Path, value: object) -> int | None:
    if value == "dynamic":
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    raise RegistryError(f'{path}: batch = {value!r}; "dynamic" or a positive integer')


def _outputs(path: Path, table: dict[str, Any]) -> dict[str, str]:
    """``[outputs]`` as text, its settings checked (an index a non-negative integer)."""
    for key, allowed in OUTPUT_SETTINGS.items():
        if key not in table:
            continue
        value = table[key]
        if key.endswith(("_index", "_channel")):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise RegistryError(f"{path}: [outputs] {key} = {value!r} is not an index")
        elif allowed is not None and value not in allowed:
            raise RegistryError(f"{path}: [outputs] {key} = {value!r}; one of {list(allowed)}")
    if table.get("score_activation") == "softmax" and "score_index" not in table:
        raise RegistryError(f"{path}: [outputs] score_activation = 'softmax' needs score_index")
    return {k: str(v) for k, v in table.items()}


def _checked(path: Path, config: Config) -> Config:
    if len(config.finding_en) > MAX_MEANING:
        raise RegistryError(
            f"{path}: finding_en has {len(config.finding_en)} characters; a DICOM code meaning "
            f"holds at most {MAX_MEANING}"
        )
    return config


def _service(path: Path, root: Path, found: Listed) -> Service:
    entry = found.entry
    try:
        folder = root / entry["folder"]
        made = Service(
            service=found.service,
            name_ko=found.name_ko,
            name_en=found.name_en,
            folder=folder,
            version=str(entry["version"]),
            device_uid=str(entry["device_uid"]),
            threshold=float(entry["threshold"]),
            status=found.status,
            config=_checked(folder / "config.toml", _config(folder / "config.toml")),
        )
    except KeyError as error:
        raise RegistryError(f"{path}: service {found.service!r} lacks {error}") from error
    if made.status == "active" and not made.model_path.is_file():
        raise RegistryError(f"{path}: {made.service} needs {made.model_path}")
    if made.model_path.is_file():
        contract.check(folder / "config.toml", made.config, made.model_path)
    return made


@cache
def _registry(root: Path) -> dict[str, Service]:
    path = root / "registry.toml"
    return {code: _service(path, root, found) for code, found in listed_in(root).items()}


def registry() -> dict[str, Service]:
    """Every service in the registry with its model, by routing key."""
    return _registry(models_dir())


def service(code: str) -> Service:
    """One service by its routing key.

    Raises:
        RegistryError: The registry does not list ``code`` (a table holding it was written
            under another registry).
    """
    lookup(code)
    return registry()[code]


def card(code: str) -> str | None:
    """A service's model card (``card.md`` in its folder of the models folder in use, so
    ``GJH_MODELS_DIR`` decides), or ``None`` if its model ships none."""
    path = service(code).folder / "card.md"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def active() -> list[Service]:
    """The services that are scored now."""
    return [s for s in registry().values() if s.status == "active"]
