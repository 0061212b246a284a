"""No script thread waits on Polars' thread pool while it holds the GIL (issue 18).

Polars' ``DataFrame.to_pandas()`` (Polars 2.1) holds the GIL while its conversion runs on Polars'
pool, and Streamlit calls it for every Polars frame handed to ``st.dataframe``. When a task on
that pool needs the GIL (a Python callback inside Polars), the two wait on each other and the
whole server hangs: this froze the clinician app under five concurrent clinicians. The callbacks
are gone (``test_no_polars_callbacks.py``); these checks keep the other half away too:

* the apps hand ``st.dataframe`` Arrow tables (``frame.to_arrow()``: the same types Streamlit's
  own Polars path sends the browser), and plotly the Polars frame itself;
* nothing in the apps or the lakehouse calls Polars' ``to_pandas``; pyarrow's
  (``frame.to_arrow().to_pandas()``, for a pandas ``Styler``) releases the GIL while it works.

The runtime check proves the premise on the installed Polars: its harness hangs with
``to_pandas`` and completes with each conversion the apps use.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[2]
TABLE_CALLS: Final = frozenset({"dataframe", "data_editor", "table"})

# Three threads keep a Python callback busy on Polars' pool (two workers) while two threads
# convert a frame with CONVERT; the script prints "done" when every thread has finished.
RACE: Final = """
import sys, threading, time
import plotly.express as px
import polars as pl

n = 500
frame = pl.DataFrame({"a": range(n), "s": [f"s{i % 4}" for i in range(n)]})
wide = frame.with_columns(*(pl.col("s").alias(f"c{i}") for i in range(10)))
convert = {
    "to_pandas": lambda: wide.to_pandas(),
    "to_arrow": lambda: wide.to_arrow(),
    "arrow_to_pandas": lambda: wide.to_arrow().to_pandas(),
    "plotly": lambda: px.bar(wide, x="a", y="a", color="s"),
}[sys.argv[1]]
until = time.monotonic() + float(sys.argv[2])


def callbacks():
    while time.monotonic() < until:
        frame.select(
            pl.col("s").map_elements(str.upper, return_dtype=pl.String),
            pl.col("a").map_elements(lambda v: v + 1, return_dtype=pl.Int64).alias("b"),
        )


def conversions():
    while time.monotonic() < until:
        convert()


threads = [threading.Thread(target=callbacks) for _ in range(3)]
threads += [threading.Thread(target=conversions) for _ in range(2)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print("done", flush=True)
"""
RACE_SECONDS: Final = 5
HANG_AFTER_S: Final = 30  # six times the race's own length: the process is stuck


def _chain(node: ast.expr) -> list[str]:
    """The names of the calls in a receiver chain: ``a.to_arrow().to_pandas()`` ->
    ``["to_pandas", "to_arrow"]``."""
    names = []
    while isinstance(node, ast.Call | ast.Attribute | ast.Subscript):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            names.append(node.func.attr)
        node = node.func if isinstance(node, ast.Call) else node.value
    return names


def offences(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) of every Polars frame handed to Streamlit's tables without ``to_arrow()``,
    and every ``to_pandas()`` that is not pyarrow's."""
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name = node.func.attr
        if name in TABLE_CALLS and node.args and "to_arrow" not in _chain(node.args[0]):
            found.append((node.lineno, f"{name}() of a frame not converted with to_arrow()"))
        if name == "to_pandas" and "to_arrow" not in _chain(node.func.value):
            found.append((node.lineno, "to_pandas() not on an Arrow table"))
    return found


def test_the_check_finds_what_it_forbids() -> None:
    bad = "st.dataframe(rows.select(a)); px.bar(per_year.to_pandas()); c.table(t)"
    assert [line for line, _ in offences(ast.parse(bad))] == [1, 1, 1]
    good = "st.dataframe(rows.select(a).to_arrow()); st.dataframe(t.to_arrow().to_pandas().style)"
    assert offences(ast.parse(good)) == []


@pytest.mark.parametrize("package", ["apps", "lakehouse"])
def test_no_gil_held_wait_on_polars_pool(package: str) -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, what in offences(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert not found, "Polars' to_pandas on a request path (see this module):\n" + "\n".join(found)


def _race(convert: str) -> bool:
    """Whether the race finished (False: it hung and was killed)."""
    try:
        done = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", RACE, convert, str(RACE_SECONDS)],
            env={**os.environ, "POLARS_MAX_THREADS": "2"},
            capture_output=True,
            text=True,
            timeout=HANG_AFTER_S,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return False
    return done.stdout.strip() == "done"


@pytest.mark.slow
def test_polars_to_pandas_deadlocks_with_callbacks_on_the_pool_and_arrow_does_not() -> None:
    assert not _race("to_pandas"), "the harness no longer hangs: re-check the premise above"
    for convert in ("to_arrow", "arrow_to_pandas", "plotly"):
        assert _race(convert), f"{convert} hung against Python callbacks on Polars' pool"
