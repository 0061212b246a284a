"""Vendors' models built in the tests with ``onnx.helper``, and models folders that declare them.

``wrapped`` is a shipped 64 x 64 greyscale classifier (chest, spine, mammography, prostate) inside
a vendor's tensors: channels-last BGR input in 0..255 with per-channel mean/std (the Caffe
convention), its score as the second column of a ``probabilities`` vector and its heatmap as
channel 1 of a channels-last ``cam``. Read as declared, it must give exactly the shipped model's
findings; read any other way it cannot.
``bright_spot`` is a non-square (96 x 128) uint8 model with a fixed batch of 1 whose heatmap is
the mean brightness of 8 x 8 cells and whose logits say whether any cell is bright.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from models.training.files import device_uid

MODELS: Final = Path(__file__).resolve().parents[2] / "models"
OPSET: Final = 17
# Caffe's ImageNet statistics in BGR order, 0..255: distinct per channel, so a model fed its
# channels in the wrong order or normalised with another channel's statistics scores otherwise.
MEAN_BGR: Final = (103.53, 116.28, 123.675)
STD_BGR: Final = (57.375, 57.12, 58.395)


def _const(name: str, value: Any, dtype: type = np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


# The shipped classifiers that read 64 x 64 greyscale images.
WRAPPABLE: Final = ("chest", "spine_fracture", "mammography", "prostate")


def wrapped(service: str) -> bytes:
    """A shipped 64 x 64 greyscale classifier behind a vendor's input and output tensors."""
    shipped = onnx.load(str(MODELS / service / f"{service}-1.0.0.onnx"))
    inner = shipped.graph
    (image,) = [i.name for i in inner.input]
    score, heatmap = [o.name for o in inner.output]
    pre = [
        # Channel 0 is blue in BGR: undo blue's normalisation and scale, then channels first.
        helper.make_node("Slice", ["input_1", "v_start", "v_end", "v_axis"], ["v_blue"]),
        helper.make_node("Mul", ["v_blue", "v_std"], ["v_scaled"]),
        helper.make_node("Add", ["v_scaled", "v_mean"], ["v_byte"]),
        helper.make_node("Div", ["v_byte", "v_255"], ["v_unit"]),
        helper.make_node("Transpose", ["v_unit"], [image], perm=[0, 3, 1, 2]),
    ]
    post = [
        helper.make_node("Unsqueeze", [score, "v_axis1"], ["v_positive"]),
        helper.make_node("Sub", ["v_one", "v_positive"], ["v_negative"]),
        helper.make_node("Concat", ["v_negative", "v_positive"], ["probabilities"], axis=1),
        helper.make_node("Unsqueeze", [heatmap, "v_axis3"], ["v_map"]),
        helper.make_node("Neg", ["v_map"], ["v_inverse"]),
        helper.make_node("Concat", ["v_inverse", "v_map"], ["cam"], axis=3),
    ]
    constants = [
        _const("v_start", [0], np.int64),
        _const("v_end", [1], np.int64),
        _const("v_axis", [3], np.int64),
        _const("v_axis1", [1], np.int64),
        _const("v_axis3", [3], np.int64),
        _const("v_std", STD_BGR[0]),
        _const("v_mean", MEAN_BGR[0]),
        _const("v_255", 255.0),
        _const("v_one", 1.0),
    ]
    graph = helper.make_graph(
        pre + list(inner.node) + post,
        f"vendor_{service}",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["n", 64, 64, 3])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["n", 2]),
            helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["n", 8, 8, 2]),
        ],
        list(inner.initializer) + constants,
    )
    return _bytes(graph)


def bright_spot(batch: int = 1) -> bytes:
    """A 96 x 128 channels-last uint8 model: ``cam`` (N, 2, 12, 16) holds each 8 x 8 cell's
    mean brightness (channel 1) and its complement (channel 0); ``logits`` (N, 2) are 0 and
    ``20 * (brightest cell - 0.5)``."""
    nodes = [
        helper.make_node("Cast", ["pixels"], ["b_float"], to=TensorProto.FLOAT),
        helper.make_node("Slice", ["b_float", "b_start", "b_end", "b_axis"], ["b_red"]),
        helper.make_node("Div", ["b_red", "b_255"], ["b_unit"]),
        helper.make_node("Transpose", ["b_unit"], ["b_first"], perm=[0, 3, 1, 2]),
        helper.make_node(
            "AveragePool", ["b_first"], ["b_cells"], kernel_shape=[8, 8], strides=[8, 8]
        ),
        helper.make_node("Sub", ["b_one", "b_cells"], ["b_dark"]),
        helper.make_node("Concat", ["b_dark", "b_cells"], ["cam"], axis=1),
        helper.make_node("ReduceMax", ["b_cells"], ["b_peak"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["b_peak", "b_shape"], ["b_flat"]),
        helper.make_node("Sub", ["b_flat", "b_half"], ["b_centred"]),
        helper.make_node("Mul", ["b_centred", "b_gain"], ["b_logit"]),
        helper.make_node("Mul", ["b_logit", "b_zero"], ["b_zeros"]),
        helper.make_node("Concat", ["b_zeros", "b_logit"], ["logits"], axis=1),
    ]
    constants = [
        _const("b_start", [0], np.int64),
        _const("b_end", [1], np.int64),
        _const("b_axis", [3], np.int64),
        _const("b_shape", [-1, 1], np.int64),
        _const("b_255", 255.0),
        _const("b_one", 1.0),
        _const("b_half", 0.5),
        _const("b_gain", 20.0),
        _const("b_zero", 0.0),
    ]
    graph = helper.make_graph(
        nodes,
        "vendor_bright_spot",
        [helper.make_tensor_value_info("pixels", TensorProto.UINT8, [batch, 96, 128, 3])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 2]),
            helper.make_tensor_value_info("cam", TensorProto.FLOAT, [batch, 2, 12, 16]),
        ],
        constants,
    )
    return _bytes(graph)


def _bytes(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def wrapped_config(service: str) -> str:
    """``wrapped(service)``'s contract: the shipped finding, the vendor's tensors."""
    shipped = (MODELS / service / "config.toml").read_text(encoding="utf-8")
    head = shipped[: shipped.index("\n[")]
    return f"""{head}
batch = "dynamic"

[image]
size = 64
channels = 3
reads = "grey"
order = "BGR"
layout = "NHWC"
window = "header"
intensity = [0, 255]
mean = {list(MEAN_BGR)}
std = {list(STD_BGR)}

[outputs]
score = "probabilities"
score_index = 1
heatmap = "cam"
heatmap_layout = "NHWC"
heatmap_channel = 1

[inputs]
image = "input_1"
"""


def bright_spot_config(centre: float, width: float) -> str:
    """``bright_spot``'s contract, with a fixed window."""
    return f"""\
kind = "classification"
input = "image"
finding_code = "lung_opacity"
finding_ko = "폐 병변(결절·경화) 의심"
finding_en = "Suspected lung lesion (nodule or consolidation)"
aggregate = "max"
batch = 1

[image]
height = 96
width = 128
channels = 3
reads = "grey"
layout = "NHWC"
dtype = "uint8"
window = "fixed"
window_centre = {centre}
window_width = {width}
intensity = [0, 255]

[outputs]
score = "logits"
score_index = 1
score_activation = "softmax"
heatmap = "cam"
heatmap_layout = "NCHW"
heatmap_channel = 1

[inputs]
image = "pixels"
"""


@dataclass(frozen=True)
class Vendor:
    """A vendor's model as it arrives: the ONNX file, its declared contract and its version."""

    onnx: bytes
    config: str
    version: str


def _value(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)  # JSON strings, numbers and lists are TOML


def models_folder(root: Path, vendors: dict[str, Vendor], scored: Collection[str]) -> Path:
    """A models folder: the packaged one (linked), each service in ``vendors`` with its model
    replaced by the vendor's (folder ``<service>_vendor``), and every service not in ``scored``
    paused (routed, not scored), so a run scores those only."""
    models = root / "models"
    models.mkdir(parents=True)
    for folder in MODELS.iterdir():
        if (folder / "config.toml").is_file():
            (models / folder.name).symlink_to(folder)
    entries = tomllib.loads((MODELS / "registry.toml").read_text(encoding="utf-8"))["service"]
    lines = []
    for entry in entries:
        made = vendors.get(entry["service"])
        if made is not None:
            folder = models / f"{entry['service']}_vendor"
            folder.mkdir()
            (folder / f"{folder.name}-{made.version}.onnx").write_bytes(made.onnx)
            (folder / "config.toml").write_text(made.config, encoding="utf-8")
            entry |= {"folder": folder.name, "version": made.version}
            entry["device_uid"] = device_uid(made.onnx)
        if entry["service"] not in scored:
            entry["status"] = "paused"
        lines.append("[[service]]\n" + "".join(f"{k} = {_value(v)}\n" for k, v in entry.items()))
    (models / "registry.toml").write_text("\n".join(lines), encoding="utf-8")
    return models
