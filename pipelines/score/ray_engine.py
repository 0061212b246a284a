"""Scoring on a Ray cluster: Daft reads what is pending, an onnxruntime actor pool scores it.

``RayScorers`` is the Ray counterpart of ``pipelines.score.scoring.Scorers`` (the same
context manager and ``score`` contract), chosen by the ``Engine`` resource
(``pipelines.defs.engine``):

* ``read`` reads the scoring inputs (routing, instances, studies, existing findings) from the
  Delta tables with ``daft.read_deltalake``; Daft runs them on the cluster (it takes its Ray
  runner when this process is connected to one), and what is pending is decided by the same
  ``pipelines.score.pending`` as on one machine;
* each actor of the pool (``_Scorer``, one CPU each, spread over the nodes) runs
  ``scoring.score_chunk``: the same chunks as the local path, one one-thread onnxruntime
  session per model version, loaded once per actor and kept for the actor's life. Each actor
  reads the originals and stores the heatmaps and SRs itself (the encrypted object store),
  so only finding rows travel back;
* the rows come back in order and the caller writes them through ``lakehouse.delta``, as on
  one machine: neither Ray nor Daft writes a table.

Same chunks, same one-thread sessions and the same code on each chunk: the findings are the
same as the local engine's, value for value (only ``scored_at``, the run's clock, differs).

The actors get the lakehouse's settings (``LAKEHOUSE_URI``, the object key's location or the
key, the object-store credentials) through the job's ``runtime_env``; the models are read from
the same path on every node (one image for the cluster).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, Final

import daft
import polars as pl
import ray
from ray.util import ActorPool

from lakehouse import delta
from lakehouse.catalog import table as catalog_table
from lakehouse.config import STORAGE_VARIABLES
from models.runtime.registry import Service
from pipelines.score.scoring import Job, Task, chunks, score_chunk

# What the actors need of this process's environment to reach the lakehouse and its keys.
SETTINGS: Final = (
    "LAKEHOUSE_URI",
    "GJH_SOURCES",
    "GJH_SECRETS_DIR",
    "GJH_OBJECT_KEY",
    "GJH_MODELS_DIR",
    *STORAGE_VARIABLES,
)
READY_S: Final = 600.0  # the actors' start-up (imports, on a loaded node) at most


@ray.remote(num_cpus=1)
class _Scorer:
    """One actor of the pool: scores chunks with the sessions it keeps (``score_chunk``'s
    per-process cache of one session per model version)."""

    def node(self) -> str:
        return str(ray.get_runtime_context().get_node_id())

    def score(self, task: Task) -> list[dict[str, Any]]:
        return score_chunk(task)


def read(
    name: str, columns: Sequence[str] | None = None, equal: tuple[str, str] | None = None
) -> pl.DataFrame:
    """A table's ``columns`` (all by default) read by Daft, only the rows where column
    ``equal[0]`` is ``equal[1]`` if given, as Polars; an empty frame of the catalogue's
    schema when the table has not been written yet (a first run)."""
    if not delta.exists(name):
        empty = pl.DataFrame(schema=catalog_table(name).polars_schema())
        return empty.select(columns) if columns else empty
    frame = daft.read_deltalake(delta.uri(name))
    if equal is not None:
        frame = frame.where(daft.col(equal[0]) == daft.lit(equal[1]))
    if columns:
        frame = frame.select(*columns)
    found = pl.from_arrow(frame.to_arrow())
    assert isinstance(found, pl.DataFrame)
    return found


class RayScorers:
    """The actor pool on a Ray cluster, as a context manager; ``score`` runs work through it.

    Args:
        address: The cluster's GCS address; None starts a Ray of this process's own.
        actors: Actors in the pool (0: one per CPU the cluster has).
    """

    def __init__(self, address: str | None, actors: int = 0) -> None:
        self.address = address
        self.actors = actors
        self.pool: list[Any] = []
        self.nodes: list[str] = []  # the node of each actor, in pool order

    def __enter__(self) -> RayScorers:
        settings = {name: os.environ[name] for name in SETTINGS if os.environ.get(name)}
        ray.init(
            address=self.address,
            runtime_env={"env_vars": settings},
            log_to_driver=False,
            configure_logging=False,
        )
        try:
            cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
            size = self.actors or max(1, int(cpus))
            spread = _Scorer.options(scheduling_strategy="SPREAD")  # type: ignore[attr-defined]
            self.pool = [spread.remote() for _ in range(size)]
            # The actors start (imports, sessions on first use) while the caller reads.
            self._ready = [actor.node.remote() for actor in self.pool]
        except BaseException:
            ray.shutdown()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for actor in self.pool:
            ray.kill(actor)
        ray.shutdown()

    def score(
        self, work: Sequence[tuple[Service, Sequence[Job]]], now: datetime, batch: int = 64
    ) -> Iterator[dict[str, Any]]:
        """Every job's finding row, in order, as ``Scorers.score`` gives them."""
        self.nodes = ray.get(self._ready, timeout=READY_S)
        tasks: list[Task] = [
            (service, group, now, 1) for service, jobs in work for group in chunks(jobs, batch)
        ]
        pool = ActorPool(self.pool)
        for rows in pool.map(lambda actor, task: actor.score.remote(task), tasks):
            yield from rows
