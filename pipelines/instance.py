"""The Dagster instance the command line and the UI share.

``DAGSTER_HOME`` defaults to ``data/dagster`` (git-ignored, beside the lakehouse). The first use
copies the project's ``dagster.yaml`` there, so the embedded default needs no setup; a deployment
that put its own ``dagster.yaml`` in its ``DAGSTER_HOME`` (for instance the PostgreSQL variant in
``docs/dagster.production.yaml``) keeps it.

Where the home keeps the embedded default (SQLite, no storage configured), the instance this
process opens writes batches of asset events in one transaction
(``pipelines.event_log.BatchedSqliteEventLogStorage``) into the same files the stock storage
reads: the UI and the data-health page open the home as configured and read what it wrote.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Final

import dagster as dg
from dagster_shared.yaml_utils import load_yaml_from_path

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


# Settings that choose a storage other than the embedded SQLite default.
STORAGE_KEYS: Final = ("storage", "run_storage", "event_log_storage", "schedule_storage")


def instance() -> dg.DagsterInstance:
    """The persistent instance under ``dagster_home()``; on the embedded SQLite default, with
    batched asset-event writes."""
    from dagster._core.instance.ref import InstanceRef
    from dagster._core.storage.sqlite_storage import _event_logs_directory

    home = dagster_home()
    settings = load_yaml_from_path(str(home / "dagster.yaml"))
    if not isinstance(settings, dict) or any(k in settings for k in STORAGE_KEYS):
        return dg.DagsterInstance.get()
    batched = {
        "module": "pipelines.event_log",
        "class": "BatchedSqliteEventLogStorage",
        # Where the default SQLite storage keeps its event logs (history/runs).
        "config": {"base_dir": _event_logs_directory(str(home))},
    }
    ref = InstanceRef.from_dir(str(home), overrides={"event_log_storage": batched})
    return dg.DagsterInstance.from_ref(ref)
