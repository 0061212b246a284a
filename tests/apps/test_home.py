"""The citizen's home page (Streamlit's AppTest on a lakehouse holding no records yet): it is
where the app opens, explains on a first visit what the app is and that its AI is a reference
model trained on synthetic data, not a diagnosis, and offers one large tile per core flow, each
a link to a page the app has, in plain words of the session's language."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from apps.citizen.flows import FLOWS
from apps.common.i18n import LANGS, Lang, t
from lakehouse import accounts
from lakehouse.config import environment
from tests.apps.signed import signed_in

pytestmark = [pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
CITIZEN_APP = ROOT / "apps" / "citizen"
PASSWORD = "demo-password-5"
HANGUL = re.compile("[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")


@pytest.fixture(scope="module")
def signed_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A citizen account on an empty lakehouse."""
    folder = tmp_path_factory.mktemp("home")
    citizen = accounts.Account(
        "minji",
        "citizen",
        citizen_key="C" + "0" * 32,
        password_hash=accounts.hash_password(PASSWORD),
    )
    with environment(
        LAKEHOUSE_URI=str(folder / "lakehouse"),
        GJH_SECRETS_DIR=str(folder / "secrets"),
        GJH_ACCOUNTS=str(accounts.save({"minji": citizen}, folder / "accounts.json")),
        GJH_SESSION_KEY="34" * 32,
    ):
        yield


def home(language: Lang) -> AppTest:
    """The citizen signed in, on the page the app opens with, in ``language``."""
    return signed_in("citizen", "minji", PASSWORD, language)


def words(at: AppTest) -> str:
    shown = (*at.title, *at.subheader, *at.markdown, *at.button, *at.get("page_link"))
    return "\n".join(str(getattr(e, "value", "") or e.proto.label) for e in shown)


@pytest.mark.usefixtures("signed_up")
@pytest.mark.parametrize("language", LANGS)
def test_home_offers_a_tile_per_core_flow_each_a_page_of_the_app(language: Lang) -> None:
    at = home(language)
    tiles = at.get("page_link")
    assert [tile.proto.label for tile in tiles] == [t(flow.title, language) for flow in FLOWS]
    assert len(tiles) >= 3  # my timeline, share with a doctor, who viewed my record
    for tile, flow in zip(tiles, FLOWS, strict=True):
        assert (CITIZEN_APP / flow.page).is_file()
        assert tile.proto.page_script_hash  # resolved to one of the app's pages
        assert tile.proto.icon == flow.icon
        opened = at.switch_page(flow.page).run()
        assert not opened.exception, (flow.page, opened.exception)
        assert t(flow.title, language) in [e.value for e in opened.title]
        at = home(language)
    # The tiles' targets are the app's pages: each hash differs, none is the home page's.
    hashes = {tile.proto.page_script_hash for tile in tiles}
    assert len(hashes) == len(FLOWS)


@pytest.mark.usefixtures("signed_up")
@pytest.mark.parametrize("language", LANGS)
def test_a_first_visit_says_what_the_app_is_and_that_its_ai_is_no_diagnosis(
    language: Lang,
) -> None:
    at = home(language)
    shown = words(at)
    for key in ("welcome", "welcome_ai", "welcome_menu"):
        assert t(f"citizen.home.{key}", language) in shown
    if language == "ko":
        # "AI" is how Korean writes it (the city's own "AI 주치의"); nothing else is English.
        assert "진단이 아닙니다" in shown and not re.search("[A-Za-z]", shown.replace("AI", ""))
    else:
        assert "not a diagnosis" in shown and not HANGUL.search(shown)
    at.button(key="home_welcome_done").click().run()
    assert t("citizen.home.welcome_done", language) not in [b.label for b in at.button]
    assert [e.label for e in at.expander] == [t("citizen.home.welcome_title", language)]
