"""A training run's registry update (``models.training.files.update_registry``): it writes what
training decides and keeps every other key of the entry, hand-edited or added later."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from models.runtime.services import RegistryError
from models.training import files
from models.training.spec import VERSION

MODELS = Path(__file__).resolve().parents[3] / "models"


def entries(path: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = tomllib.loads(path.read_text(encoding="utf-8"))["service"]
    return found


def test_retraining_with_the_same_model_rewrites_the_registry_unchanged(tmp_path: Path) -> None:
    packaged = (MODELS / "registry.toml").read_text(encoding="utf-8")
    (tmp_path / "registry.toml").write_text(packaged, encoding="utf-8")
    chest = next(e for e in entries(MODELS / "registry.toml") if e["service"] == "chest")
    onnx = (MODELS / "chest" / f"chest-{chest['version']}.onnx").read_bytes()
    files.update_registry("chest", onnx, chest["threshold"], root=tmp_path)
    assert (tmp_path / "registry.toml").read_text(encoding="utf-8") == packaged


def test_an_update_keeps_names_modalities_status_and_added_keys(tmp_path: Path) -> None:
    path = tmp_path / "registry.toml"
    text = (MODELS / "registry.toml").read_text(encoding="utf-8")
    text = text.replace('status = "active"', 'status = "paused"\nowner = "clinical lead"', 1)
    path.write_text(text, encoding="utf-8")
    before = entries(path)
    files.update_registry("chest", b"a retrained model", 0.25, root=path.parent)
    after = entries(path)
    assert [e["service"] for e in after] == [e["service"] for e in before]
    assert after[1:] == before[1:]
    chest = after[0]
    assert chest["service"] == "chest"
    assert chest["version"] == VERSION
    assert chest["device_uid"] == files.device_uid(b"a retrained model")
    assert chest["threshold"] == 0.25
    untouched = {k: v for k, v in before[0].items() if k not in files.TRAINED}
    assert {k: v for k, v in chest.items() if k not in files.TRAINED} == untouched
    assert untouched["modalities"] == ["CR", "DX"]
    assert untouched["status"] == "paused" and untouched["owner"] == "clinical lead"


def test_a_service_the_registry_does_not_list_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "registry.toml"
    path.write_text((MODELS / "registry.toml").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(RegistryError, match=r"registry\.toml: lists no service 'chest_ct'"):
        files.update_registry("chest_ct", b"model", 0.5, root=tmp_path)
