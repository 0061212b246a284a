"""An app under Streamlit's AppTest, signed in with a local account, in a language."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl

from streamlit.testing.v1 import AppTest

from apps.common.i18n import Lang

APPS = Path(__file__).resolve().parents[2] / "apps"


def signed_in(app: str, account: str, password: str, language: Lang = "ko") -> AppTest:
    """``apps/<app>/streamlit_app.py`` run, ``account`` signed in, switched to ``language``;
    on the page the app opens with."""
    at = AppTest.from_file(str(APPS / app / "streamlit_app.py"), default_timeout=60).run()
    at.text_input(key="sign_in_name").input(account)
    at.text_input(key="sign_in_password").input(password)
    at.button[0].click().run()
    if language == "en":
        at.radio[0].set_value("en").run()
    assert not at.exception, at.exception
    return at


def follow_link(at: AppTest, label: str, page: str) -> AppTest:
    """Follow the page link labelled ``label`` as a browser would: to ``page`` (its file, as
    ``AppTest.switch_page`` takes it) with the link's query; not yet run (``.run()`` it, or time
    the run).

    Raises:
        AssertionError: No link has that label, or it leads to another page.
    """
    links = [e.proto for e in at.get("page_link") if e.proto.label == label]
    assert links, f"no link {label!r}"
    assert links[0].page.endswith(Path(page).stem), (links[0].page, page)
    at.query_params = dict(parse_qsl(links[0].query_string))
    return at.switch_page(page)
