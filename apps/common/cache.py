"""The apps' caches: one DuckDB connection per server process and lakehouse, and the
pipelines' tables read at most once a minute per distinct question.

``st.cache_resource`` keeps the connection (the delta extension loaded, a view per table);
``st.cache_data`` memoises the access layer's reads of what the pipelines write
(``lakehouse.queries``: plain values in, frames out) for ``GJH_CACHE_SECONDS`` (default 60),
keyed by the query, its arguments and the lakehouse. Both sit below the access layer's checks
and audit rows, which run on every call, so a cached answer is still refused to whom it must be
refused and still logged. The apps' own tables (decisions, grants, requests, the audit log) are
never cached: a decision shows at once.
"""

from __future__ import annotations

import os
from typing import Any, Final

import duckdb
import streamlit as st

from lakehouse import queries
from lakehouse import read as lake
from lakehouse.access import Query, Readers
from lakehouse.config import lakehouse_uri

TTL_S: Final = float(os.environ.get("GJH_CACHE_SECONDS", "60"))


@st.cache_resource(show_spinner=False)
def _connection(lake_uri: str) -> duckdb.DuckDBPyConnection:
    return lake.connect()


def connection() -> duckdb.DuckDBPyConnection:
    """The process's DuckDB connection to this lakehouse (queries run on a cursor of it)."""
    return _connection(lakehouse_uri())


@st.cache_data(ttl=TTL_S, show_spinner=False, max_entries=1024)
def _read(name: str, lake_uri: str, args: tuple[Any, ...]) -> Any:
    return getattr(queries, name)(*args)


def memo(query: Query) -> Query:
    """``query`` (a ``lakehouse.queries`` function) memoised by its arguments."""
    name = query.__name__
    if getattr(queries, name, None) is not query:
        raise ValueError(f"only lakehouse.queries functions are cached, not {name}")

    def cached(*args: Any) -> Any:
        return _read(name, lakehouse_uri(), args)

    return cached


def clear() -> None:
    """Forget every memoised read (after a pipeline run, or in tests)."""
    _read.clear()


READERS: Final = Readers(memo=memo, connect=connection)
