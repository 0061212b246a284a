"""The AI reading services as the registry declares them: what each model reads and returns.

``models/registry.toml`` lists the 12 services (names, routing key, version, device UID,
threshold, status); each service's folder holds its ``config.toml`` and its versioned ONNX file
(``models/README.md``). Nothing here knows a particular service: a vendor's model drops in as a
folder and a registry entry. ``GJH_MODELS_DIR`` points at another models folder (a deployment's
own, or a test's).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal

from pipelines.score.preprocess import ImageSpec, WaveformSpec

MODELS_DIR: Final = Path(__file__).resolve().parents[2] / "models"
STATUSES: Final = frozenset({"active", "paused", "retired"})
MAX_MEANING: Final = 64  # a DICOM code meaning is LO: the SR cannot carry a longer one


class RegistryError(ValueError):
    """The registry or a model's config is inconsistent; the message says where."""


@dataclass(frozen=True)
class Config:
    """One model's ``config.toml``."""

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

    @property
    def unit(self) -> str | None:
        return self.outputs.get("unit")

    @property
    def scale(self) -> str:
        return self.outputs.get("scale", "none")

    @property
    def flag(self) -> str:
        return self.outputs.get("flag", "above")


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


def models_dir() -> Path:
    return Path(os.environ.get("GJH_MODELS_DIR", MODELS_DIR)).resolve()


def _config(path: Path) -> Config:
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise RegistryError(f"{path}: {error}") from error
    try:
        kind, input_ = raw["kind"], raw["input"]
        if kind not in ("classification", "regression") or input_ not in ("image", "waveform"):
            raise RegistryError(f"{path}: kind {kind!r} / input {input_!r} not supported")
        image = ImageSpec(**raw["image"]) if input_ == "image" else None
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
            outputs={k: str(v) for k, v in raw.get("outputs", {}).items()},
            inputs={k: str(v) for k, v in raw.get("inputs", {"image": "image"}).items()},
        )
    except (KeyError, TypeError) as error:
        raise RegistryError(f"{path}: missing or malformed {error}") from error


def _checked(path: Path, config: Config) -> Config:
    if len(config.finding_en) > MAX_MEANING:
        raise RegistryError(
            f"{path}: finding_en has {len(config.finding_en)} characters; a DICOM code meaning "
            f"holds at most {MAX_MEANING}"
        )
    return config


@cache
def _registry(root: Path) -> dict[str, Service]:
    path = root / "registry.toml"
    try:
        entries = tomllib.loads(path.read_text(encoding="utf-8")).get("service", [])
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise RegistryError(f"{path}: {error}") from error
    services: dict[str, Service] = {}
    for entry in entries:
        try:
            folder = root / entry["folder"]
            service = Service(
                service=entry["service"],
                name_ko=entry["name_ko"],
                name_en=entry["name_en"],
                folder=folder,
                version=str(entry["version"]),
                device_uid=str(entry["device_uid"]),
                threshold=float(entry["threshold"]),
                status=entry["status"],
                config=_checked(folder / "config.toml", _config(folder / "config.toml")),
            )
        except KeyError as error:
            raise RegistryError(f"{path}: an entry lacks {error}") from error
        if service.status not in STATUSES:
            raise RegistryError(f"{path}: {service.service} has status {service.status!r}")
        if service.service in services:
            raise RegistryError(f"{path}: {service.service} is listed twice")
        if service.status == "active" and not service.model_path.is_file():
            raise RegistryError(f"{path}: {service.service} needs {service.model_path}")
        services[service.service] = service
    return services


def registry() -> dict[str, Service]:
    """Every service in the registry, by routing key."""
    return _registry(models_dir())


def active() -> list[Service]:
    """The services that are scored now."""
    return [s for s in registry().values() if s.status == "active"]
