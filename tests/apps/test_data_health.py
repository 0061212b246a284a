"""Data health for officials (issue 20, section 3): ``Access.data_health`` and ``freshness`` on
the small city built end to end with its runs recorded in a Dagster instance of its own (as
``gjh build`` records them in ``DAGSTER_HOME``), then one quality check made to fail by a real
check run; the health page and the freshness line under Streamlit's AppTest."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from apps.common.i18n import STATE_KEY, Lang, day, messages, moment, t
from lakehouse import accounts, delta
from lakehouse.access import Access, AccessDeniedError, Principal
from lakehouse.access.health import SOURCES, UPTAKE_TABLES
from lakehouse.config import environment
from tests.apps.signed import signed_in
from tests.conftest import City
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.integration, pytest.mark.slow]
PASSWORD = "demo-password-4"
CITIZEN = "C" + "0" * 32
ODD = "C" + "f" * 32  # the resident whose sex is no code: the failed check
FAILED = "fieldFormat_sex"


def _official() -> Access:
    return Access(Principal("kim", "official", origin="public_health"))


def _line(language: Lang) -> str:
    """The freshness line the officials' pages should show, from ``Access.freshness``."""
    found = _official().freshness()
    return t(
        "official.freshness.line",
        language,
        until=day(found.data_until, language),
        built=moment(found.built_at, language),
    )


@pytest.fixture(scope="module")
def recorded(small_build: Lake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    """The small city built by ``pipelines.build`` into a lakehouse and a Dagster instance
    (this module's copy of the session's ``small_build``, whose runs are recorded as ``gjh
    build`` records them in ``DAGSTER_HOME``); then a resident whose sex is no code is added and
    the checks of ``silver.citizens`` run again (a real check run, recorded), so
    ``fieldFormat_sex`` fails. An official's account signs in to the app."""
    from pipelines.defs.checks import table_checks
    from pipelines.instance import instance

    folder = tmp_path_factory.mktemp("data_health")
    lake = small_build.copy(folder)
    roster = {
        "kim": accounts.Account(
            "kim", "official", "김주무관", password_hash=accounts.hash_password(PASSWORD)
        )
    }
    with (
        lake.active(),
        environment(
            DAGSTER_HOME=str(folder / "dagster"),
            GJH_ACCOUNTS=str(accounts.save(roster, folder / "accounts.json")),
            GJH_SESSION_KEY="34" * 32,
        ),
    ):
        runs = instance()
        one = lake.frame("silver.citizens").head(1)
        delta.append(
            "silver.citizens",
            one.with_columns(pl.lit(ODD).alias("citizen_key"), pl.lit("X").alias("sex")),
        )
        checked = dg.materialize(
            [dg.AssetSpec(dg.AssetKey(["silver", "citizens"])), table_checks("silver.citizens")],
            instance=runs,
            resources=lake.resources,
            selection=dg.AssetSelection.all_asset_checks(),
        )
        assert checked.success  # a warning fails the check, never the run
        yield lake


def test_every_bronze_and_silver_asset_belongs_to_one_source() -> None:
    """``SOURCES`` names each table of the pipelines' sources once, so no source's runs or
    sizes are missed as the pipelines grow."""
    from pipelines.definitions import defs

    keys = defs.resolve_asset_graph().materializable_asset_keys
    tables = sorted(".".join(k.path) for k in keys if k.path[0] in ("bronze", "silver"))
    listed = [table for found in SOURCES.values() for table in found]
    assert sorted(listed) == tables


@pytest.mark.usefixtures("recorded")
def test_each_source_has_its_last_successful_run_period_and_rows(recorded: Lake) -> None:
    health = _official().data_health()
    sources = {row["source"]: row for row in health.sources.iter_rows(named=True)}
    assert health.recorded and sorted(sources) == sorted(SOURCES)
    # Every source was written by a run of the build that succeeded; the monthly extracts'
    # run covered the months delivered, the daily exports' run the days.
    assert all(row["last_run_at"] is not None for row in sources.values())
    assert not any(row["failed_since"] for row in sources.values())
    assert sources["claims"]["run_window"] == "2025-03..2025-05"
    assert sources["centre"]["run_window"].startswith("2025-0")
    assert sources["registry"]["run_window"] is None  # delivered whole: every delivery read
    # The delivery ledger's counts, per source (the first part of the ledger's source).
    ledger = recorded.frame("bronze.deliveries")
    for source, row in sources.items():
        mine = ledger.filter(pl.col("source").str.split("/").list.first() == source)
        ingested = mine.filter(pl.col("status") == "ingested")
        assert row["files"] == mine.height > 0, source
        assert row["rows_read"] == mine["rows_read"].sum(), source
        assert row["rows_quarantined"] == mine["rows_quarantined"].sum(), source
        assert row["last_period"] == ingested["period"].max(), source
        silver = sum(len(recorded.frame(t)) for t in SOURCES[source] if "silver." in t)
        assert row["silver_rows"] == silver, source
    assert sources["claims"]["files_rejected"] >= 1  # the wrongly encoded file


def test_quarantine_is_counted_by_reason_as_the_faults_were_injected(
    recorded: Lake, small_city: City
) -> None:
    """Every fault the synthetic city injected is one quarantine record under its reason."""
    quarantine = _official().data_health().quarantine
    counted = {
        (s, r): n
        for s, r, n in quarantine.group_by("source", "reason")
        .agg(pl.col("records").sum())
        .iter_rows()
    }
    injected = Counter((f["source"], f["kind"]) for f in small_city.faults["faults"])
    assert counted == dict(injected)
    assert ("pharmacy", "malformed_row") in counted  # a single quarantined row, counted
    # Codes and counts only: no record key, file, line or payload reaches an official.
    assert quarantine.columns == ["source", "stage", "reason", "records", "rows", "last_period"]
    for reason in quarantine["reason"].unique():
        assert f"health.reason.{reason}" in messages(), reason


@pytest.mark.usefixtures("recorded")
def test_a_failed_quality_check_is_reported_with_its_counts_only() -> None:
    checks = _official().data_health().checks
    failed = checks.filter(pl.col("check") == FAILED).row(0, named=True)
    assert failed["table"] == "silver.citizens"
    assert (failed["dqd_check"], failed["severity"], failed["violations"]) == (
        "fieldFormat",
        "warning",
        1,
    )
    assert failed["rows"] > 1 and failed["share_pct"] > failed["threshold_pct"]
    assert ODD not in json.dumps(checks.to_dicts(), default=str)  # no sample reaches it
    # The checks the build ran passed: only the failed one is listed.
    assert checks.height == 1


@pytest.mark.usefixtures("recorded")
def test_without_run_records_runs_and_checks_are_unknown_not_passed(tmp_path: Path) -> None:
    with environment(DAGSTER_HOME=str(tmp_path / "none")):
        health = _official().data_health()
    assert not health.recorded and health.checks.is_empty()
    assert health.sources["last_run_at"].null_count() == len(SOURCES)
    fewest = health.sources["files"].min()
    assert isinstance(fewest, int) and fewest > 0  # the lakehouse's own counts are still there
    assert not (tmp_path / "none").exists()  # never created from a read


@pytest.mark.usefixtures("recorded")
def test_freshness_is_the_uptake_tables_last_build_and_newest_day(recorded: Lake) -> None:
    """The published table is built after the daily one it is published from: its commit is
    the figures' build; the daily table's days say how far the data reaches."""
    found = _official().freshness()
    with recorded.active():
        states = [delta.state(t) for t in UPTAKE_TABLES]  # the Delta logs' last commits
    assert found.built_at == max(s.updated for s in states if s.updated is not None)
    assert found.built_at == states[-1].updated
    assert found.data_until == recorded.frame("gold.programme_uptake_daily")["day"].max()


@pytest.mark.security
@pytest.mark.usefixtures("recorded")
@pytest.mark.parametrize(
    "principal",
    [
        Principal("minji", "citizen", citizen_key=CITIZEN, origin="citizen"),
        Principal("dr.park", "clinician", institution="12345678", origin="clinician"),
    ],
    ids=["citizen", "clinician"],
)
def test_data_health_is_refused_to_citizens_and_clinicians_and_audited(
    principal: Principal, recorded: Lake
) -> None:
    layer = Access(principal)
    for call in (layer.data_health, layer.freshness):
        with pytest.raises(AccessDeniedError) as refused:
            call()
        assert refused.value.code == "role"
    log = recorded.frame("ops.audit_log", pl.col("account") == principal.account)
    denied = log.filter(pl.col("outcome") == "denied")
    assert sorted(denied["action"]) == ["read:aggregate", "read:data_health"]


@pytest.mark.security
@pytest.mark.usefixtures("recorded")
def test_reading_data_health_is_audited(recorded: Lake) -> None:
    Access(Principal("auditor-test", "official", origin="public_health")).data_health()
    log = recorded.frame("ops.audit_log", pl.col("account") == "auditor-test")
    assert log.select("action", "purpose", "outcome").rows() == [
        ("read:data_health", "monitoring", "allowed")
    ]


@pytest.mark.usefixtures("recorded")
@pytest.mark.parametrize(
    ("page", "title", "language"),
    [
        ("overview", "official.overview.title", "ko"),
        ("trends", "official.trends.title", "ko"),
        ("uptake", "official.uptake.title", "ko"),
        ("uptake", "official.uptake.title", "en"),
        ("compare", "compare.title", "ko"),
    ],
)
def test_every_officials_page_opens_with_its_freshness_line(
    page: str, title: str, language: Lang
) -> None:
    # Switched to in Korean, then the language (as the health page's test below explains).
    at = signed_in("public_health", "kim", PASSWORD)
    at.switch_page(f"app_pages/{page}.py").run()
    if language == "en":
        at.radio(key=STATE_KEY).set_value("en").run()
    assert not at.exception, at.exception
    line = _line(language)
    assert at.title[0].value == t(title, language)
    assert at.caption[0].value == line
    if language == "ko":
        assert line.startswith("2025년 5월") and "까지의 자료 · 2" in line


@pytest.mark.usefixtures("recorded")
@pytest.mark.parametrize("language", ["ko", "en"])
def test_the_health_page_names_sources_checks_and_reasons(language: Lang) -> None:
    # Switched to in Korean, then the language: AppTest replays the uptake page's widgets on a
    # page switch and cannot match their Korean values against English options.
    at = signed_in("public_health", "kim", PASSWORD)
    at.switch_page("app_pages/health.py").run()
    if language == "en":
        at.radio[0].set_value("en").run()
    assert not at.exception, at.exception
    assert at.title[0].value == t("official.health.title", language)
    assert at.caption[0].value == _line(language)
    sources, checks, quarantine = (d.value for d in at.dataframe)

    def column(key: str) -> str:
        return t(f"official.health.column.{key}", language)

    named = [f"{t(f'health.source.{s}', language)} ({s})" for s in SOURCES]
    assert sources[column("source")].tolist() == named
    claims = sources.set_index(column("source")).loc[named[1]]
    assert claims[column("run_window")] == "2025-03 ~ 2025-05"
    assert claims[column("failed_since")] == t("official.health.no", language)
    assert claims[column("files_rejected")] >= 1
    (failed,) = checks.to_dict("records")
    assert (
        failed[column("table")]
        == f"{t('health.table.silver.citizens', language)} (silver.citizens)"
    )
    assert failed[column("check")] == (
        f"{t('health.check.fieldFormat', language)} (fieldFormat) · {FAILED}"
    )
    assert failed[column("severity")] == t("health.severity.warning", language)
    reasons = quarantine[column("reason")].tolist()
    assert f"{t('health.reason.malformed_row', language)} (malformed_row)" in reasons
    assert all(r.endswith(")") and "(" in r for r in reasons)  # never a bare code
    stages = set(quarantine[column("stage")])
    assert stages == {t("health.stage.bronze", language), t("health.stage.silver", language)}


@pytest.fixture
def empty(tmp_path: Path) -> Iterator[None]:
    """A lakehouse nothing has been built into, no Dagster instance, an official's account."""
    roster = {
        "kim": accounts.Account(
            "kim", "official", "김주무관", password_hash=accounts.hash_password(PASSWORD)
        )
    }
    with environment(
        LAKEHOUSE_URI=str(tmp_path / "lakehouse"),
        GJH_SECRETS_DIR=str(tmp_path / "secrets"),
        DAGSTER_HOME=str(tmp_path / "dagster"),
        GJH_ACCOUNTS=str(accounts.save(roster, tmp_path / "accounts.json")),
        GJH_SESSION_KEY="56" * 32,
    ):
        yield


@pytest.mark.usefixtures("empty")
def test_before_any_build_the_pages_say_nothing_is_built_or_known() -> None:
    at = signed_in("public_health", "kim", PASSWORD)
    assert at.caption[0].value == t("official.freshness.none", "ko")
    at.switch_page("app_pages/health.py").run()
    assert not at.exception, at.exception
    assert at.caption[0].value == t("official.freshness.none", "ko")
    assert t("official.health.no_runs", "ko") in [w.value for w in at.warning]
    assert [i.value for i in at.info] == [t("official.health.checks_unknown", "ko")]
    assert [s.value for s in at.success] == [t("official.health.quarantine_none", "ko")]
    (sources,) = (d.value for d in at.dataframe)
    last_run = t("official.health.column.last_run_at", "ko")
    assert sources[last_run].tolist() == ["–"] * len(SOURCES)
