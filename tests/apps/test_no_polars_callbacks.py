"""No Python callback is handed to Polars on a request path (the apps and the lakehouse they
read through).

Polars runs such a callback on its own worker threads: there, Streamlit's script context is
missing (the log floods with "missing ScriptRunContext" and the session's language falls back to
Korean), and a script thread waiting on Polars while it holds the GIL deadlocks with workers
waiting for it. Format with Polars expressions, or in Python after the frame is collected."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("apps", "lakehouse")
# Methods of Expr, Series, DataFrame and GroupBy that call a Python function on Polars' threads.
CALLBACK_METHODS = frozenset({"map_elements", "map_batches", "map_rows", "map_groups"})
# Functions of the polars module that do the same.
CALLBACK_FUNCTIONS = frozenset({"map_batches", "map_groups", "fold", "reduce", "cum_fold"})
POLARS = frozenset({"pl", "polars"})


def callbacks(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, name) of every call in ``tree`` that hands Polars a Python function."""
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name, owner = node.func.attr, node.func.value
        on_polars = isinstance(owner, ast.Name) and owner.id in POLARS
        if name in CALLBACK_METHODS or (on_polars and name in CALLBACK_FUNCTIONS):
            found.append((node.lineno, name))
    return found


def test_the_check_finds_a_callback() -> None:
    code = "rows.select(pl.col('at').map_elements(moment), pl.fold(0, f, ['a']))"
    assert [name for _, name in callbacks(ast.parse(code))] == ["map_elements", "fold"]
    assert callbacks(ast.parse("pl.col('at').dt.strftime('%Y')")) == []


@pytest.mark.parametrize("package", CHECKED)
def test_no_python_callback_inside_polars(package: str) -> None:
    offences = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, name in callbacks(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert not offences, "Python callbacks inside Polars:\n" + "\n".join(offences)
