"""The sign-in page with and without an identity provider (Streamlit's AppTest): the local
accounts' form alone by default, the provider's button first when ``[auth]`` is configured, and
signing out of a local session. The provider's full redirect flow is in test_oidc_flow.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from apps.common import auth
from apps.common.i18n import t
from lakehouse import accounts

APP = Path(__file__).resolve().parents[2] / "apps" / "admin" / "streamlit_app.py"
PASSWORD = "sign-in-page-1"
AUTH = {
    "redirect_uri": "http://127.0.0.1:8501/oauth2callback",
    "cookie_secret": "a test cookie secret, not a real one",
    "client_id": "gjh-admin",
    "client_secret": "not a real secret",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = accounts.Account(
        "admin", "admin", "운영자", password_hash=accounts.hash_password(PASSWORD)
    )
    monkeypatch.setenv("LAKEHOUSE_URI", str(tmp_path / "lakehouse"))
    monkeypatch.setenv("GJH_ACCOUNTS", str(accounts.save({"admin": admin}, tmp_path / "a.json")))
    monkeypatch.setenv("GJH_SESSION_KEY", "12" * 32)


def button_labels(at: AppTest) -> list[str]:
    return [b.label for b in at.button]


def test_without_a_provider_only_the_local_form_is_offered() -> None:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    assert at.text_input(key="sign_in_name") is not None
    assert not at.expander  # the form is not folded away
    assert button_labels(at) == [t("auth.sign_in", "ko")]


def test_with_a_provider_its_button_comes_first_and_the_form_folds_away() -> None:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.secrets["auth"] = AUTH | {"display_name": "광주시 통합인증"}
    at.run()
    assert not at.exception
    sign_in = t("auth.provider.sign_in", "ko", provider="광주시 통합인증")
    assert button_labels(at) == [sign_in, t("auth.sign_in", "ko")]
    assert [e.label for e in at.expander] == [t("auth.provider.password", "ko")]
    at.secrets["auth"] = AUTH  # no display name: "기관 계정으로 로그인"
    at.run()
    assert button_labels(at)[0] == t("auth.provider.sign_in", "ko", provider="기관")


def test_a_local_session_signs_out_back_to_the_form() -> None:
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.text_input(key="sign_in_name").input("admin")
    at.text_input(key="sign_in_password").input(PASSWORD)
    at.button[0].click().run()
    assert auth.STATE in at.session_state
    at.button(key="sign_out").click().run()
    assert not at.exception
    assert auth.STATE not in at.session_state
    assert at.text_input(key="sign_in_name") is not None
