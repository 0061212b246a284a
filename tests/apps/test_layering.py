"""The apps stand on the access layer and the models' runtime, never on the pipelines: no module
under ``apps/`` imports ``pipelines``, directly or through what it imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "apps"
PROJECT = ("apps", "lakehouse", "models", "pipelines", "synth", "gjh")


def imports(path: Path) -> set[str]:
    """The modules one file imports (absolute imports; the project bans relative ones). For
    ``from a import b`` both ``a`` and ``a.b`` are listed: ``b`` may be a module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return found


def _apps_imports() -> dict[str, set[str]]:
    return {str(p.relative_to(ROOT)): imports(p) for p in sorted(APPS.rglob("*.py"))}


def test_no_apps_module_imports_the_pipelines() -> None:
    files = _apps_imports()
    assert len(files) > 20
    offending = {
        file: sorted(m for m in modules if m == "pipelines" or m.startswith("pipelines."))
        for file, modules in files.items()
    }
    assert {file: found for file, found in offending.items() if found} == {}


@pytest.mark.integration
def test_what_the_apps_import_brings_in_no_pipelines_module() -> None:
    """Every project module any app file imports (pages included), imported in a fresh
    process: ``pipelines`` stays out of ``sys.modules``."""
    modules = sorted(
        {m for found in _apps_imports().values() for m in found if m.split(".")[0] in PROJECT}
    )
    assert "lakehouse.access" in modules and "models.runtime.registry" in modules
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError as error:\n"
        "        if error.name != name:  # 'from a import b' where b is not a module\n"
        "            raise\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pipelines'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
