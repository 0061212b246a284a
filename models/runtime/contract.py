"""A model's declared contract held against its ONNX file, and its outputs read as declared.

A vendor's model comes with its own tensors: input names, shape, layout and element type, and
outputs under its own names (a probability or logits, a vector of classes, a heatmap with or
without a channel axis). Its ``config.toml`` declares them (models/README.md, "The input
contract"); ``check`` compares the declaration with what onnxruntime reports of the file once, when
the registry loads, so a model that would fail or be misread at scoring is refused before it
scores anything, with the file and the mismatch named. ``read`` turns the raw outputs into what
scoring reads: a score in 0..1 or a value per input, and a heatmap (inputs, rows, columns) or
(inputs, segments).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from numpy.typing import NDArray

from models.runtime.services import RegistryError

if TYPE_CHECKING:
    from models.runtime.registry import Config

# onnxruntime's names of the element types the contract can declare.
ELEMENTS: Final = {
    "float32": "tensor(float)",
    "float16": "tensor(float16)",
    "float64": "tensor(double)",
    "uint8": "tensor(uint8)",
}
FLOAT_ELEMENTS: Final = frozenset({"tensor(float)", "tensor(float16)", "tensor(double)"})
Dims = list[int | None]  # None: any size (a dynamic batch)


def declared_inputs(config: Config) -> dict[str, tuple[Dims, str]]:
    """Each input the contract declares: its ONNX name, dimensions and element type."""
    inputs: dict[str, tuple[Dims, str]] = {}
    name = config.inputs.get("image", "image")
    if config.image is not None:
        inputs[name] = (config.image.dims(config.batch), ELEMENTS[config.image.dtype])
    elif config.waveform is not None:
        wave = config.waveform
        samples = round(wave.rate_hz * wave.seconds)
        inputs[name] = ([config.batch, wave.leads, samples], ELEMENTS["float32"])
    if "sex" in config.inputs:
        inputs[config.inputs["sex"]] = ([config.batch, 1], ELEMENTS["float32"])
    return inputs


def _shown(dims: Sequence[object]) -> str:
    return "[" + ", ".join("batch" if d is None else str(d) for d in dims) + "]"


def _mismatch(declared: Dims, actual: Sequence[object]) -> str | None:
    """Why the model's dimensions cannot take the declared ones, or None if they can. A named
    (symbolic) dimension takes any size; a fixed one must be declared as it is."""
    if len(declared) != len(actual):
        return f"rank {len(actual)}, not {len(declared)}"
    for axis, (want, have) in enumerate(zip(declared, actual, strict=True)):
        if not isinstance(have, int) or have <= 0:
            continue
        if want is None:
            return f"a batch fixed at {have} (declare batch = {have})"
        if want != have:
            return f"dimension {axis} fixed at {have}, not {want}"
    return None


def _check_inputs(config: Config, session: Any) -> list[str]:
    problems = []
    actual = {i.name: i for i in session.get_inputs()}
    declared = declared_inputs(config)
    for name in sorted(set(actual) - set(declared)):
        problems.append(f"the model needs input {name!r}, which the contract does not declare")
    for name, (dims, element) in declared.items():
        found = actual.get(name)
        if found is None:
            problems.append(f"input {name!r} is declared; the model's inputs are {sorted(actual)}")
            continue
        why = _mismatch(dims, found.shape)
        if why:
            problems.append(
                f"input {name!r} is declared {_shown(dims)}; the model's is "
                f"{_shown(found.shape)}: {why}"
            )
        if found.type != element:
            problems.append(f"input {name!r} is declared {element}; the model's is {found.type}")
    return problems


def _vector(config: Config, role: str, found: Any) -> str | None:
    """Why a score or value output cannot be read as declared, or None."""
    index = config.output_index(role)
    shape = list(found.shape)
    if index is None:
        if len(shape) == 1 or (len(shape) == 2 and shape[1] == 1):
            return None
        return f"is {_shown(shape)}: declare {role}_index for a vector per input"
    if len(shape) != 2:
        return f"is {_shown(shape)}; {role}_index needs (inputs, classes)"
    if isinstance(shape[1], int) and not 0 <= index < shape[1]:
        return f"has {shape[1]} entries; {role}_index {index} is outside them"
    return None


def _heatmap(config: Config, found: Any) -> str | None:
    """Why the heatmap cannot be read as declared, or None."""
    shape = list(found.shape)
    if config.input == "waveform":
        return (
            None if len(shape) == 2 else f"is {_shown(shape)}; a waveform's is (inputs, segments)"
        )
    layout = config.heatmap_layout
    if len(shape) != len(layout):
        return f"is {_shown(shape)}; heatmap_layout {layout!r} needs rank {len(layout)}"
    if "C" in layout:
        channels = shape[layout.index("C")]
        if isinstance(channels, int) and not 0 <= config.heatmap_channel < channels:
            return f"has {channels} channels; heatmap_channel {config.heatmap_channel} is outside"
    return None


def _check_outputs(config: Config, session: Any) -> list[str]:
    problems = []
    actual = {o.name: o for o in session.get_outputs()}
    role = "score" if config.kind == "classification" else "value"
    for key in (role, "heatmap"):
        name = config.outputs.get(key, key)
        found = actual.get(name)
        if found is None:
            if key == role or "heatmap" in config.outputs:
                problems.append(
                    f"{key} output {name!r} is declared; the model's outputs are {sorted(actual)}"
                )
            continue
        why = _vector(config, key, found) if key == role else _heatmap(config, found)
        if why:
            problems.append(f"{key} output {name!r} {why}")
        if found.type not in FLOAT_ELEMENTS:
            problems.append(f"{key} output {name!r} is {found.type}, not a float tensor")
        batch = found.shape[0] if found.shape else None
        if isinstance(batch, int) and batch > 0 and batch != config.batch:
            problems.append(f"{key} output {name!r} has a batch fixed at {batch}")
    return problems


def check(config_path: Path, config: Config, model: Path) -> None:
    """Refuse a model whose ONNX inputs or outputs do not match its declared contract.

    Raises:
        RegistryError: Names each mismatch (names, rank, fixed dimensions, element types, output
            indices), with the config file and the model file.
    """
    import onnxruntime as ort  # here: the apps read the registry without ever scoring

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own types for a damaged file
        raise RegistryError(f"{model}: onnxruntime cannot load it: {error}") from error
    problems = _check_inputs(config, session) + _check_outputs(config, session)
    if problems:
        raise RegistryError(
            f"{config_path}: the contract does not match {model.name}: " + "; ".join(problems)
        )


def _softmax(values: NDArray[np.float64]) -> NDArray[np.float64]:
    shifted = np.exp(values - values.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True), dtype=np.float64)


def read(config: Config, raw: dict[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
    """The model's outputs by name, the declared ones as scoring reads them: the score (a
    probability) or value as one number per input, the heatmap without its channel axis."""
    out = dict(raw)
    role = "score" if config.kind == "classification" else "value"
    name = config.outputs.get(role, role)
    if name in raw:
        values = np.asarray(raw[name], dtype=np.float64)
        values = values.reshape(len(values), -1)
        if role == "score" and config.score_activation == "softmax":
            values = _softmax(values)
        elif role == "score" and config.score_activation == "sigmoid":
            values = 1.0 / (1.0 + np.exp(-values))
        index = config.output_index(role)
        out[name] = values[:, 0 if index is None else index].astype(np.float32)
    heatmap = config.outputs.get("heatmap", "heatmap")
    if heatmap in raw and config.input == "image" and "C" in config.heatmap_layout:
        axis = config.heatmap_layout.index("C")
        out[heatmap] = np.take(raw[heatmap], config.heatmap_channel, axis=axis)
    return out
