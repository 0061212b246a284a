"""Shared synthetic cities, generated once per test session and read by many tests.

The generator's tests read the deliveries exactly as the pipelines will (from the files, through
their manifests); the pipelines' tests ingest them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest

from lakehouse.config import environment
from synth.city import generate
from synth.config import CityConfig

if TYPE_CHECKING:
    from tests.pipelines.conftest import Lake


@dataclass(frozen=True)
class City:
    cfg: CityConfig
    out: Path

    @property
    def faults(self) -> dict:
        return json.loads((self.out / "faults.json").read_text(encoding="utf-8"))

    def faulty_files(self) -> set[str]:
        """Files quarantined whole (wrongly declared, duplicated, damaged)."""
        return {f["path"] for f in self.faults["faults"] if f["line"] is None}

    def row_faults(self) -> dict[str, dict[int, dict]]:
        out: dict[str, dict[int, dict]] = {}
        for f in self.faults["faults"]:
            if f["line"] is not None:
                out.setdefault(f["path"], {})[f["line"]] = f
        return out

    def deliveries(self, source: str) -> Iterator[tuple[Path, dict]]:
        for manifest in sorted((self.out / source).glob("*/delivery.json")):
            yield manifest.parent, json.loads(manifest.read_text(encoding="utf-8"))

    def json_lines(self, source: str, keep: Callable[[dict | None], bool]) -> list[dict]:
        """Every record of a JSON Lines source across deliveries, skipping whole-file faults and
        the lines for which ``keep`` (given the line's fault in faults.json, or None) is false."""
        skip, bad = self.faulty_files(), self.row_faults()
        records = []
        for folder, manifest in self.deliveries(source):
            for entry in manifest["files"]:
                rel = (folder / entry["name"]).relative_to(self.out).as_posix()
                if rel in skip:
                    continue
                lines = (folder / entry["name"]).read_text(encoding="utf-8").splitlines()
                for i, line in enumerate(lines, start=1):
                    if keep(bad.get(rel, {}).get(i)):
                        records.append(json.loads(line))
        return records

    def table(self, source: str, prefix: str) -> pl.DataFrame:
        """Every well-formed row of one table across deliveries, as text, skipping whole-file
        faults and the rows faults.json lists."""
        frames = []
        skip_files = self.faulty_files()
        row_faults = self.row_faults()
        for folder, manifest in self.deliveries(source):
            for entry in manifest["files"]:
                name = entry["name"]
                rel = (folder / name).relative_to(self.out).as_posix()
                if not name.startswith(prefix) or rel in skip_files:
                    continue
                text = (folder / name).read_bytes().decode(entry["encoding"])
                lines = text.splitlines()
                bad = row_faults.get(rel, {})
                keep = [lines[0]] + [x for i, x in enumerate(lines[1:], start=2) if i not in bad]
                frame = pl.read_csv(
                    "\n".join(keep).encode(), infer_schema=False, separator=entry["delimiter"]
                )
                frames.append(frame.with_columns(pl.lit(folder.name).alias("_delivery")))
        return pl.concat(frames, how="vertical_relaxed")


def once(
    tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], object]
) -> Path:
    """A folder that ``make`` fills once per test run, for a session fixture.

    ``make test`` runs the tests in two pytest-xdist workers, processes with session fixtures
    of their own. What a city generation or a build leaves is shared by both: the first worker
    to ask makes it in the run's shared temporary folder under a file lock, and the other waits
    for it and reads it, instead of spending minutes making the same thing again. Nobody
    writes to what ``make`` left (the users that write take a copy). Without xdist this is a
    plain ``mktemp``."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        folder = tmp_path_factory.mktemp(name)
        make(folder)
        return folder
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent  # the run's folder, above each worker's
    folder, done = shared / name, shared / f"{name}.done"
    with FileLock(shared / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # a worker that failed making it
            folder.mkdir()
            make(folder)
            done.touch()
    return folder


def _make(tmp_path_factory: pytest.TempPathFactory, name: str, cfg: CityConfig) -> City:
    folder = once(tmp_path_factory, name, lambda folder: generate(cfg, folder / "sources"))
    return City(cfg, folder / "sources")


@pytest.fixture(scope="session")
def demo_city(tmp_path_factory: pytest.TempPathFactory) -> City:
    """The demo city's shape (5,000 citizens, one year) with faults injected, on two workers."""
    cfg = CityConfig(
        citizens=5000, start=date(2025, 1, 1), days=365, seed=11, inject_faults=True, workers=2
    )
    return _make(tmp_path_factory, "demo", cfg)


@pytest.fixture(scope="session")
def small_city(tmp_path_factory: pytest.TempPathFactory) -> City:
    """A city of a few hundred citizens over a quarter: the smallest shape that must still work."""
    cfg = CityConfig(citizens=300, start=date(2025, 3, 1), days=90, seed=3, inject_faults=True)
    return _make(tmp_path_factory, "small", cfg)


@pytest.fixture(scope="session")
def history_city(tmp_path_factory: pytest.TempPathFactory) -> City:
    """A small city over two months whose linked citizens' claims history reaches back to 2014
    (the record-link history extract), with faults injected."""
    cfg = CityConfig(
        citizens=1500,
        start=date(2025, 1, 1),
        days=59,
        seed=5,
        inject_faults=True,
        history_from=date(2014, 1, 1),
    )
    return _make(tmp_path_factory, "history", cfg)


@pytest.fixture(scope="session")
def adverse_city(tmp_path_factory: pytest.TempPathFactory) -> City:
    """A city large and long enough to find the planted adverse drug effect: 6,000 citizens over
    two years (a 180-day washout, then a year and a half of new drug starts and events). At 4,000
    citizens the planted signal's lower bound fell below 1 (docs/signals.md, power)."""
    cfg = CityConfig(citizens=6000, start=date(2024, 1, 1), days=730, seed=7, workers=2)
    return _make(tmp_path_factory, "adverse", cfg)


@pytest.fixture(scope="session")
def built_demo(demo_city: City, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The demo city (5,000 citizens, a year, faults injected) built end to end by
    ``pipelines.build`` with the project's Definitions, as ``gjh build`` does."""
    import dagster as dg

    from pipelines.build import build
    from tests.pipelines.conftest import Lake

    def make(folder: Path) -> None:
        with Lake(folder / "lakehouse", demo_city.out).active():
            build(demo_city.out, dg.DagsterInstance.ephemeral(), progress=lambda _: None)

    return Lake(once(tmp_path_factory, "built_demo", make) / "lakehouse", demo_city.out)


@pytest.fixture(scope="session")
def small_build(small_city: City, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The small city built end to end once per session by ``pipelines.build``, as ``gjh build``
    does: into a lakehouse and a Dagster instance of its own (``DAGSTER_HOME`` is the folder
    ``dagster`` beside the lakehouse), which records the runs the officials' data health and
    ``gjh serve``'s daemon read.

    A minute or two here, paid once instead of once per module that needs the small city
    built (the apps, the operations tests, data health, ``gjh serve``). Nobody writes to it:
    every user takes a copy (``Lake.copy``: the tables hard-linked, the Dagster home copied),
    so what one module writes reaches no other."""
    from pipelines.build import build
    from pipelines.instance import instance
    from tests.pipelines.conftest import Lake

    def make(folder: Path) -> None:
        lake = Lake(folder / "lakehouse", small_city.out)
        with lake.active(), environment(DAGSTER_HOME=str(folder / "dagster")), instance() as runs:
            build(small_city.out, runs, progress=lambda _: None)

    return Lake(once(tmp_path_factory, "small_build", make) / "lakehouse", small_city.out)


# Tables the apps read; ``platform_lake`` copies them from the built demo.
APP_TABLES = (
    "gold/citizen_timeline",
    "gold/citizen_consent",
    "gold/programme_uptake_daily",
    "gold/programme_uptake_published",
    "silver/imaging_studies",
    "silver/institutions",
    "silver/citizens",
    "silver/app_users",
    "silver/programme_events",
    "vault/identities",
    "ai/findings",
    "silver/imaging_instances",
    # A citizen's record as the emergency summary, medicines, insights and export read it.
    "silver/claims",
    "silver/diagnoses",
    "silver/prescriptions",
    "silver/dispensings",
    "silver/centre_members",
    "silver/centre_measurements",
)


@pytest.fixture(scope="module")
def platform_lake(built_demo: Lake, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """A copy of the built demo's tables the apps read (and its object store), with empty ops
    ledgers, for one test module: its audit rows, grants, decisions and sign-ins touch neither
    the shared build nor another module's expectations."""
    from tests.pipelines.conftest import Lake

    root = tmp_path_factory.mktemp("platform") / "lakehouse"
    # Hard-linked: Delta writes new files and never into an existing one, so what a module
    # appends (grants, events) reaches neither the shared build nor another module's copy.
    for name in APP_TABLES:
        shutil.copytree(built_demo.root / name, root / name, copy_function=os.link)
    # The DICOM originals, heatmaps and SRs, hard-linked likewise (the store writes new keys).
    shutil.copytree(built_demo.root / "objects", root / "objects", copy_function=os.link)
    return Lake(root, built_demo.sources)


@pytest.fixture(autouse=True)
def _main_module_kept() -> Iterator[None]:
    """Streamlit's AppTest leaves the last app script as ``sys.modules["__main__"]``; a process
    a later test spawns (the imaging readers, the scorers, the generator's workers) would
    re-import that script as its main module. Every test, wherever it runs an AppTest, leaves
    the test runner's main module as it found it."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


# Fixed test keys, set before any module caches them: pseudonyms and vault ciphertexts in the
# tests are made with these, never with a developer's own secrets.
TEST_PSEUDONYM_KEY = "00" * 31 + "01"
TEST_IDENTITY_KEY = "dGVzdC1pZGVudGl0eS1rZXktMzItYnl0ZXMtbG9uZyE="  # Fernet: 32 bytes, base64
TEST_OBJECT_KEY = "00" * 31 + "02"  # AES-256 of the DICOM object store
TEST_LINKAGE_KEY = "00" * 31 + "03"  # the partners' linkage key (lakehouse.linkage)
KEYS = {
    "GJH_LINKAGE_KEY": TEST_LINKAGE_KEY,
    "GJH_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY,
    "GJH_IDENTITY_KEY": TEST_IDENTITY_KEY,
    "GJH_OBJECT_KEY": TEST_OBJECT_KEY,
}


@pytest.fixture(scope="session", autouse=True)
def _test_keys() -> Iterator[None]:
    with environment(**KEYS):
        yield
