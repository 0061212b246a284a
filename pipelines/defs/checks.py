"""Asset checks for every catalogued table, generated from the catalogue (``lakehouse.quality``).

Each checked table gets one multi-asset check: one Dagster step that evaluates all of the
table's checks against its Delta table (one scan counts them all, so a step per check would
only repeat the reads), with one check result per catalogue check, so each shows, passes and
fails on its own in the UI. Fatal checks (keys, required fields, foreign keys) are
``blocking``: when one fails, the step fails and no asset downstream of the table runs in that
run. Warnings report with ``WARN`` severity and never stop a run. Checks only read (a Delta
snapshot), so they stay out of the writers' ``lakehouse`` concurrency pool.

Checks that read another table (foreign keys, life checks on ``silver.citizens``) depend on that
table's asset when it is among the given definitions, so within one run they evaluate after it
has been written.
"""

from collections.abc import Iterator, Sequence
from typing import Final

import dagster as dg

from lakehouse import quality
from lakehouse.catalog import TABLES
from pipelines.defs.resources import Lakehouse

SEVERITY: Final = {"fatal": dg.AssetCheckSeverity.ERROR, "warning": dg.AssetCheckSeverity.WARN}


def table_name(key: dg.AssetKey) -> str:
    """The catalogue name of an asset (``["silver", "claims"]`` is ``silver.claims``)."""
    return ".".join(key.path)


def asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(table.split("."))


def _spec(check: quality.Check, known: set[dg.AssetKey]) -> dg.AssetCheckSpec:
    own = asset_key(check.table)
    deps = [asset_key(t) for t in check.references if asset_key(t) in known - {own}]
    return dg.AssetCheckSpec(
        check.dagster_name,
        asset=own,
        description=check.rule,
        blocking=check.fatal,
        additional_deps=deps,
        metadata={
            "dqd_check": check.type,
            "severity": check.severity,
            "threshold_pct": check.threshold,
        },
    )


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
    return dg.AssetCheckResult(
        passed=result.passed,
        asset_key=asset_key(check.table),
        check_name=check.dagster_name,
        severity=SEVERITY[check.severity],
        description=check.rule,
        metadata=metadata,
    )


def table_checks(table: str, known: set[dg.AssetKey] | None = None) -> dg.AssetChecksDefinition:
    """The asset checks of one catalogued table.

    Args:
        table: The table (``silver.claims``); its asset key is its name split on the dot.
        known: The asset keys of the definitions the checks join. Checks reading another table
            depend on it only when it is one of these (so the check runs after it is written);
            by default none.
    """
    found = quality.checks(table)
    if not found:
        raise ValueError(f"{table} has no quality checks in the catalogue")
    layer, short = table.split(".", 1)

    @dg.multi_asset_check(
        name=f"quality_{layer}_{short}",
        specs=[_spec(c, known or set()) for c in found],
        description=f"Data-quality checks of {table}, from the catalogue (DATA_QUALITY.md).",
        can_subset=True,
    )
    def run(
        context: dg.AssetCheckExecutionContext, lakehouse: Lakehouse
    ) -> Iterator[dg.AssetCheckResult]:
        del lakehouse  # its setup points the lakehouse modules at this deployment's storage
        selected = {k.name for k in context.selected_asset_check_keys}
        todo = [c for c in found if c.dagster_name in selected]
        results = quality.evaluate(table, only=todo)
        failed = [r.check.dagster_name for r in results if not r.passed]
        context.log.info(f"{table}: {len(results)} checks, failed: {failed or 'none'}")
        for result in results:
            yield _result(result)

    return run


def checks_for(assets_defs: Sequence[dg.AssetsDefinition]) -> list[dg.AssetChecksDefinition]:
    """The asset checks of every asset in ``assets_defs`` whose table has catalogue checks.

    Bronze delivery tables have none (see ``lakehouse.quality``); silver, gold and the vault
    do. Pass the same assets the ``Definitions`` get: the checks' dependencies are drawn from
    them.
    """
    known = {k for a in assets_defs for k in a.keys}
    names = sorted(table_name(k) for k in known)
    return [table_checks(n, known) for n in names if n in TABLES and quality.checks(TABLES[n])]
