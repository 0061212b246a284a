"""The resources the assets use, configured from the environment (``dg.EnvVar``).

The lakehouse modules read their locations from environment variables; the resource makes them
explicit in Dagster (visible in the UI, overridable per deployment) and sets them for the run.
A setting left unset means "the process environment at run time, else the embedded default",
so a laptop needs no configuration and a test can point a run at a temporary lakehouse.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from lakehouse import config
from pipelines.defs.engine import Engine
from pipelines.defs.engine import from_environment as engine_from_environment


class Lakehouse(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where the lakehouse, the drop folder and the keys are."""

    lakehouse_uri: str | None = None
    sources_dir: str | None = None
    secrets_dir: str | None = None

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        for name, value in (
            ("LAKEHOUSE_URI", self.lakehouse_uri),
            ("GJH_SOURCES", self.sources_dir),
            ("GJH_SECRETS_DIR", self.secrets_dir),
        ):
            if value:
                os.environ[name] = value

    @property
    def sources(self) -> Path:
        """The drop folder (from this resource's own setting when it has one: sensors read it
        without a run)."""
        return Path(self.sources_dir).resolve() if self.sources_dir else config.sources_dir()


class Imaging(dg.ConfigurableResource):  # type: ignore[type-arg]
    """How the imaging pipeline reads the drop folder and decides a study is complete.

    Attributes:
        quiet_period_s: A study is complete once no instance arrived for this long (Orthanc's
            "stable age"); only complete studies are routed.
        settle_s: A file modified less than this long ago is still being written and waits
            for the next pass.
        workers: Processes that parse headers (0: one per CPU).
    """

    quiet_period_s: int = 300
    settle_s: float = 10.0
    workers: int = 0

    @property
    def processes(self) -> int:
        return self.workers or os.cpu_count() or 1


class Scoring(dg.ConfigurableResource):  # type: ignore[type-arg]
    """How the AI reading services run.

    Attributes:
        batch: Model inputs per ONNX run (images or waveforms): bounds memory, keeps the
            runtime's matrix kernels busy.
        threads: onnxruntime threads in a single process (0: one per CPU).
        workers: Processes that decode, prepare and infer (0: one per CPU), the step's own
            among them (it scores in a thread beside the others); each then runs a one-thread
            session.
        engine: Where they run (``pipelines.defs.engine``); None: this machine's processes.
    """

    batch: int = 64
    threads: int = 0
    workers: int = 0
    engine: Engine | None = None

    @property
    def processes(self) -> int:
        return self.workers or os.cpu_count() or 1


def from_environment() -> dict[str, object]:
    """The resources for this deployment: each setting an ``EnvVar`` when the variable is set
    where the definitions load (the UI shows it), else left to the run's environment."""

    def env(name: str) -> dg.EnvVar | None:
        return dg.EnvVar(name) if os.environ.get(name) else None

    return {
        "lakehouse": Lakehouse(
            lakehouse_uri=env("LAKEHOUSE_URI"),
            sources_dir=env("GJH_SOURCES"),
            secrets_dir=env("GJH_SECRETS_DIR"),
        ),
        "imaging": Imaging(),
        "scoring": Scoring(engine=engine_from_environment()),
    }
