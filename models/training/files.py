"""The files a training run writes besides the ONNX model: ``config.toml``, the registry entry and
the reference inputs of ``reference.json``. numpy and the standard library only, so the tests can
use the same reference inputs without torch.
"""

from __future__ import annotations

import fcntl
import hashlib
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from models.runtime.services import RegistryError
from models.training.spec import MODELS_DIR, VERSION, ServiceSpec

REFERENCE_BATCH: Final = 3
REFERENCE_SEX: Final = (0.0, 1.0, 1.0)
REGISTRY_HEADER: Final = """\
# The programme's AI reading services and their models: the one list of services (models/README.md
# says what adding one takes). Every service listed needs its names and modalities here, its rules
# in pipelines/transform/routing.toml (unless retired) and its policy in
# lakehouse/reference/triage.toml; loading the definitions fails, naming the file and the service,
# when one is missing. A service's training script (models/<service>/train.py) rewrites only
# version, device_uid (from the ONNX file's SHA-256) and the operating threshold chosen on the
# validation split; edit the other keys by hand (status to pause or retire a service).
"""
TRAINED: Final = ("version", "device_uid", "threshold")


def device_uid(onnx_bytes: bytes) -> str:
    """The algorithm's DICOM UID: ``2.25.`` and the first 32 hex digits of the file's SHA-256."""
    return "2.25." + str(int(hashlib.sha256(onnx_bytes).hexdigest()[:32], 16))


def _toml_value(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
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
        f"# {spec.service} reference model {spec.version}: written by "
        f"models/{spec.service}/train.py\n",
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
            ("lead_names", list(spec.waveform.lead_names)),
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
    service: str,
    onnx_bytes: bytes,
    threshold: float,
    root: Path = MODELS_DIR,
    version: str = VERSION,
) -> None:
    """Write this service's trained model into its ``registry.toml`` entry.

    Only the keys training decides change (``TRAINED``: version, device UID, threshold, placed
    before ``status`` when new); every other key, hand-edited or added later, and the order of
    the entries are kept.

    Raises:
        RegistryError: The registry does not list ``service``: its entry (names, modalities,
            folder, status) is written by hand first (models/README.md).
    """
    path = root / "registry.toml"
    with _locked(path):
        entries: list[dict[str, Any]] = tomllib.loads(path.read_text(encoding="utf-8")).get(
            "service", []
        )
        entry = next((e for e in entries if e.get("service") == service), None)
        if entry is None:
            raise RegistryError(
                f"{path}: lists no service {service!r}; add its entry first (models/README.md)"
            )
        trained = dict(zip(TRAINED, (version, device_uid(onnx_bytes), threshold), strict=True))
        kept = [(k, v) for k, v in entry.items() if k not in TRAINED]
        at = next((i for i, (k, _) in enumerate(kept) if k == "status"), len(kept))
        entry.clear()
        entry.update([*kept[:at], *trained.items(), *kept[at:]])
        blocks = ["\n[[service]]\n" + _table(list(e.items())) for e in entries]
        path.write_text(REGISTRY_HEADER + "".join(blocks), encoding="utf-8")


def reference_inputs(seed: int, shape: tuple[int, ...], waveform: bool) -> NDArray[np.float32]:
    """The seeded random inputs of ``reference.json``: images uniform in 0..1, waveforms
    uniform in -1..1 mV (``numpy.random.default_rng(seed).random(shape, float32)``)."""
    x = np.random.default_rng(seed).random(shape, dtype=np.float32)
    return (x * 2 - 1).astype(np.float32) if waveform else x


def reference_sex() -> NDArray[np.float32]:
    return np.asarray(REFERENCE_SEX, dtype=np.float32).reshape(-1, 1)
