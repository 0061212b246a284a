"""``gjh intake``: take in a DICOM drop from the command line, in one process.

The same job the UI can launch (``imaging_intake``: the ``imaging_index`` asset and the
data-quality checks of its three tables, ``pipelines.defs.imaging``), executed in this process
with the in-process executor and recorded in the Dagster instance, so its materialisations and
every check's result show in the UI as a build's do.

Why not ``dagster asset materialize``: that loads the whole Definitions (every domain, the model
registry, the routing rules, the triage policy) and, with the default multiprocess executor,
starts a process per step that loads them all again: the asset, then one step per table's
checks. Measured here (issue 23), that start-up cost about 25 s whatever the size of the drop.
Here only the imaging module is loaded, once, and the checks of its tables run in the asset's
own step right after the tables are written (``pipelines.defs.checks``).

Why Dagster is imported only inside ``intake``: importing it, loading the definitions and
opening the instance take a few CPU-seconds whatever the drop (issue 23's profile: over a third
of a small drop's run). The header workers start first and read the drop meanwhile
(``pipelines.ingest.imaging.ReadAhead``); the run's asset then takes their results.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import dagster as dg

    from pipelines.defs.resources import Imaging, Lakehouse

QUIET: Final = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class Intake:
    """What one intake run did: its counts, and every check evaluated with its outcome."""

    run_id: str
    success: bool
    drop_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)  # "<table>:<check>" -> passed
    errors: list[str] = field(default_factory=list)

    @property
    def checks_failed(self) -> list[str]:
        return [name for name, passed in self.checks.items() if not passed]

    def summary(self) -> dict[str, Any]:
        """Plain values for ``--json`` and the benchmark."""
        return {
            "run_id": self.run_id,
            "success": self.success,
            "drop": self.drop_id,
            **self.counts,
            "checks": len(self.checks),
            "checks_failed": self.checks_failed,
        }


def definitions(lakehouse: Lakehouse, reader: Imaging) -> dg.Definitions:
    """The imaging index, its tables' checks and the intake job: all ``gjh intake`` loads."""
    import dagster as dg

    from pipelines.defs import imaging

    assets = [imaging.imaging_index]
    return dg.Definitions(
        assets=assets,
        jobs=[imaging.imaging_intake_job],
        resources={"lakehouse": lakehouse, "imaging": reader},
    )


def _read(result: dg.ExecuteInProcessResult) -> Intake:
    import dagster as dg

    done = Intake(result.run_id, result.success)
    for event in result.get_asset_materialization_events():
        metadata = event.step_materialization_data.materialization.metadata
        for name, value in metadata.items():
            if name == "drop":
                done.drop_id = str(value.value)
            elif isinstance(value.value, int):
                label = "instances" if name == "dagster/row_count" else name
                done.counts[label] = value.value
    for event in result.all_events:
        data = event.event_specific_data
        if event.event_type_value == "ASSET_CHECK_EVALUATION" and isinstance(
            data, dg.AssetCheckEvaluation
        ):
            done.checks[f"{data.asset_key.to_user_string()}:{data.check_name}"] = data.passed
        elif event.event_type_value == "STEP_FAILURE" and data is not None:
            done.errors.append(f"{event.step_key}: {_reason(data.error)}")  # type: ignore[union-attr]
    return done


def _reason(error: Any) -> str:
    """A step failure's own message and its root cause's: Dagster wraps what an op raised in
    an error that only names the op (a missing key would otherwise print as "Error occurred
    while executing op")."""
    messages = [error.message.strip()]
    while error.cause is not None:
        error = error.cause
        messages.append(error.message.strip())
    return " ".join(dict.fromkeys(m for m in messages if m))


def intake(
    sources: Path,
    instance: dg.DagsterInstance | None = None,
    settle_s: float = 10.0,
    workers: int = 0,
) -> Intake:
    """Index every new file of ``<sources>/imaging`` and evaluate its tables' checks, as one
    run of ``imaging_intake`` in this process, recorded in ``instance``.

    Args:
        sources: The drop folder (DICOM files under its ``imaging/``).
        instance: Where the run, its materialisations and its check results are recorded; by
            default the persistent instance (``pipelines.instance``), opened while the header
            workers read the drop.
        settle_s: Files modified less than this long ago are still being written: left for
            the next intake.
        workers: Header-reading processes (0: one per CPU).
    """
    from pipelines.ingest.dicom import Readers

    processes = workers or os.cpu_count() or 1
    root = sources.resolve()
    readers = Readers(processes).__enter__()  # first: the workers' imports overlap ours
    try:
        from pipelines.ingest.imaging import ReadAhead

        ahead = ReadAhead(root, readers, settle_s)
    except BaseException:
        readers.__exit__()
        raise
    with ahead:
        from pipelines.defs import imaging
        from pipelines.defs.resources import Imaging, Lakehouse

        if instance is None:
            from pipelines.instance import instance as persistent

            instance = persistent()
        lakehouse = Lakehouse(sources_dir=str(root))
        reader = Imaging(settle_s=settle_s, workers=workers)
        job = definitions(lakehouse, reader).resolve_job_def(imaging.imaging_intake_job.name)
        result = job.execute_in_process(run_config=QUIET, instance=instance, raise_on_error=False)
    return _read(result)
