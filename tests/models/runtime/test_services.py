"""The registry is the one list of AI services: a file that must agree with it and lacks a
service stops the definitions from loading, naming the file and the service.

Each case adds a service, ``chest_second_reader`` (the chest model read under a second routing
key), to a copy of the registry and leaves one of its pieces out. The definitions are loaded in a
fresh process, as ``dagster dev`` and ``gjh build`` load them, with ``GJH_MODELS_DIR`` and
``GJH_ROUTING_RULES`` pointing at the copies.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from lakehouse import reference
from models.runtime import services
from models.runtime.services import RegistryError
from tests.apps.test_layering import imports

ROOT = Path(__file__).resolve().parents[3]
MODELS = ROOT / "models"
ROUTING = ROOT / "pipelines" / "transform" / "routing.toml"
TRIAGE = ROOT / "lakehouse" / "reference" / "triage.toml"
NEW = "chest_second_reader"
ENTRY = f"""
[[service]]
service = "{NEW}"
name_ko = "흉부 X선 2차 판독"
name_en = "Chest radiograph, second reader"
modalities = ["CR", "DX"]
folder = "chest"
version = "1.0.0"
device_uid = "2.25.1"
threshold = 0.5
status = "active"
"""
RULE = f"""
[[service]]
name = "chest_second_reader_frontal"
service = "{NEW}"
modality = ["CR", "DX"]
body_part = ["CHEST"]
"""


def models_copy(tmp_path: Path, entry: str) -> Path:
    """A models folder whose registry is the packaged one plus ``entry``; the service folders
    are the packaged ones (linked)."""
    models = tmp_path / "models"
    models.mkdir()
    for folder in MODELS.iterdir():
        if (folder / "config.toml").is_file():
            (models / folder.name).symlink_to(folder, target_is_directory=True)
    text = (MODELS / "registry.toml").read_text(encoding="utf-8")
    (models / "registry.toml").write_text(text + entry, encoding="utf-8")
    return models


def load_definitions(models: Path, routing: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"GJH_MODELS_DIR": str(models), "GJH_ROUTING_RULES": str(routing)}
    return subprocess.run(
        [sys.executable, "-c", "import pipelines.definitions"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _without(key: str) -> Callable[[str], str]:
    def edit(entry: str) -> str:
        return re.sub(rf"^{key} = .*\n", "", entry, flags=re.MULTILINE)

    return edit


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.parametrize(
    ("edit", "routed", "file"),
    [
        (_without("name_ko"), True, None),
        (_without("name_en"), True, None),
        (lambda entry: entry, False, ROUTING),
        (lambda entry: entry, True, TRIAGE),
    ],
    ids=["name_ko", "name_en", "routing", "triage"],
)
def test_loading_the_definitions_fails_naming_the_file_and_the_service(
    tmp_path: Path, edit: Callable[[str], str], routed: bool, file: Path | None
) -> None:
    models = models_copy(tmp_path, edit(ENTRY))
    routing = tmp_path / "routing.toml"
    rules = ROUTING.read_text(encoding="utf-8")
    routing.write_text(rules + RULE if routed else rules, encoding="utf-8")
    loaded = load_definitions(models, routing if routed else ROUTING)
    assert loaded.returncode != 0, "the definitions loaded"
    (error,) = [line for line in loaded.stderr.splitlines() if "Error: " in line][-1:]
    assert str(file or models / "registry.toml") in error and NEW in error, error


@pytest.mark.slow
@pytest.mark.integration
def test_the_packaged_files_load_through_the_same_harness() -> None:
    loaded = load_definitions(MODELS, ROUTING)
    assert loaded.returncode == 0, loaded.stderr[-2000:]


@pytest.mark.parametrize("key", ["name_ko", "name_en", "modalities", "status"])
def test_a_listed_service_needs_its_names_modalities_and_status(tmp_path: Path, key: str) -> None:
    models = models_copy(tmp_path, _without(key)(ENTRY))
    with pytest.raises(RegistryError, match=rf"registry\.toml: service '{NEW}' needs {key}"):
        services.listed_in(models)


def test_the_catalogues_ai_services_code_list_is_the_registrys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert reference.code_set("ai_services") == frozenset(services.listed())
    monkeypatch.setenv("GJH_MODELS_DIR", str(models_copy(tmp_path, ENTRY)))
    assert NEW in reference.code_set("ai_services")
    frame = reference.codes("ai_services")
    assert frame.row(by_predicate=pl.col("service") == NEW, named=True) == {
        "service": NEW,
        "name_ko": "흉부 X선 2차 판독",
        "name_en": "Chest radiograph, second reader",
        "modalities": "CR|DX",
        "status": "active",
    }


def test_the_list_stands_below_the_lakehouse() -> None:
    """The lakehouse reads the list (the code check, the triage policy): the list imports only
    the standard library, and the lakehouse imports nothing of the pipelines."""
    project = {"apps", "gjh", "lakehouse", "models", "pipelines", "synth"}
    assert {m.split(".")[0] for m in imports(Path(services.__file__))} & project == set()
    lakehouse = {
        str(p.relative_to(ROOT)): sorted(m for m in imports(p) if m.split(".")[0] == "pipelines")
        for p in (ROOT / "lakehouse").rglob("*.py")
    }
    assert {file: found for file, found in lakehouse.items() if found} == {}


def test_the_models_folder_follows_the_environment_and_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # models_dir() is resolved once per setting (the apps ask for it on every table row); a
    # relative setting still means the folder under the working directory of the moment.
    monkeypatch.delenv(services.MODELS_ENV, raising=False)
    assert services.models_dir() == MODELS
    (tmp_path / "a" / "models").mkdir(parents=True)
    (tmp_path / "b" / "models").mkdir(parents=True)
    monkeypatch.setenv(services.MODELS_ENV, "models")
    monkeypatch.chdir(tmp_path / "a")
    assert services.models_dir() == tmp_path.resolve() / "a" / "models"
    monkeypatch.chdir(tmp_path / "b")
    assert services.models_dir() == tmp_path.resolve() / "b" / "models"
    monkeypatch.setenv(services.MODELS_ENV, str(tmp_path / "a" / "models"))
    assert services.models_dir() == tmp_path.resolve() / "a" / "models"
