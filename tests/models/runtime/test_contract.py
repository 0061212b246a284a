"""A model whose declared contract does not match its ONNX file is refused when the registry
loads, naming the config file and each mismatch (``models.runtime.contract``); a contract the
input chain cannot meet is refused likewise. The models are built here with ``onnx.helper``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from models.runtime import contract, registry
from models.runtime.contract import declared_inputs
from models.runtime.services import RegistryError
from tests.models import vendor

SCORED = ("chest",)


def _load(tmp_path: Path, onnx_bytes: bytes, config: str) -> dict[str, registry.Service]:
    made = vendor.Vendor(onnx_bytes, config, "2.0.0")
    models = vendor.models_folder(tmp_path, {"chest": made}, SCORED)
    return registry._registry(models)


def _refused(tmp_path: Path, onnx_bytes: bytes, config: str, reason: str) -> None:
    config_path = tmp_path / "models" / "chest_vendor" / "config.toml"
    with pytest.raises(RegistryError) as raised:
        _load(tmp_path, onnx_bytes, config)
    message = str(raised.value)
    assert message.startswith(str(config_path)), message
    assert re.search(reason, message), message


WRAPPED = vendor.wrapped_config("chest")
MISMATCHES = {
    "input_name": (
        WRAPPED.replace('image = "input_1"', 'image = "image"'),
        r"the model needs input 'input_1', which the contract does not declare; "
        r"input 'image' is declared; the model's inputs are \['input_1'\]",
    ),
    "layout": (
        WRAPPED.replace('layout = "NHWC"', 'layout = "NCHW"'),
        r"input 'input_1' is declared \[batch, 3, 64, 64\]; the model's is \[n, 64, 64, 3\]: "
        r"dimension 1 fixed at 64, not 3",
    ),
    "size": (
        WRAPPED.replace("size = 64", "height = 96\nwidth = 128"),
        r"dimension 1 fixed at 64, not 96",
    ),
    "dtype": (
        WRAPPED.replace("[image]\n", '[image]\ndtype = "float16"\n'),
        r"input 'input_1' is declared tensor\(float16\); the model's is tensor\(float\)",
    ),
    "batch": (
        WRAPPED.replace('batch = "dynamic"', "batch = 4"),
        None,  # a fixed batch declared for a dynamic model is met: it runs in parts of 4
    ),
    "score_name": (
        WRAPPED.replace('score = "probabilities"', 'score = "score"'),
        r"score output 'score' is declared; the model's outputs are \['cam', 'probabilities'\]",
    ),
    "score_index": (
        WRAPPED.replace("score_index = 1", "score_index = 2"),
        r"score output 'probabilities' has 2 entries; score_index 2 is outside them",
    ),
    "no_score_index": (
        WRAPPED.replace("score_index = 1\n", ""),
        r"score output 'probabilities' is \[n, 2\]: declare score_index",
    ),
    "heatmap_layout": (
        WRAPPED.replace('heatmap_layout = "NHWC"', 'heatmap_layout = "NHW"'),
        r"heatmap output 'cam' is \[n, 8, 8, 2\]; heatmap_layout 'NHW' needs rank 3",
    ),
    "heatmap_channel": (
        WRAPPED.replace("heatmap_channel = 1", "heatmap_channel = 2"),
        r"heatmap output 'cam' has 2 channels; heatmap_channel 2 is outside",
    ),
}


@pytest.mark.parametrize("case", list(MISMATCHES))
def test_a_contract_that_does_not_match_the_onnx_file_is_refused_with_the_mismatch(
    case: str, tmp_path: Path
) -> None:
    config, reason = MISMATCHES[case]
    if reason is None:
        loaded = _load(tmp_path, vendor.wrapped("chest"), config)
        assert loaded["chest"].config.batch == 4
        return
    _refused(tmp_path, vendor.wrapped("chest"), config, reason)


def test_a_fixed_batch_model_must_be_declared_so(tmp_path: Path) -> None:
    dynamic = vendor.bright_spot_config(1000, 2).replace("batch = 1", 'batch = "dynamic"')
    _refused(
        tmp_path,
        vendor.bright_spot(),
        dynamic,
        r"input 'pixels' is declared \[batch, 96, 128, 3\]; the model's is \[1, 96, 128, 3\]: "
        r"a batch fixed at 1 \(declare batch = 1\)",
    )
    loaded = _load(tmp_path / "fixed", vendor.bright_spot(), vendor.bright_spot_config(1000, 2))
    spec = loaded["chest"].config.image
    assert spec is not None and (spec.height, spec.width, spec.dtype) == (96, 128, "uint8")


BAD_SETTINGS = {
    "fixed window without its values": (
        WRAPPED.replace('window = "header"', 'window = "fixed"'),
        r"\[image\] window = 'fixed' needs window_centre and window_width",
    ),
    "unknown layout": (
        WRAPPED.replace('layout = "NHWC"', 'layout = "CHW"'),
        r"\[image\] layout = 'CHW'; one of \['NCHW', 'NHWC'\]",
    ),
    "mean per channel": (
        WRAPPED.replace("mean = [", "mean = [0.0, "),
        r"\[image\] mean has 4 values; give 1 or 3",
    ),
    "softmax without an index": (
        vendor.bright_spot_config(1000, 2).replace("score_index = 1\n", ""),
        r"score_activation = 'softmax' needs score_index",
    ),
    "unknown activation": (
        WRAPPED.replace("score_index = 1", 'score_index = 1\nscore_activation = "relu"'),
        r"\[outputs\] score_activation = 'relu'; one of \['none', 'sigmoid', 'softmax'\]",
    ),
    "batch": (WRAPPED.replace('batch = "dynamic"', "batch = 0"), r"batch = 0;"),
}


@pytest.mark.parametrize("case", list(BAD_SETTINGS))
def test_a_contract_the_input_chain_cannot_meet_is_refused(case: str, tmp_path: Path) -> None:
    config, reason = BAD_SETTINGS[case]
    _refused(tmp_path, vendor.wrapped("chest"), config, reason)


def test_the_shipped_contracts_are_the_reference_input_stated_by_default() -> None:
    """The twelve configs name only size, channels and window: they mean what they always did,
    and their ONNX files meet them."""
    for service in registry.registry().values():
        config = service.config
        assert config.batch is None and config.score_activation == "none"
        assert config.output_index("score") is None and config.heatmap_layout == "NHW"
        if config.image is not None:
            spec = config.image
            assert spec.height == spec.width == spec.size
            assert (spec.layout, spec.dtype, spec.order) == ("NCHW", "float32", "RGB")
            assert spec.reads == ("grey" if spec.channels == 1 else "colour")
            assert (spec.intensity, spec.mean, spec.std) == ((0.0, 1.0), (0.0,), (1.0,))


def test_outputs_are_read_as_declared(tmp_path: Path) -> None:
    """Logits through the declared activation and index; a heatmap's channel taken out."""
    config = _load(tmp_path, vendor.bright_spot(), vendor.bright_spot_config(1000, 2))[
        "chest"
    ].config
    logits = np.array([[0.0, 2.0], [1.0, -1.0]], np.float32)
    cam = np.arange(2 * 2 * 12 * 16, dtype=np.float32).reshape(2, 2, 12, 16)
    read = contract.read(config, {"logits": logits, "cam": cam})
    expected = np.exp(logits[:, 1]) / np.exp(logits).sum(axis=1)
    np.testing.assert_allclose(read["logits"], expected, rtol=1e-6)
    assert read["cam"].shape == (2, 12, 16)
    np.testing.assert_array_equal(read["cam"], cam[:, 1])


def test_the_readmes_vendor_example_is_a_valid_contract(tmp_path: Path) -> None:
    text = (vendor.MODELS / "README.md").read_text(encoding="utf-8")
    example = text[text.index("### A vendor's model: an example") :]
    start = example.index("```toml\n") + 8
    block = example[start : example.index("\n```", start)]
    path = tmp_path / "config.toml"
    path.write_text(block, encoding="utf-8")
    config = registry._config(path)
    spec = config.image
    assert spec is not None and (spec.height, spec.width, spec.channels) == (96, 128, 3)
    assert (spec.layout, spec.order, spec.reads) == ("NHWC", "BGR", "grey")
    assert config.output_index("score") == 1 and config.score_activation == "softmax"
    assert (config.heatmap_layout, config.heatmap_channel) == ("NHWC", 1)
    assert declared_inputs(config) == {"input_1": ([None, 96, 128, 3], "tensor(float)")}
