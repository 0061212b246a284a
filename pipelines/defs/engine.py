"""Where the heavy stages run: local processes (the default) or a Ray cluster.

``Engine`` is the Dagster resource that chooses. ``local`` runs scoring in this machine's
worker processes (``pipelines.score.scoring.Scorers``); ``ray`` connects to the Ray cluster at
``address`` and scores in an onnxruntime actor pool there, with Daft reading the Delta tables
(``pipelines.score.ray_engine``). The findings are the same either way. A deployment sets
``GJH_ENGINE=ray`` and ``GJH_RAY_ADDRESS=<head>:<port>`` where the definitions load (the UI
shows them), or configures the resource per run.

The engine rides on the ``Scoring`` resource (its ``engine`` attribute, None meaning local)
rather than being a resource key of its own: every place that builds resources for the
scoring asset (tests, the benchmark's stage script) keeps working unchanged, and local stays
the default wherever nobody asked for Ray.
"""

from __future__ import annotations

import os
from typing import Final, Literal

import dagster as dg

KINDS: Final = ("local", "ray")


class Engine(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The engine of the heavy stages.

    Attributes:
        kind: ``local`` (worker processes on this machine) or ``ray``.
        address: The Ray cluster's GCS address (``host:port``); None starts a Ray of this
            process's own (a laptop trying the path out).
        actors: Scoring actors in the pool, one onnxruntime session per model each (0: one
            per CPU the cluster reports).
    """

    kind: Literal["local", "ray"] = "local"
    address: str | None = None
    actors: int = 0

    @property
    def distributed(self) -> bool:
        return self.kind == "ray"


def from_environment() -> Engine | None:
    """The engine ``GJH_ENGINE`` names (``GJH_RAY_ADDRESS`` its cluster), or None (local)."""
    kind = os.environ.get("GJH_ENGINE", "local")
    if kind not in KINDS:
        raise ValueError(f"GJH_ENGINE={kind!r}: expected one of {', '.join(KINDS)}")
    if kind == "local":
        return None
    address = os.environ.get("GJH_RAY_ADDRESS")
    return Engine(kind="ray", address=dg.EnvVar("GJH_RAY_ADDRESS") if address else None)
