"""Sign-in through an OpenID Connect provider, in Chromium, end to end.

A real provider runs on localhost (tests/apps/oidc_provider.py: discovery, login page, code
exchange with PKCE, RS256 ID tokens, JWKS, end-session). The clinician app is served with a
test-only ``[auth]`` secrets file (``STREAMLIT_SECRETS_FILES``; the repository's ``.streamlit``
is not touched) naming that provider, as a hospital's would. The person clicks the provider's
button, signs in on the provider's own page, comes back through ``/oauth2callback`` and is
admitted as the account the file maps the ID token's issuer and subject to; a provider account
the file does not list is refused, told so, recorded in ``ops.sign_ins`` and signed out.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import polars as pl
import pytest
from playwright.sync_api import Page, expect

from apps.common.i18n import t
from gjh.bench.app_server import AppServer, run_app
from gjh.bench.browser import exception_texts, wait_idle
from lakehouse import accounts
from lakehouse.accounts import SIGN_IN_LOG
from tests.apps.oidc_provider import PASSWORD, OidcProvider, User
from tests.apps.screenshots import shot
from tests.apps.served import app_script
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.security, pytest.mark.slow]
CLIENT_ID = "gjh-clinician"
HOSPITAL = "시험병원"  # the provider's display_name on the button
DOCTOR = User("hosp-0001", "dr.oh@hospital.test", "오의사")
STRANGER = User("hosp-9999", "visitor@hospital.test", "방문자")  # in no account file
OFFICIAL = User("hosp-0002", "official@hospital.test", "시청 담당자")  # another role's account
CLINICIAN_PAGES = ("triage.worklist.title", "triage.viewer.title", "clinician.patient.title")


@pytest.fixture(scope="module")
def provider() -> Iterator[OidcProvider]:
    with OidcProvider({"dr.oh": DOCTOR, "visitor": STRANGER, "official": OFFICIAL}) as op:
        yield op


@pytest.fixture(scope="module")
def clinician_app(
    platform_lake: Lake, provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppServer]:
    """The clinician app with the provider configured; the account file knows the doctor and
    an official by the provider's issuer and subject only (no password)."""
    folder = tmp_path_factory.mktemp("oidc")
    clinic = platform_lake.frame("ai.findings")["institution"].sort()[0]
    doctor = accounts.Account(
        "dr.oh",
        "clinician",
        "오의사",
        institution=clinic,
        oidc_issuer=provider.issuer,
        oidc_subject=DOCTOR.sub,
    )
    official = accounts.Account(
        "official",
        "official",
        "시청 담당자",
        oidc_issuer=provider.issuer,
        oidc_subject=OFFICIAL.sub,
    )
    roster = {"dr.oh": doctor, "official": official}
    client_secret = secrets.token_hex(16)
    secrets_file = folder / "secrets.toml"
    secrets_file.write_text(
        "[auth]\n"
        'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        f'client_id = "{CLIENT_ID}"\n'
        f'client_secret = "{client_secret}"\n'
        f'server_metadata_url = "{provider.metadata_url}"\n'
        f'display_name = "{HOSPITAL}"\n',
        encoding="utf-8",
    )
    env = {
        "LAKEHOUSE_URI": str(platform_lake.root),
        "GJH_SECRETS_DIR": str(platform_lake.root.parent / "secrets"),
        "GJH_ACCOUNTS": str(accounts.save(roster, folder / "accounts.json")),
        "GJH_SESSION_KEY": "ef" * 32,
        "STREAMLIT_SECRETS_FILES": str(secrets_file),
    }
    with run_app(app_script("clinician"), env) as app:
        provider.register(CLIENT_ID, client_secret, f"{app.url}/oauth2callback")
        yield app


def at_app(url: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(url)}/?(\?.*)?$")


def arrive(page: Page, url: str) -> None:
    """Wait until a redirect chain has landed on the app at ``url`` and its first run settled."""
    page.wait_for_url(at_app(url), timeout=30_000)
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-connection-state="CONNECTED"]', timeout=60_000
    )
    wait_idle(page)


def sign_in_at_provider(
    page: Page, app: AppServer, provider: OidcProvider, login: str, flow: str
) -> None:
    """Click the provider's button on the app's sign-in page, sign in on the provider's page,
    and come back to the app."""
    page.goto(app.url)
    arrive(page, app.url)
    button = page.get_by_role("button", name=t("auth.provider.sign_in", "ko", provider=HOSPITAL))
    expect(button).to_be_visible()
    shot(page, flow, "sign-in-page")
    button.click()
    page.wait_for_url(re.compile(rf"^{re.escape(provider.issuer)}/authorize\?"))
    expect(page.get_by_role("heading", name="Test identity provider")).to_be_visible()
    page.get_by_label("User name").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    arrive(page, app.url)
    assert not exception_texts(page)


def sign_out(page: Page, app: AppServer, button: str) -> None:
    """Click a sign-out button and follow the redirects (the app's ``/auth/logout``, the
    provider's end-session endpoint, ``/oauth2callback``) back to the app's sign-in page: the
    URL ends where it started, so the navigation itself is awaited."""
    with page.expect_navigation(url=at_app(app.url), timeout=30_000):
        page.get_by_role("button", name=button).click()
    arrive(page, app.url)


def sign_ins(lake: Lake, account: str) -> list[str]:
    """The account's recorded sign-ins: the table and what the servers' outbox still holds."""
    with lake.active():
        rows = SIGN_IN_LOG.scan().filter(pl.col("account") == account).collect()
    return rows.sort("at")["outcome"].to_list()


def test_a_provider_account_in_the_account_file_signs_in_with_its_role(
    page: Page, clinician_app: AppServer, provider: OidcProvider, platform_lake: Lake
) -> None:
    sign_in_at_provider(page, clinician_app, provider, "dr.oh", "oidc-admitted")
    expect(page.get_by_role("heading", name=t("triage.worklist.title", "ko"))).to_be_visible()
    signed_in = t("layout.signed_in_as", "ko", name="오의사", role=t("role.clinician", "ko"))
    expect(page.get_by_text(signed_in)).to_be_visible()
    for title in CLINICIAN_PAGES:
        expect(page.get_by_role("link", name=t(title, "ko"))).to_be_visible()
    shot(page, "oidc-admitted", "worklist")
    assert provider.signed_in == [DOCTOR.sub]
    assert sign_ins(platform_lake, "dr.oh") == ["ok"]  # once, not once per rerun
    assert not platform_lake.frame("ops.audit_log", pl.col("account") == "dr.oh").is_empty()
    # The provider's round trip runs nothing outside a script run (tests/apps/test_serving.py).
    assert "missing ScriptRunContext" not in clinician_app.log.read_text(encoding="utf-8")

    # Signing out ends the session at the provider too, and the sign-in page is back.
    sign_out(page, clinician_app, t("auth.sign_out", "ko"))
    expect(
        page.get_by_role("button", name=t("auth.provider.sign_in", "ko", provider=HOSPITAL))
    ).to_be_visible()
    assert provider.signed_out == [DOCTOR.sub]
    assert "_streamlit_user" not in {c["name"] for c in page.context.cookies()}


def test_a_provider_account_not_in_the_account_file_is_refused_logged_and_signed_out(
    page: Page, clinician_app: AppServer, provider: OidcProvider, platform_lake: Lake
) -> None:
    sign_in_at_provider(page, clinician_app, provider, "visitor", "oidc-refused")
    expect(page.get_by_text(t("auth.provider.unknown", "ko"))).to_be_visible()
    expect(page.get_by_text(STRANGER.email)).to_be_visible()
    expect(page.get_by_role("heading", name=t("triage.worklist.title", "ko"))).to_have_count(0)
    expect(page.get_by_role("link", name=t("triage.viewer.title", "ko"))).to_have_count(0)
    shot(page, "oidc-refused", "refused")
    with_english = page.get_by_text("English", exact=True)
    with_english.click()
    expect(page.get_by_text(t("auth.provider.unknown", "en"))).to_be_visible()
    identity = f"{STRANGER.sub}@{provider.issuer}"
    assert sign_ins(platform_lake, identity) == ["unknown_account"]  # once, not once per rerun

    sign_out(page, clinician_app, t("auth.provider.sign_out", "en"))
    expect(
        page.get_by_role("button", name=t("auth.provider.sign_in", "ko", provider=HOSPITAL))
    ).to_be_visible()
    expect(page.get_by_text(t("auth.provider.unknown", "ko"))).to_have_count(0)
    assert STRANGER.sub in provider.signed_out
    assert "_streamlit_user" not in {c["name"] for c in page.context.cookies()}


def test_a_provider_account_of_another_role_is_told_so_and_sees_nothing(
    page: Page, clinician_app: AppServer, provider: OidcProvider, platform_lake: Lake
) -> None:
    sign_in_at_provider(page, clinician_app, provider, "official", "oidc-wrong-app")
    refusal = t("auth.wrong_app", "ko", role=t("role.official", "ko"))
    expect(page.get_by_text(refusal)).to_be_visible()
    expect(page.get_by_role("button", name=t("auth.provider.sign_out", "ko"))).to_be_visible()
    expect(page.get_by_role("heading", name=t("triage.worklist.title", "ko"))).to_have_count(0)
    assert sign_ins(platform_lake, "official") == ["ok"]  # the provider's sign-in was good
    assert platform_lake.frame("ops.audit_log", pl.col("account") == "official").is_empty()
