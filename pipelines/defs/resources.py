"""The resources the assets use, configured from the environment (``dg.EnvVar``).

The lakehouse modules read their locations from environment variables; the resource makes them
explicit in Dagster (visible in the UI, overridable per deployment) and sets them for the run.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from lakehouse import config


class Lakehouse(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where the lakehouse, the drop folder and the keys are."""

    lakehouse_uri: str = config.DEFAULT_LAKEHOUSE
    sources_dir: str = config.DEFAULT_SOURCES
    secrets_dir: str = config.DEFAULT_SECRETS

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        os.environ["LAKEHOUSE_URI"] = self.lakehouse_uri
        os.environ["GJH_SOURCES"] = self.sources_dir
        os.environ["GJH_SECRETS_DIR"] = self.secrets_dir

    @property
    def sources(self) -> Path:
        """The drop folder (from this resource's own setting: sensors read it without a run)."""
        return Path(self.sources_dir).resolve()


def from_environment() -> dict[str, object]:
    """The resources for this environment: every setting from an environment variable, with the
    embedded defaults when the variable is unset (a laptop needs none)."""

    def env(name: str, default: str) -> str | dg.EnvVar:
        return dg.EnvVar(name) if os.environ.get(name) else default

    return {
        "lakehouse": Lakehouse(
            lakehouse_uri=env("LAKEHOUSE_URI", config.DEFAULT_LAKEHOUSE),
            sources_dir=env("GJH_SOURCES", config.DEFAULT_SOURCES),
            secrets_dir=env("GJH_SECRETS_DIR", config.DEFAULT_SECRETS),
        )
    }
