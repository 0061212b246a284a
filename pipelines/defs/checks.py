"""Asset checks for every catalogued table, generated from the catalogue (``lakehouse.quality``)
and evaluated in the step that writes the table.

The asset (or multi-asset) that writes a checked table declares the table's checks as its
``check_specs`` (``specs``) and its body is wrapped by ``evaluated``: once the body has written
and reported its tables, the checks Dagster selected for the run are evaluated against the Delta
tables (one scan per table counts all of its checks) and yielded as one ``AssetCheckResult``
each, so each check shows, passes and fails on its own in the UI. A table and its checks are
therefore one Dagster step: issue 23 measured a separate check step per table (57 steps for the
build's 5 runs) as a large part of Dagster's share of the build (docs/performance.md, "Dagster's
share of the build").

Fatal checks (keys, required fields, foreign keys) are ``blocking``: when one fails, Dagster
fails the step once all of its results are recorded, and no asset downstream of the table runs
in that run. Warnings report with ``WARN`` severity and never stop a run.

Checks that read another table (foreign keys, life checks on ``silver.citizens``) name it in
their ``additional_deps`` (lineage in the UI) and are evaluated after the body, so a table the
same asset writes is read as written. A table another asset writes is read as it stands when
the step runs: every such table is upstream of the checked asset or written by an earlier stage
of ``gjh build`` (``tests/pipelines/test_checks_wiring.py`` holds the definitions to that).
"""

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final

import dagster as dg

from lakehouse import quality, quality_kept
from lakehouse.catalog import TABLES
from pipelines.defs.resources import Lakehouse

SEVERITY: Final = {"fatal": dg.AssetCheckSeverity.ERROR, "warning": dg.AssetCheckSeverity.WARN}


def table_name(key: dg.AssetKey) -> str:
    """The catalogue name of an asset (``["silver", "claims"]`` is ``silver.claims``)."""
    return ".".join(key.path)


def asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(table.split("."))


def _spec(check: quality.Check) -> dg.AssetCheckSpec:
    own = asset_key(check.table)
    return dg.AssetCheckSpec(
        check.dagster_name,
        asset=own,
        description=check.rule,
        blocking=check.fatal,
        additional_deps=[asset_key(t) for t in check.references if asset_key(t) != own],
        metadata={
            "dqd_check": check.type,
            "severity": check.severity,
            "threshold_pct": check.threshold,
        },
    )


def specs(tables: Iterable[str]) -> list[dg.AssetCheckSpec]:
    """The check specs of these tables, for the ``check_specs`` of the asset that writes them.

    Args:
        tables: Catalogue names of the tables the asset writes. Those without catalogue checks
            (bronze delivery tables) contribute none, so an asset passes all of its tables.
    """
    return [_spec(c) for t in tables for c in quality.checks(t)]


def _result(result: quality.CheckResult) -> dg.AssetCheckResult:
    check = result.check
    metadata: dict[str, dg.MetadataValue] = {
        "violations": dg.MetadataValue.int(result.violations),
        "rows": dg.MetadataValue.int(result.rows),
        "share_pct": dg.MetadataValue.float(round(result.share, 4)),
        "threshold_pct": dg.MetadataValue.float(check.threshold),
        "dqd_check": dg.MetadataValue.text(check.type),
        "severity": dg.MetadataValue.text(check.severity),
        "rule": dg.MetadataValue.text(check.rule),
        "samples": dg.MetadataValue.json(list(result.samples)),
    }
    if result.note:
        metadata["note"] = dg.MetadataValue.text(result.note)
    # How it was counted: the whole table, or the rows appended since the version whose
    # counts the table keeps (``lakehouse.quality_kept``).
    metadata["counted"] = dg.MetadataValue.text(
        "whole table"
        if result.kept_since is None
        else f"rows appended since version {result.kept_since}"
    )
    return dg.AssetCheckResult(
        passed=result.passed,
        asset_key=asset_key(check.table),
        check_name=check.dagster_name,
        severity=SEVERITY[check.severity],
        description=check.rule,
        metadata=metadata,
    )


def evaluate(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext,
) -> Iterator[dg.AssetCheckResult]:
    """The results of the checks this step was asked for, table by table (sorted by name)."""
    selected: dict[str, set[str]] = {}
    for check_key in context.selected_asset_check_keys:
        selected.setdefault(table_name(check_key.asset_key), set()).add(check_key.name)
    for table, names in sorted(selected.items()):
        todo = [c for c in quality.checks(table) if c.dagster_name in names]
        results = quality_kept.evaluate(table, only=todo)
        failed = [r.check.dagster_name for r in results if not r.passed]
        context.log.info(f"{table}: {len(results)} checks, failed: {failed or 'none'}")
        for result in results:
            yield _result(result)


def evaluated(body: Callable[..., Any]) -> Callable[..., Iterator[Any]]:
    """``body`` (an asset's function) followed by the evaluation of its selected checks.

    Put it under the asset decorator whose ``check_specs`` are ``specs(...)`` of its tables.
    What the body returns or yields (its ``MaterializeResult``s) is passed on first, so the
    checks read the tables it has just written; then one ``AssetCheckResult`` per selected
    check (``evaluate``). The signature Dagster inspects (context, resources) is the body's.
    """

    @functools.wraps(body)
    def run(context: dg.AssetExecutionContext, *args: Any, **kwargs: Any) -> Iterator[Any]:
        done = body(context, *args, **kwargs)
        if isinstance(done, Iterator):
            yield from done
        elif done is not None:
            yield done
        yield from evaluate(context)

    return run


def table_checks(table: str) -> dg.AssetChecksDefinition:
    """The checks of one table on their own, to evaluate them again without writing the table.

    The pipelines never need it (the asset that writes a table evaluates its checks in the same
    step); it records a fresh evaluation of a table as it stands, for instance after a repair.
    Not for the pipelines' Definitions, whose assets declare the same checks.

    Raises:
        ValueError: the table has no checks in the catalogue (bronze delivery tables).
    """
    found = quality.checks(table)
    if not found:
        raise ValueError(f"{table} has no quality checks in the catalogue")
    layer, short = table.split(".", 1)

    @dg.multi_asset_check(
        name=f"quality_{layer}_{short}",
        specs=[_spec(c) for c in found],
        description=f"Data-quality checks of {table}, from the catalogue (DATA_QUALITY.md).",
        can_subset=True,
    )
    def run(
        context: dg.AssetCheckExecutionContext, lakehouse: Lakehouse
    ) -> Iterator[dg.AssetCheckResult]:
        del lakehouse  # its setup points the lakehouse modules at this deployment's storage
        yield from evaluate(context)

    return run


def unwired(assets_defs: Sequence[dg.AssetsDefinition]) -> dict[str, list[str]]:
    """The catalogue checks of the tables ``assets_defs`` write that their assets do not
    declare, by table (none when every check is wired to the asset that writes its table)."""
    missing: dict[str, list[str]] = {}
    for assets_def in assets_defs:
        carried = {(table_name(k.asset_key), k.name) for k in assets_def.check_keys}
        for table in (table_name(k) for k in assets_def.keys if table_name(k) in TABLES):
            names = [c.dagster_name for c in quality.checks(table)]
            if lacking := [n for n in names if (table, n) not in carried]:
                missing[table] = lacking
    return missing


def require_wired(assets_defs: Sequence[dg.AssetsDefinition]) -> None:
    """Refuse definitions where a catalogued table's checks are not declared on the asset that
    writes it (they would silently never run).

    Raises:
        ValueError: naming each table and the checks its asset lacks.
    """
    gaps = unwired(assets_defs)
    if gaps:
        listed = "; ".join(f"{t}: {', '.join(n)}" for t, n in sorted(gaps.items()))
        raise ValueError(f"asset checks not declared on their assets (checks.specs): {listed}")
