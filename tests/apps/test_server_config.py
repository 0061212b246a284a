"""The served apps' Streamlit settings, read as ``streamlit run`` reads them (the project's
``.streamlit/config.toml`` from the repository root, where ``gjh serve`` starts the apps)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
READ: Final = """
import json
from streamlit import config
config.get_config_options(force_reparse=True)
print(json.dumps({name: config.get_option(name) for name in %r}))
"""


def _options(*names: str) -> dict[str, object]:
    """The options' values in a fresh interpreter started in the repository's root."""
    out = subprocess.run(
        [sys.executable, "-c", READ % (names,)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_no_full_garbage_collection_follows_every_script_run() -> None:
    # Streamlit's default (True) held the clinician server's GIL for 68% of its busy time with
    # forty people at once at the city's size (docs/performance.md, "Forty people at once").
    assert _options("runner.postScriptGC") == {"runner.postScriptGC": False}
