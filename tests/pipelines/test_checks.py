"""The generated asset checks in real Dagster runs: the registry and claims pipelines on the small
city with every check of their tables evaluated in the step that writes the table, and a blocking
check stopping what is downstream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dagster as dg
import pytest

from lakehouse import delta, quality
from pipelines.defs import checks, claims, registry
from tests.conftest import City
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.slow, pytest.mark.integration]

REGISTRY = [registry.bronze_registry, registry.silver_registry]
CLAIMS = [claims.bronze_claims, claims.bronze_pharmacy, claims.silver_claims]
# The small city's quarter (2025-03-01 plus 90 days), as one range run.
MONTHS = ("2025-03", "2025-05")


@dataclass(frozen=True)
class Checked:
    lake: Lake
    runs: list[dg.ExecuteInProcessResult]
    evaluations: list[dg.AssetCheckEvaluation]


@pytest.fixture(scope="module")
def checked(small_city: City, tmp_path_factory: pytest.TempPathFactory) -> Checked:
    """The registry, then the claims quarter, each run with the checks of its own tables."""
    lake = Lake(tmp_path_factory.mktemp("checked") / "lakehouse", small_city.out)
    runs = [lake.materialise(REGISTRY), lake.materialise(CLAIMS, MONTHS)]
    assert all(r.success for r in runs)
    return Checked(lake, runs, [e for r in runs for e in r.get_asset_check_evaluations()])


def _expected() -> dict[dg.AssetCheckKey, quality.Check]:
    tables = {".".join(k.path) for a in (*REGISTRY, *CLAIMS) for k in a.keys}
    return {
        dg.AssetCheckKey(dg.AssetKey(c.table.split(".")), c.dagster_name): c
        for t in tables
        for c in quality.checks(t)
    }


def test_every_catalogue_check_of_the_run_tables_ran(checked: Checked) -> None:
    ran = [e.asset_check_key for e in checked.evaluations]
    assert len(ran) == len(set(ran))
    assert set(ran) == set(_expected())
    assert {".".join(k.asset_key.path) for k in ran} == {
        "silver.citizens",
        "silver.institutions",
        "vault.identities",
        *claims.SILVER,
    }


def test_each_table_s_checks_run_in_the_step_that_writes_it(checked: Checked) -> None:
    """No step of its own for a check: each run has one step per asset definition, and every
    evaluation comes from the step that materialised its table (issue 23: the steps and their
    events were a large part of Dagster's share of the build)."""
    for run, assets_defs in zip(checked.runs, (REGISTRY, CLAIMS), strict=True):
        steps = {e.step_key for e in run.all_events if e.event_type_value == "STEP_SUCCESS"}
        assert steps == {a.op.name for a in assets_defs}
        written = {e.asset_key: e.step_key for e in run.all_events if e.is_step_materialization}
        evaluated = [e for e in run.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
        assert evaluated
        for event in evaluated:
            evaluation = event.event_specific_data
            assert isinstance(evaluation, dg.AssetCheckEvaluation)
            assert event.step_key == written[evaluation.asset_key]


def test_fatal_checks_pass_on_the_real_data(checked: Checked) -> None:
    expected = _expected()
    failed = {
        e.asset_check_key.to_user_string(): e.metadata["samples"].value
        for e in checked.evaluations
        if expected[e.asset_check_key].fatal and not e.passed
    }
    assert failed == {}


def test_results_carry_counts_shares_and_samples(checked: Checked) -> None:
    for e in checked.evaluations:
        check = _expected()[e.asset_check_key]
        meta: dict[str, Any] = {k: v.value for k, v in e.metadata.items()}
        assert meta["dqd_check"] == check.type
        assert meta["severity"] == check.severity
        assert 0 <= meta["violations"] <= meta["rows"]
        assert len(meta["samples"]) <= min(quality.SAMPLES, meta["violations"])
        expected_severity = (
            dg.AssetCheckSeverity.ERROR if check.fatal else dg.AssetCheckSeverity.WARN
        )
        assert e.severity == expected_severity
    # The checks read real tables: keys were counted over every statement.
    pk = next(
        e
        for e in checked.evaluations
        if e.asset_check_key.name == "isPrimaryKey_spec_id"
        and e.asset_check_key.asset_key.path == ["silver", "claims"]
    )
    assert pk.metadata["rows"].value == checked.lake.frame("silver.claims").height > 0


def test_checks_cover_every_checked_asset_and_block_only_on_fatal() -> None:
    specs = [s for a in (*REGISTRY, *CLAIMS) for s in a.check_specs]
    assert {".".join(s.asset_key.path) for s in specs} == {
        "silver.citizens",
        "silver.institutions",
        "vault.identities",
        *claims.SILVER,
    }
    expected = _expected()
    for s in specs:
        assert s.blocking == expected[s.key].fatal
    # A foreign key to silver.citizens names it (the check's lineage in the UI).
    fk = next(
        s for s in specs if s.name == "isForeignKey_citizen_key" and s.asset_key.path[1] == "claims"
    )
    assert dg.AssetKey(["silver", "citizens"]) in {d.asset_key for d in fk.additional_deps}
    # Bronze delivery tables have no checks.
    assert checks.specs(["bronze.claims_t200"]) == []
    assert checks.unwired([*REGISTRY, *CLAIMS]) == {}


@dg.asset(key=["gold", "probe"], deps=[dg.AssetKey(["silver", "citizens"])])
def probe() -> None:
    """A stand-in for anything built on silver.citizens."""


def test_a_failing_fatal_check_blocks_downstream_assets(
    small_city: City, tmp_path_factory: pytest.TempPathFactory
) -> None:
    lake = Lake(tmp_path_factory.mktemp("blocked") / "lakehouse", small_city.out)
    assert lake.materialise(REGISTRY).success
    # Corrupt silver.citizens behind the pipeline's back: one citizen twice.
    with lake.active():
        citizens = lake.frame("silver.citizens")
        delta.append("silver.citizens", citizens.head(1))
    run = lake.materialise([registry.silver_registry, probe], raise_on_error=False)
    assert not run.success
    failed = {
        e.asset_check_key.name
        for e in run.get_asset_check_evaluations()
        if e.asset_key.path == ["silver", "citizens"] and not e.passed
    }
    assert "isPrimaryKey_citizen_key" in failed
    done = {m.asset_key for m in run.get_asset_materialization_events() if m.asset_key}
    assert dg.AssetKey(["silver", "citizens"]) in done
    assert dg.AssetKey(["gold", "probe"]) not in done
    # With the duplicate gone the same run goes through to the downstream asset.
    with lake.active():
        delta.delete("silver.citizens", "true")
        delta.append("silver.citizens", citizens)
    rerun = lake.materialise([registry.silver_registry, probe])
    assert rerun.success
    assert dg.AssetKey(["gold", "probe"]) in {
        m.asset_key for m in rerun.get_asset_materialization_events()
    }
