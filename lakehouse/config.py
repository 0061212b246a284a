"""Where things live, from environment variables with embedded defaults.

The same code runs on a laptop (``./data/lakehouse``) and on object storage
(``LAKEHOUSE_URI=s3://bucket/prefix`` with the usual ``AWS_*`` variables).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Final

DEFAULT_LAKEHOUSE: Final = "data/lakehouse"
DEFAULT_SOURCES: Final = "data/sources"
DEFAULT_SECRETS: Final = "secrets"
DEFAULT_DAGSTER_HOME: Final = "data/dagster"
DEFAULT_TREATMENT_DAYS: Final = 365
DEFAULT_CLINICIAN_URL: Final = "http://localhost:8502"  # gjh/serve.py APPS["clinician"]
# What one DuckDB connection may hold before it spills to disk. DuckDB's own default is 80% of
# the machine: a check's count over a year of the city's claim lines (a primary key's groups)
# took 6.9 GiB at 300,000 citizens and would take the machine at 1.43 M.
DEFAULT_DUCKDB_MEMORY: Final = "2GB"
# Object-store settings passed through to delta-rs when the lakehouse is remote.
STORAGE_VARIABLES: Final = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ALLOW_HTTP",
    "AWS_S3_ALLOW_UNSAFE_RENAME",
)


def is_remote(uri: str) -> bool:
    """Whether ``uri`` names object storage rather than a local folder."""
    return "://" in uri and not uri.startswith("file://")


def lakehouse_uri() -> str:
    """The lakehouse root: ``LAKEHOUSE_URI``, or ``./data/lakehouse`` made absolute."""
    return _absolute(os.environ.get("LAKEHOUSE_URI", DEFAULT_LAKEHOUSE))


@cache
def _absolute(uri: str) -> str:
    """Resolved once per setting: object stores ask for the root once per stored file."""
    return uri.rstrip("/") if is_remote(uri) else str(Path(uri).resolve())


def sources_dir() -> Path:
    """The drop folder the pipelines ingest from: ``GJH_SOURCES``, default ``./data/sources``."""
    return Path(os.environ.get("GJH_SOURCES", DEFAULT_SOURCES)).resolve()


def secrets_dir() -> Path:
    """Where keys live when not given in the environment: ``GJH_SECRETS_DIR``, default
    ``./secrets`` (git-ignored, and never inside the lakehouse)."""
    return Path(os.environ.get("GJH_SECRETS_DIR", DEFAULT_SECRETS)).resolve()


def dagster_home() -> Path:
    """Where the Dagster instance keeps its runs, events and checks: ``DAGSTER_HOME``, default
    ``./data/dagster`` (beside the lakehouse). The pipelines record their runs there
    (``pipelines.instance``); the officials' data-health view reads them back."""
    return Path(os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).resolve()


def duckdb_memory() -> str:
    """How much memory one DuckDB connection may hold (``GJH_DUCKDB_MEMORY``, DuckDB's units,
    default ``DEFAULT_DUCKDB_MEMORY``); past it, DuckDB spills to its temporary folder."""
    return os.environ.get("GJH_DUCKDB_MEMORY") or DEFAULT_DUCKDB_MEMORY


def outbox_dir() -> Path:
    """Where the access log's outbox waits on local disk (``lakehouse.outbox``):
    ``GJH_OUTBOX_DIR``; by default the folder ``outbox`` beside a local lakehouse, or beside
    the Dagster home when the lakehouse is object storage (the outbox never is: SQLite needs a
    local file)."""
    if found := os.environ.get("GJH_OUTBOX_DIR"):
        return Path(found).resolve()
    lake = lakehouse_uri()
    beside = dagster_home() if is_remote(lake) else Path(lake.removeprefix("file://"))
    return beside.parent / "outbox"


def treatment_days() -> int:
    """How recent a visit or a study must be for a clinician's institution to read what it
    recorded of a patient without the patient's say: ``GJH_TREATMENT_DAYS``, default 365 (a
    treatment relationship of the past year; ``lakehouse.access.gate``)."""
    days = int(os.environ.get("GJH_TREATMENT_DAYS", DEFAULT_TREATMENT_DAYS))
    if days < 1:
        raise ValueError("GJH_TREATMENT_DAYS must be at least 1")
    return days


def clinician_url() -> str:
    """Where a share code's QR link points: the clinician app, ``GJH_CLINICIAN_URL``, default
    the port ``gjh serve`` gives it on this machine."""
    return os.environ.get("GJH_CLINICIAN_URL", DEFAULT_CLINICIAN_URL).rstrip("/")


def storage_options() -> dict[str, str] | None:
    """delta-rs storage options for a remote lakehouse (None for a local one)."""
    if not is_remote(lakehouse_uri()):
        return None
    return {k: v for k in STORAGE_VARIABLES if (v := os.environ.get(k))}


class MissingKeyError(RuntimeError):
    """A key (pseudonymisation, identity vault, object store) is not configured."""


def write_secret(path: Path, value: str) -> Path:
    """Write a generated key to ``path`` (mode 600, parents created) unless one is there: the
    demo and the tests make their keys this way; production sets them from its secret store."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n", encoding="ascii")
        path.chmod(0o600)
    return path


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """These environment variables set for the duration, then what was there before put back (a
    variable that was unset is unset again): for settings read from the environment by a library
    (Dagster's) during one piece of work, and for test setups that outlive one test."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
