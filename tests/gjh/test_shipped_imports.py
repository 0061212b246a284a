"""What ships imports nothing from the test suite: an installed platform has no ``tests``
package, so a module of the wheel's packages that imported from it (as ``gjh bench``'s crowd stage
once imported the browser tests' harness) would fail on the first command that loads it. Checked
on the source's syntax trees, so a module is judged without importing it: the import statements,
and the Python a module hands to a subprocess (``python -c "from … import …"``) in its strings."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What the wheel ships (pyproject's [tool.hatch.build.targets.wheel] packages).
SHIPPED = ("gjh", "synth", "lakehouse", "pipelines", "apps", "models")
# An import of ``tests`` inside a string of code: a statement's start, a line's or after ``;``.
IMPORT_IN_CODE = re.compile(r"(?:^|[;\n])\s*(?:from\s+tests[.\s]|import\s+tests\b)")


def _from_tests(name: str | None) -> bool:
    return name is not None and (name == "tests" or name.startswith("tests."))


def imports_of_tests(tree: ast.AST) -> Iterator[str]:
    """Where ``tree`` imports from ``tests``: ``line N: <what>``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names if _from_tests(a.name)]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] if node.level == 0 and _from_tests(node.module) else []
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [repr(node.value)] if IMPORT_IN_CODE.search(node.value) else []
        else:
            continue
        yield from (f"line {node.lineno}: {name}" for name in names)


def test_the_check_sees_every_form_of_import() -> None:
    code = """
import tests
import os, tests.apps.browser as b
from tests.pipelines.conftest import Lake
script = "import json; from tests.apps import crowd"
from testsuite import x
doc = "the tests of tests/apps run from tests"
"""
    assert [line.split(":")[0] for line in imports_of_tests(ast.parse(code))] == [
        "line 2",
        "line 3",
        "line 4",
        "line 5",
    ]


def test_no_shipped_module_imports_the_test_suite() -> None:
    found = {
        str(path.relative_to(ROOT)): where
        for package in SHIPPED
        for path in sorted((ROOT / package).rglob("*.py"))
        if (where := list(imports_of_tests(ast.parse(path.read_bytes(), str(path)))))
    }
    assert not found, found
