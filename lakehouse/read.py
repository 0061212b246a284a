"""The one read path: Polars for pipelines, DuckDB for queries.

``scan`` gives a Polars ``LazyFrame`` of a table (``pl.scan_delta`` prunes partitions on
filters). ``connect`` gives a DuckDB connection where every existing table is a view under its
catalogue name (``SELECT * FROM silver.claims``), read through DuckDB's delta extension, which is
loaded from the ``duckdb-extension-delta`` wheel because ``INSTALL delta`` needs the network.
On object storage (``LAKEHOUSE_URI=s3://...``) the delta extension reads through a DuckDB S3
secret, a secret type only the ``httpfs`` extension defines: it is loaded from the
``duckdb-extension-httpfs`` wheel and the secret made from the ``AWS_*`` settings delta-rs uses
(without one the extension asks the cloud's instance metadata for credentials).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import polars as pl

from lakehouse import audit
from lakehouse.catalog import TABLES
from lakehouse.config import is_remote, lakehouse_uri, storage_options
from lakehouse.delta import exists, spec, uri
from lakehouse.schema import Table


def scan(name: str | Table) -> pl.LazyFrame:
    """A table as a Polars LazyFrame; an empty one with the catalogue's schema when the table
    has not been written yet (a pipeline's first run)."""
    table = spec(name)
    if table.name == audit.AUDIT:
        return audit.scan()  # with the rows still in the outbox (``lakehouse.audit``)
    if not exists(table):
        return pl.LazyFrame(schema=table.polars_schema())
    return pl.scan_delta(uri(table.name), storage_options=storage_options())


def frame(name: str | Table, where: pl.Expr | None = None) -> pl.DataFrame:
    """A table's rows, optionally filtered (partition filters prune files)."""
    lazy = scan(name)
    return (lazy.filter(where) if where is not None else lazy).collect()


def _extension(name: str) -> Path:
    """A DuckDB extension shipped in its ``duckdb-extension-<name>`` wheel."""
    root = Path(str(resources.files(f"duckdb_extension_{name}")))
    return root / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"


def _s3_secret(con: duckdb.DuckDBPyConnection) -> None:
    """Let ``con`` read the remote lakehouse: httpfs loaded and an S3 secret of the ``AWS_*``
    settings (a custom endpoint path-style, as delta-rs and Polars address it)."""
    con.execute(f"LOAD '{_extension('httpfs')}'")
    options = storage_options() or {}
    endpoint = urlsplit(options.get("AWS_ENDPOINT_URL", ""))
    settings = {
        "KEY_ID": options.get("AWS_ACCESS_KEY_ID"),
        "SECRET": options.get("AWS_SECRET_ACCESS_KEY"),
        "SESSION_TOKEN": options.get("AWS_SESSION_TOKEN"),
        "REGION": options.get("AWS_REGION"),
        "ENDPOINT": endpoint.netloc or None,
        "URL_STYLE": "path" if endpoint.netloc else None,
        "USE_SSL": "false" if endpoint.scheme == "http" else None,
    }
    given = {k: v for k, v in settings.items() if v is not None}
    # Parameters keep the keys out of the statement's text (and of DuckDB's error messages).
    fields = ", ".join(["TYPE s3", *(f"{k} ?" for k in given)])
    con.execute(f"CREATE OR REPLACE SECRET lakehouse ({fields})", list(given.values()))


def _view(create: str, name: str) -> str:
    """The statement making a catalogue table a DuckDB view (names come from the catalogue)."""
    return f"{create} {name} AS SELECT * FROM delta_scan('{uri(name)}')"


def connect(tables: list[str] | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with a view per existing table, named as in the catalogue.

    Args:
        tables: Only these tables (all existing ones by default). Views read the latest version
            at query time, so a long-lived connection sees new commits.
    """
    con = duckdb.connect()
    con.execute(f"LOAD '{_extension('delta')}'")
    if is_remote(lakehouse_uri()):
        _s3_secret(con)
    for layer in sorted({t.split(".")[0] for t in TABLES}):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {layer}")
    for name in tables or sorted(TABLES):
        if exists(name):
            con.execute(_view("CREATE OR REPLACE VIEW", name))
    return con


def has_view(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether ``con`` has a view for table ``name``."""
    schema, view = name.split(".")
    found = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE schema_name = ? AND view_name = ?",
        [schema, view],
    ).fetchone()
    return bool(found and found[0])


def ensure_views(con: duckdb.DuckDBPyConnection, names: tuple[str, ...]) -> None:
    """Add views for tables written since ``con`` was made (a long-lived connection is made
    before the apps' own tables exist). Two threads adding the same view: the loser's
    conflict is ignored, the view is there."""
    for name in names:
        if not has_view(con, name) and exists(name):
            try:
                con.execute(_view("CREATE VIEW IF NOT EXISTS", name))
            except duckdb.TransactionException:
                continue
