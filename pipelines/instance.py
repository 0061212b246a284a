"""The Dagster instance the command line and the UI share.

``DAGSTER_HOME`` defaults to ``data/dagster`` (git-ignored, beside the lakehouse). The first use
copies the project's ``dagster.yaml`` there, so the embedded default needs no setup; a deployment
that put its own ``dagster.yaml`` in its ``DAGSTER_HOME`` (for instance the PostgreSQL variant in
``docs/dagster.production.yaml``) keeps it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Final

import dagster as dg

from lakehouse import config

PROJECT_CONFIG: Final = Path(__file__).resolve().parents[1] / "dagster.yaml"


def dagster_home() -> Path:
    """``DAGSTER_HOME`` made absolute (and set), with a ``dagster.yaml`` in it."""
    home = config.dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    if not settings.exists():
        shutil.copyfile(PROJECT_CONFIG, settings)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def instance() -> dg.DagsterInstance:
    """The persistent instance under ``dagster_home()``."""
    dagster_home()
    return dg.DagsterInstance.get()
