"""The programme's KPIs against their targets on the built small city: the cards' figures are
the published uptake's (never raw counts), institutions are counted against their enrolment
rounds, the AI services' service x month counts hide every cell of 1-10 (clinicians' accepted
flags included), the overview and trends pages show each KPI with its target and whose target
it is (AppTest), and the monthly report holds no count of 1-10 in its suppressed table."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from html.parser import HTMLParser

import polars as pl
import pytest

from apps.common.i18n import t
from apps.public_health import kpis as words
from apps.public_health.report import report
from lakehouse import accounts, delta, disclosure
from lakehouse.access import Access, AccessDeniedError, Principal
from lakehouse.access.aggregates import PUBLISHED, published
from lakehouse.access.programme import targets
from lakehouse.audit import AUDIT
from lakehouse.catalog.gold import SERVICE_COUNTS
from lakehouse.config import environment
from pipelines.defs import gold
from tests.apps.signed import signed_in
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.security]
PASSWORD = "demo-password-7"
SMALL = range(1, 11)  # the counts the disclosure rule hides


@pytest.fixture(scope="module")
def lake(built_small: Lake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lake]:
    """A copy of the built small city (its audit rows and decisions stay here), with an
    official's account."""
    folder = tmp_path_factory.mktemp("programme")
    root = folder / "lakehouse"
    shutil.copytree(built_small.root, root, ignore=shutil.ignore_patterns("objects"))
    shutil.copytree(built_small.root / "objects", root / "objects", copy_function=os.link)
    copied = Lake(root, built_small.sources)
    roster = {
        "official": accounts.Account(
            "official", "official", "시청 담당자", password_hash=accounts.hash_password(PASSWORD)
        )
    }
    with (
        copied.active(),
        environment(
            GJH_ACCOUNTS=str(accounts.save(roster, folder / "accounts.json")),
            GJH_SESSION_KEY="34" * 32,
        ),
    ):
        yield copied


@pytest.fixture(scope="module")
def accepted(lake: Lake) -> int:
    """Every AI flag accepted by a clinician of the institution that sent the study; the
    number of (service, study) pairs flagged and accepted, once the services' table is
    published again (as the nightly gold job would)."""
    flags = lake.frame("ai.findings", (pl.col("status") == "scored") & pl.col("positive"))
    for row in flags.iter_rows(named=True):
        clinician = Principal("dr.kpi", "clinician", institution=row["institution"], origin="test")
        Access(clinician).decide(row["tracking_uid"], "accepted", "confirmed_on_reading")
    # Officials read the AI services as the gold job published them: publish again.
    assert lake.materialise([gold.gold_ai_services_published]).success
    return flags.select("service", "study_instance_uid").unique().height


def official() -> Access:
    return Access(Principal("official", "official", "시청 담당자", origin="test"))


def months(lake: Lake) -> list[str]:
    """The whole months the uptake table reaches into."""
    days = lake.frame("gold.programme_uptake_daily")["day"].dt.strftime("%Y-%m")
    return sorted(days.unique().to_list())


def days_covered(lake: Lake, month: str) -> int:
    """The days of ``month`` the uptake table holds (a first or last month may be partial)."""
    days = lake.frame("gold.programme_uptake_daily")["day"].unique()
    return days.filter(days.dt.strftime("%Y-%m") == month).len()


def test_the_cards_are_the_published_uptake_against_their_targets(lake: Lake) -> None:
    layer = official()
    all_months = layer.uptake_months()
    assert all_months == months(lake)
    month, before = all_months[-1], all_months[-2]
    cards = {k.kpi: k for k in layer.kpis(month)}
    assert {"app_users", "active_users", "centre_visits", "institutions"} <= set(cards)
    assert {"institutions_round_1", "institutions_round_2", "ai_services", "ai_studies"} <= set(
        cards
    )

    def published(measure: str, of: str) -> float | None:
        (row,) = layer.uptake(measure, [], of, of).iter_rows(named=True)
        return None if row["suppressed"] else float(row[measure])

    residents = published("residents", month)
    assert residents
    for kpi, measure, per_day in (
        ("app_users", "app_users", False),
        ("active_users", "active_users", True),
        ("centre_visits", "centre_visitors", True),
    ):
        card, now, then = cards[kpi], published(measure, month), published(measure, before)
        divisor = days_covered(lake, month) if per_day else 1
        expected = None if now is None else now / divisor
        assert card.value == pytest.approx(expected), kpi
        assert card.suppressed is (now is None)
        if kpi != "centre_visits" and expected is not None:
            assert card.share == pytest.approx(expected / residents)
        if now is not None and then is not None:
            previous = then / (days_covered(lake, before) if per_day else 1)
            assert expected is not None and card.change == pytest.approx(expected - previous)
        else:
            assert card.change is None
        assert card.source == "gold.programme_uptake_daily"
        assert card.freshness.data_until == lake.frame("gold.programme_uptake_daily")["day"].max()
        assert card.freshness.built_at is not None
    # The city's targets carry the article's sentence; the app's are the deployment's own.
    assert cards["institutions"].target == targets()["institutions"]
    assert cards["institutions"].target is not None and cards["institutions"].target.sourced
    assert "100개" in (cards["institutions"].target.quote or "")
    assert cards["centre_visits"].target is not None
    assert cards["centre_visits"].target.value == 3000
    for kpi in ("app_users", "active_users"):
        goal = cards[kpi].target
        assert goal is not None and not goal.sourced and goal.quote is None
    # Each call is one audited aggregate read of the official's.
    rows = lake.frame(AUDIT, pl.col("account") == "official")
    assert f"kpis {month}" in rows["detail"].to_list()


def test_each_kpi_read_is_one_audit_row(lake: Lake) -> None:
    """The cards and the trends are built from many published slices (a measure per month), but
    each call is one read of the official's: one audit row (one commit to the access log, which
    at 50 ms or more each made the trends page take seconds; docs/benchmarks.md, issue 20)."""
    layer = official()
    month = layer.uptake_months()[-1]

    def logged() -> int:
        return lake.frame(AUDIT, pl.col("account") == "official").height

    before = logged()
    layer.kpis(month)
    assert logged() == before + 1
    layer.kpi_series()
    assert logged() == before + 2


def test_institutions_are_counted_against_their_rounds(lake: Lake) -> None:
    register = lake.frame("silver.institutions").filter(pl.col("enrolment_round").is_not_null())
    rounds = sorted(register["enrolment_round"].unique().to_list())
    assert rounds[:2] == [1, 2]
    series = official().kpi_series()
    for month in series["month"].unique().to_list():
        end = date(int(month[:4]), int(month[5:]), 1) + timedelta(days=31)
        end = end.replace(day=1) - timedelta(days=1)
        enrolled = register.filter(pl.col("enrolled_on") <= end)
        of_month = {
            r["kpi"]: r for r in series.filter(pl.col("month") == month).iter_rows(named=True)
        }
        assert of_month["institutions"]["value"] == enrolled.height
        assert of_month["institutions"]["target"] == 100
        for number in rounds:
            row = of_month[f"institutions_round_{number}"]
            assert row["value"] == enrolled.filter(pl.col("enrolment_round") == number).height
            assert row["target"] == {1: 15, 2: 80}.get(number)  # a later round has none
    institutions = series.filter(pl.col("kpi") == "institutions")["value"]
    assert institutions.is_sorted()  # enrolled institutions stay enrolled


def raw_service_counts(lake: Lake) -> pl.DataFrame:
    """The oracle: studies, AI-flagged and clinician-accepted studies per service and month of
    acquisition, from the raw tables."""
    findings = lake.frame("ai.findings", pl.col("status") == "scored")
    latest = findings.filter(
        pl.col("scored_at")
        == pl.col("scored_at").max().over("study_instance_uid", "service", "finding_code")
    )
    studies = lake.frame("silver.imaging_studies").select(
        "study_instance_uid",
        pl.coalesce("study_datetime", "first_received_at").dt.strftime("%Y-%m").alias("month"),
    )
    per_study = (
        latest.group_by("service", "study_instance_uid")
        .agg(
            pl.col("positive").fill_null(False).any().alias("flagged"),
            (pl.col("positive").fill_null(False) & (pl.col("verification") == "accepted"))
            .any()
            .alias("accepted"),
        )
        .join(studies, on="study_instance_uid")
    )
    return per_study.group_by("service", "month").agg(
        pl.len().alias("studies"),
        pl.col("flagged").sum().alias("flagged"),
        pl.col("accepted").sum().alias("accepted"),
    )


def test_the_ai_services_hide_every_count_of_1_to_10(lake: Lake, accepted: int) -> None:
    table = official().service_table()
    raw = raw_service_counts(lake)
    inner = table.filter(
        (pl.col("service") != disclosure.TOTAL) & (pl.col("month") != disclosure.TOTAL)
    )
    checked = inner.join(raw, on=["service", "month"], how="left", suffix="_raw").with_columns(
        pl.col(f"{c}_raw").fill_null(0) for c in SERVICE_COUNTS
    )
    assert checked.height == inner.height
    hidden = 0
    for count in SERVICE_COUNTS:
        for row in checked.iter_rows(named=True):
            if row[f"{count}_raw"] in SMALL:
                assert row[f"{count}_suppressed"], (count, row)
            if row[f"{count}_suppressed"]:
                assert row[count] is None
                hidden += 1
            else:
                assert row[count] == row[f"{count}_raw"], (count, row)
                assert row[count] not in SMALL
        # Margins too: nothing published is 1-10.
        assert not table.filter(pl.col(count).is_in(list(SMALL))).height
    assert hidden, "the small city should have small cells to hide"
    # Every flag was accepted: the city's accepted total is the flagged studies where shown.
    # Both may be hidden: with every flag accepted, the totals shown would tell that each hidden
    # accepted count equals its flagged one, which the audit under accepted <= flagged sees.
    (grand,) = table.filter(
        (pl.col("service") == disclosure.TOTAL) & (pl.col("month") == disclosure.TOTAL)
    ).iter_rows(named=True)
    assert accepted > 10
    assert grand["flagged"] in (accepted, None)
    assert grand["accepted"] in (accepted, None)
    # The decisions reached the published table (before them every accepted count was a 0).
    assert table["accepted_suppressed"].any() or (table["accepted"] > 0).any()
    # A median turnaround shows only beside a shown count.
    assert table.filter(pl.col("median_hours").is_not_null())["studies"].null_count() == 0


def test_only_officials_read_the_kpis_and_a_refusal_is_audited(lake: Lake) -> None:
    clinician = Access(Principal("dr.kpi", "clinician", institution="12345678", origin="test"))
    with pytest.raises(AccessDeniedError):
        clinician.kpi_series()
    with pytest.raises(AccessDeniedError):
        clinician.service_table()
    refused = lake.frame(AUDIT, (pl.col("account") == "dr.kpi") & (pl.col("outcome") == "denied"))
    assert refused.height >= 2


def test_the_overview_shows_every_card_with_its_target(lake: Lake) -> None:
    for language in ("ko", "en"):
        at = signed_in("public_health", "official", PASSWORD, language)
        assert at.title[0].value == t("official.overview.title", language)
        labels = [m.label for m in at.metric]
        assert t("kpi.institutions", language) in labels
        assert t("kpi.centre_visits", language) in labels
        assert t("kpi.institutions_round", language, round=1) in labels
        captions = [c.value for c in at.caption]
        city = t(
            "kpi.target.source", language, target=t("kpi.unit.institutions", language, value="100")
        )
        assert city in captions
        assert (
            t(
                "kpi.target.source",
                language,
                target=t("kpi.unit.institutions", language, value="15"),
            )
            in captions
        )
        share = t("kpi.unit.share", language, value="10.0%")
        assert t("kpi.target.deployment", language, target=share) in captions
        newest = official().kpis(months(lake)[-1])[0]
        assert words.fresh(newest.freshness, language) in captions
        # The services' table: no count of 1-10 on screen.
        (services,) = at.dataframe
        for count in SERVICE_COUNTS:
            for cell in services.value[t(f"column.{count}", language)].astype(str):
                assert "◆" in cell or int(cell.replace(",", "")) not in SMALL
        assert at.get("download_button"), "the monthly report's download"


def test_the_trends_draw_every_kpi_with_its_target_line(lake: Lake) -> None:
    at = signed_in("public_health", "official", PASSWORD)
    at.switch_page("app_pages/trends.py").run()
    assert not at.exception, at.exception
    series = official().kpi_series()
    kpis = series["kpi"].unique().to_list()
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(charts) == len(kpis) + 1  # and the studies by service
    lines = {
        chart["layout"]["title"]["text"]: [s["y0"] for s in chart["layout"].get("shapes", [])]
        for chart in charts
    }
    for kpi in kpis:
        target = series.filter(pl.col("kpi") == kpi)["target"][0]
        name = (
            t("kpi.institutions_round", "ko", round=kpi.rsplit("_", 1)[1])
            if kpi.startswith("institutions_round_")
            else t(f"kpi.{kpi}", "ko")
        )
        assert lines[name] == ([] if target is None else [pytest.approx(target)]), kpi


class Cells(HTMLParser):
    """The text of every count cell of the report's suppressed tables."""

    def __init__(self) -> None:
        super().__init__()
        self.suppressed = False
        self.count = False
        self.cells: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table":
            self.suppressed = found.get("class") == "suppressed"
        self.count = self.suppressed and tag == "td" and found.get("class") == "count"

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self.count = False

    def handle_data(self, data: str) -> None:
        if self.count:
            self.cells.append(data.strip())


def test_the_monthly_report_holds_no_count_of_1_to_10(lake: Lake, accepted: int) -> None:
    layer = official()
    for month in layer.uptake_months():
        for language in ("ko", "en"):
            html = report(layer, month, language).decode("utf-8")
            cells = Cells()
            cells.feed(html)
            assert cells.cells, "the report lists the AI services"
            for cell in cells.cells:
                assert "◆" in cell or int(cell.replace(",", "")) not in SMALL, (month, cell)
            assert t("report.rule", language) in html
            assert t("report.synthetic", language) in html
            assert "@page { size: A4" in html
            # The deployment's own targets are marked as such, the city's are not.
            assert "†" in html and t("report.deployment", language) in html
            assert re.search(r"100(개 기관| institutions)", html)


# --- one audited unit per page view (Gate.view), the published table read once per version ---

# What an audit row says of the call, beyond its own id and time.
SAID = (
    "account", "role", "institution", "origin", "subject_key", "action",
    "purpose", "outcome", "rows", "emergency", "detail", "refusal",
)  # fmt: skip


def page_calls(layer: Access) -> None:
    """An officials' page's calls: the overview's, then the compare page's kinds of reads."""
    months = layer.uptake_months()
    first, last = months[0], months[-1]
    layer.freshness()
    layer.kpis(last)
    layer.service_table()
    layer.kpi_series()
    layer.uptake("app_users", ["district_code"], first, last)
    layer.uptake_dongs("residents", first, last)


def logged(lake: Lake, account: str) -> pl.DataFrame:
    return lake.frame(AUDIT, pl.col("account") == account).sort("at")


def test_a_view_commits_every_calls_row_at_once(lake: Lake) -> None:
    """A page view's audit rows are those of its calls made one by one (every column but each
    row's id and time), written in one commit to the access log instead of one per call."""
    alone = Access(Principal("official.alone", "official", origin="test"))
    page_calls(alone)
    viewed = Access(Principal("official.viewed", "official", origin="test"))
    before = delta.open_table(AUDIT).version()
    with viewed.view("overview"):
        page_calls(viewed)
        assert logged(lake, "official.viewed").is_empty(), "nothing is committed inside"
    assert delta.open_table(AUDIT).version() == before + 1
    expected = logged(lake, "official.alone").select(SAID)
    got = logged(lake, "official.viewed").select(SAID)
    assert got.height == expected.height == 5
    assert got.drop("account").equals(expected.drop("account"))
    # A view inside a view joins it: still one commit; after it, calls commit as they are made.
    before = delta.open_table(AUDIT).version()
    with viewed.view("page"), viewed.view("part"):
        page_calls(viewed)
    assert delta.open_table(AUDIT).version() == before + 1
    viewed.service_table()
    assert delta.open_table(AUDIT).version() == before + 2


def test_a_view_that_raises_still_writes_what_it_gathered(lake: Lake) -> None:
    layer = Access(Principal("official.raised", "official", origin="test"))
    month = layer.uptake_months()[-1]
    with pytest.raises(RuntimeError, match="drawing failed"), layer.view("overview"):
        layer.kpis(month)
        layer.service_table()
        raise RuntimeError("drawing failed")
    assert logged(lake, "official.raised")["detail"].to_list() == [f"kpis {month}", "ai services"]


def test_a_refusal_inside_a_view_is_committed_at_once(lake: Lake) -> None:
    """A refused attempt is never held back for the end of a view: it is in the access log,
    with the rows gathered before it, when the refusal is raised."""
    clinician = Access(Principal("dr.view", "clinician", institution="12345678", origin="test"))
    with clinician.view("wrong page"):
        with pytest.raises(AccessDeniedError):
            clinician.kpi_series()
        refused = logged(lake, "dr.view")
        assert refused["outcome"].to_list() == ["denied"]
        assert refused["refusal"].to_list() == ["role"]


def test_the_published_table_is_read_once_per_version(lake: Lake) -> None:
    """Every uptake read slices one copy of the published table, kept while its version
    stands; a new build is read at once."""
    layer = official()
    kept = published()
    layer.kpi_series()
    assert published() is kept
    delta.replace(PUBLISHED, kept, "measure IS NOT NULL")  # a new build, the same cells
    rebuilt = published()
    assert rebuilt is not kept and rebuilt.sort(rebuilt.columns).equals(kept.sort(kept.columns))


def test_a_cards_freshness_is_reckoned_as_the_pages_line(lake: Lake) -> None:
    """One reckoning of freshness: the uptake cards' is the freshness line's of their table."""
    layer = official()
    cards = layer.kpis(layer.uptake_months()[-1])
    uptake = [k for k in cards if k.source == "gold.programme_uptake_daily"]
    assert uptake
    assert {k.freshness for k in uptake} == {layer.freshness(["gold.programme_uptake_daily"])}
