"""The files a training run writes besides the ONNX model: ``config.toml``, the registry entry and
the reference inputs of ``reference.json``. numpy and the standard library only, so the tests can
use the same reference inputs without torch.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from models.training.spec import MODELS_DIR, VERSION, ServiceSpec

SERVICES_CSV: Final = MODELS_DIR.parent / "lakehouse" / "reference" / "codes" / "ai_services.csv"
REFERENCE_BATCH: Final = 3
REFERENCE_SEX: Final = (0.0, 1.0, 1.0)
REGISTRY_HEADER: Final = """\
# The AI reading services and their models (models/README.md). One [[service]] per routing key of
# lakehouse/reference/codes/ai_services.csv. Each entry is rewritten by its service's training
# script (models/<service>/train.py): version, device_uid (from the ONNX file's SHA-256) and the
# operating threshold chosen on the validation split. Edit status by hand to pause or retire one.
"""


def services() -> list[dict[str, str]]:
    """The programme's services in catalogue order (service, name_ko, name_en, modalities)."""
    with SERVICES_CSV.open(encoding="utf-8") as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


def device_uid(onnx_bytes: bytes) -> str:
    """The algorithm's DICOM UID: ``2.25.`` and the first 32 hex digits of the file's SHA-256."""
    return "2.25." + str(int(hashlib.sha256(onnx_bytes).hexdigest()[:32], 16))


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _table(rows: list[tuple[str, object]]) -> str:
    return "".join(f"{key} = {_toml_value(value)}\n" for key, value in rows)


def config_toml(spec: ServiceSpec) -> str:
    """The model's ``config.toml`` (models/README.md)."""
    head: list[tuple[str, object]] = [
        ("kind", spec.kind),
        ("input", "waveform" if spec.is_waveform else "image"),
        ("finding_code", spec.finding_code),
        ("finding_ko", spec.finding_ko),
        ("finding_en", spec.finding_en),
        ("aggregate", "max" if spec.kind == "classification" else "mean"),
    ]
    parts = [
        f"# {spec.service} reference model {VERSION}: written by models/{spec.service}/train.py\n",
        _table(head),
    ]
    if spec.image is not None:
        image = [
            ("size", spec.image.size),
            ("channels", spec.image.channels),
            ("window", spec.image.window),
        ]
        parts.append("\n[image]\n" + _table(image))
    if spec.waveform is not None:
        rate = spec.waveform.rate_hz
        seconds = spec.waveform.seconds
        wave: list[tuple[str, object]] = [
            ("rate_hz", int(rate) if float(rate).is_integer() else rate),
            ("seconds", int(seconds) if float(seconds).is_integer() else seconds),
            ("leads", spec.waveform.leads),
        ]
        parts.append("\n[waveform]\n" + _table(wave))
    outputs: list[tuple[str, object]]
    if spec.kind == "classification":
        outputs = [("score", "score"), ("heatmap", "heatmap")]
    else:
        outputs = [
            ("value", "value"),
            ("heatmap", "heatmap"),
            ("unit", spec.unit or ""),
            ("scale", spec.scale),
            ("flag", spec.flag),
        ]
    parts.append("\n[outputs]\n" + _table(outputs))
    inputs: list[tuple[str, object]] = [("image", "image")]
    if spec.sex_input:
        inputs.append(("sex", "sex"))
    parts.append("\n[inputs]\n" + _table(inputs))
    return "".join(parts)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` itself, created empty if missing (two services may
    train at once); the file is rewritten in place, so the lock stays on it."""
    with path.open("a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def update_registry(
    service: str, onnx_bytes: bytes, threshold: float, root: Path = MODELS_DIR
) -> None:
    """Rewrite ``registry.toml`` with this service's entry, entries in catalogue order.

    Services not trained yet (no entry, no folder) are left out until their script runs; an
    existing entry's status is kept."""
    path = root / "registry.toml"
    with _locked(path):
        entries: dict[str, dict[str, Any]] = {}
        if path.stat().st_size:
            for entry in tomllib.loads(path.read_text(encoding="utf-8")).get("service", []):
                entries[entry["service"]] = entry
        row = next(r for r in services() if r["service"] == service)
        status = entries.get(service, {}).get("status", "active")
        entries[service] = {
            "service": service,
            "name_ko": row["name_ko"],
            "name_en": row["name_en"],
            "folder": service,
            "version": VERSION,
            "device_uid": device_uid(onnx_bytes),
            "threshold": threshold,
            "status": status,
        }
        keys = ("service", "name_ko", "name_en", "folder", "version", "device_uid", "threshold")
        blocks = [
            "\n[[service]]\n" + _table([(k, entries[s][k]) for k in (*keys, "status")])
            for s in (r["service"] for r in services())
            if s in entries
        ]
        path.write_text(REGISTRY_HEADER + "".join(blocks), encoding="utf-8")


def reference_inputs(seed: int, shape: tuple[int, ...], waveform: bool) -> NDArray[np.float32]:
    """The seeded random inputs of ``reference.json``: images uniform in 0..1, waveforms
    uniform in -1..1 mV (``numpy.random.default_rng(seed).random(shape, float32)``)."""
    x = np.random.default_rng(seed).random(shape, dtype=np.float32)
    return (x * 2 - 1).astype(np.float32) if waveform else x


def reference_sex() -> NDArray[np.float32]:
    return np.asarray(REFERENCE_SEX, dtype=np.float32).reshape(-1, 1)
