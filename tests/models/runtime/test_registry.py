"""The models' registry reader (``models.runtime.registry``): a service by its key and its model
card, from the models folder ``GJH_MODELS_DIR`` names."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.runtime import registry
from models.runtime.services import RegistryError

MODELS = Path(__file__).resolve().parents[3] / "models"


def models_with_cards(tmp_path: Path, card: str | None) -> Path:
    """A models folder with the packaged registry and models (linked) and, for every service,
    ``card`` as its card (none if ``None``)."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "registry.toml").symlink_to(MODELS / "registry.toml")
    for folder in MODELS.iterdir():
        if not (folder / "config.toml").is_file():
            continue
        (models / folder.name).mkdir()
        for file in folder.iterdir():
            if file.name != "card.md":
                (models / folder.name / file.name).symlink_to(file)
        if card is not None:
            (models / folder.name / "card.md").write_text(card, encoding="utf-8")
    return models


def test_a_card_is_read_from_the_models_folder_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = (MODELS / "chest" / "card.md").read_text(encoding="utf-8")
    assert registry.card("chest") == shipped
    own = "# A deployment's own chest model card\n"
    monkeypatch.setenv("GJH_MODELS_DIR", str(models_with_cards(tmp_path, own)))
    assert registry.card("chest") == own
    assert registry.service("chest").folder == tmp_path / "models" / "chest"


def test_a_model_without_a_card_has_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GJH_MODELS_DIR", str(models_with_cards(tmp_path, None)))
    assert registry.card("ecg") is None


def test_a_service_the_registry_does_not_list_is_refused_by_name() -> None:
    with pytest.raises(RegistryError, match=r"registry\.toml: lists no service 'chest_ct'"):
        registry.service("chest_ct")
    with pytest.raises(RegistryError, match="chest_ct"):
        registry.card("chest_ct")
