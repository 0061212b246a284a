"""From the citizen's sign-in to their timeline, as issue 19's "under 1 s" needs it (Streamlit's
AppTest on the built demo city; the timing itself is tests/benchmarks/test_timeline_page.py):

- the sign-in page draws a specimen of the timeline, no one's record, out of sight, so that the
  browser has loaded plotly.js before the click (it used to load it after, about 1 s on a
  phone); signed in, the specimen is gone;
- one's own timeline opens without decrypting one's own name (a vault read and an audit row
  before the picture; the page's title already says "my timeline"), while a carer's view of a
  parent's record still names whose record it is."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from apps.common import cache
from apps.common.i18n import t
from apps.common.layout import WARM_KEY
from lakehouse import accounts, identity
from lakehouse.access import Access, Principal
from lakehouse.catalog.gold import KINDS
from tests.apps import test_clinician as clinician_app
from tests.lakehouse.test_access import linked_by_rows
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.integration, pytest.mark.slow]
APP = Path(__file__).resolve().parents[2] / "apps" / "citizen" / "streamlit_app.py"
PASSWORD = "timeline-sign-in-1"
WARM_CHART = f"{WARM_KEY}_chart"


@pytest.fixture(scope="module")
def people(platform_lake: Lake) -> dict[str, str]:
    """A linked citizen (the parent) and another citizen who becomes their carer."""
    linked = linked_by_rows(platform_lake, platform_lake.frame("gold.citizen_timeline"))
    return {"parent": linked["citizen_key"][0], "carer": linked["citizen_key"][1]}


@pytest.fixture(scope="module", autouse=True)
def env(
    platform_lake: Lake, people: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    hashed = accounts.hash_password(PASSWORD)
    roster = {
        name: accounts.Account(name, "citizen", citizen_key=people[name], password_hash=hashed)
        for name in ("parent", "carer")
    }
    saved = accounts.save(roster, tmp_path_factory.mktemp("accounts") / "accounts.json")
    with pytest.MonkeyPatch.context() as patch, platform_lake.active():
        patch.setenv("GJH_ACCOUNTS", str(saved))
        patch.setenv("GJH_SESSION_KEY", "9c" * 32)
        cache.clear()
        yield


def sign_in_page() -> AppTest:
    """The citizen app opened at the timeline's address, before sign-in."""
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.switch_page("app_pages/timeline.py")
    return at.run()


def signed_in(account: str) -> AppTest:
    """The app signed in as ``account``, on its home page (which greets them by name)."""
    return clinician_app.signed_in(account, "citizen", password=PASSWORD)


def timeline_page(at: AppTest) -> AppTest:
    """The timeline, from a signed-in app."""
    at.switch_page("app_pages/timeline.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def warm_charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart") if c.key == WARM_CHART]


def name_reads(lake: Lake, account: str) -> int:
    rows = lake.frame("ops.audit_log", (pl.col("account") == account))
    return rows.filter(pl.col("action") == "read:name").height


def test_the_sign_in_page_draws_a_specimen_of_the_timeline_out_of_sight() -> None:
    at = sign_in_page()
    assert at.text_input(key="sign_in_name") is not None  # the form, as before
    (specimen,) = warm_charts(at)
    # Every kind of item, and the picture's controls: drawing it compiles what a timeline takes.
    assert len(specimen["data"]) == len(KINDS)
    assert specimen["layout"]["xaxis"]["rangeslider"]["visible"]
    assert specimen["layout"]["xaxis"]["rangeselector"]["buttons"]
    # Made-up items, nobody's record: their references name a kind, not a table's row.
    refs = {ref for trace in specimen["data"] for (ref,) in trace["customdata"]}
    assert refs == set(KINDS)
    hidden = f".st-key-{WARM_KEY} {{ display: none; }}"
    assert any(hidden in str(h.proto) for h in at.get("html"))  # never displayed
    mine = timeline_page(signed_in("parent"))
    assert not warm_charts(mine)
    assert mine.get("plotly_chart")  # the timeline itself


def test_my_own_timeline_does_not_decrypt_my_name_but_a_carers_view_names_whose_it_is(
    platform_lake: Lake, people: dict[str, str]
) -> None:
    home = signed_in("parent")
    greeted = name_reads(platform_lake, "parent")
    mine = timeline_page(home)
    assert mine.get("plotly_chart")
    assert t("citizen.timeline.title", "ko") in [e.value for e in mine.title]
    assert not mine.subheader or all("님의 기록" not in s.value for s in mine.subheader)
    assert name_reads(platform_lake, "parent") == greeted  # none more for the timeline

    parent = Access(Principal("parent", "citizen", citizen_key=people["parent"], origin="test"))
    carer = Access(Principal("carer", "citizen", citizen_key=people["carer"], origin="test"))
    grant = parent.grant_proxy("carer")
    carer.accept_proxy(grant.grant_id)
    viewing = timeline_page(signed_in("carer"))
    viewing.selectbox(key="timeline_whose.ko").set_value(people["parent"]).run()
    assert not viewing.exception, [e.value for e in viewing.exception]
    vault = platform_lake.frame("vault.identities", pl.col("citizen_key") == people["parent"])
    name = identity.decrypt(vault["name_enc"][0])
    expected = t("citizen.timeline.viewing", "ko", name=name)
    assert expected in [s.value for s in viewing.subheader]
    read = platform_lake.frame("ops.audit_log", pl.col("action") == "read:name")
    assert people["parent"] in read.filter(pl.col("account") == "carer")["subject_key"].to_list()
