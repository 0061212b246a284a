"""The app platform's logic, run with Streamlit's AppTest on the built demo city: the sign-in
gate, sessions that cannot be forged or kept forever, role separation, the message catalogue,
and what each role's pages show through the access layer."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from apps.common import auth, sessions
from apps.common.i18n import LANGS, messages, t
from apps.common.theme import PAGE_PX
from lakehouse import accounts
from tests.lakehouse.test_access import linked_by_rows
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "apps"
PASSWORD = "demo-password-1"


@pytest.fixture(scope="module")
def people(platform_lake: Lake) -> dict[str, str]:
    timeline = platform_lake.frame("gold.citizen_timeline", pl.col("institution").is_not_null())
    # Record links that stand: the app shows them their whole timeline.
    counts = linked_by_rows(platform_lake, timeline)
    alice, bob = counts["citizen_key"][2], counts["citizen_key"][3]
    clinic = timeline.filter((pl.col("citizen_key") == alice) & (pl.col("kind") == "visit"))[
        "institution"
    ][0]
    return {"alice": alice, "bob": bob, "clinic": clinic}


@pytest.fixture(scope="module")
def env(
    platform_lake: Lake, people: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """The platform lake, an accounts file of one account per role, a session key."""
    folder = tmp_path_factory.mktemp("accounts")
    hashed = accounts.hash_password(PASSWORD)
    roster = {
        a.name: a
        for a in (
            accounts.Account("alice", "citizen", citizen_key=people["alice"], password_hash=hashed),
            accounts.Account("bob", "citizen", citizen_key=people["bob"], password_hash=hashed),
            accounts.Account(
                "dr.kim", "clinician", "김의사", institution=people["clinic"], password_hash=hashed
            ),
            accounts.Account("official", "official", "시청 담당자", password_hash=hashed),
            accounts.Account("admin", "admin", "운영자", password_hash=hashed),
        )
    }
    with pytest.MonkeyPatch.context() as patch, platform_lake.active():
        patch.setenv("GJH_ACCOUNTS", str(accounts.save(roster, folder / "accounts.json")))
        patch.setenv("GJH_SESSION_KEY", "ab" * 32)
        yield


def app(name: str) -> AppTest:
    return AppTest.from_file(str(APPS / name / "streamlit_app.py"), default_timeout=60)


def sign_in(at: AppTest, account: str, password: str = PASSWORD) -> AppTest:
    at.run()
    at.text_input(key="sign_in_name").input(account)
    at.text_input(key="sign_in_password").input(password)
    at.button[0].click()  # the form's submit button
    return at.run()


def timeline(at: AppTest) -> AppTest:
    """The citizen's timeline (the app opens on its home page)."""
    return at.switch_page("app_pages/timeline.py").run()


def texts(at: AppTest) -> str:
    parts = [e.value for e in (*at.title, *at.header, *at.subheader, *at.markdown, *at.caption)]
    parts += [e.value for e in (*at.error, *at.warning, *at.info, *at.success)]
    parts += [getattr(e, "value", "") for e in at.get("text")]
    return "\n".join(str(p) for p in parts)


def test_every_message_has_korean_and_english_with_the_same_fields() -> None:
    catalogue = messages()
    assert len(catalogue) > 100
    for key, entry in catalogue.items():
        assert set(entry) == set(LANGS), key
        assert all(entry[lang].strip() for lang in LANGS), key
        fields = {lang: set(re.findall(r"{(\w+)}", entry[lang])) for lang in LANGS}
        assert fields["ko"] == fields["en"], key
        assert re.search("[가-힣]", entry["ko"]) or not re.search("[a-z]{3}", entry["ko"]), key


def test_every_message_the_apps_ask_for_exists() -> None:
    used: set[str] = set()
    for source in APPS.rglob("*.py"):
        used |= set(re.findall(r'\bt\(\s*"([a-z_.]+)"', source.read_text(encoding="utf-8")))
    assert len(used) > 40
    missing = sorted(k for k in used if k not in messages())
    assert not missing, missing


@pytest.mark.security
@pytest.mark.usefixtures("env")
def test_nothing_shows_before_sign_in_and_wrong_passwords_are_refused() -> None:
    at = app("citizen").run()
    assert not at.exception
    assert at.text_input(key="sign_in_password").proto.type == 1  # a password field
    assert not at.dataframe
    sign_in(at, "alice", "wrong password")
    assert "올바르지 않습니다" in texts(at)
    assert not at.dataframe


@pytest.mark.security
@pytest.mark.usefixtures("env")
def test_a_citizen_signs_in_and_sees_their_timeline(platform_lake: Lake, people: dict) -> None:
    at = timeline(sign_in(app("citizen"), "alice"))
    assert not at.exception, at.exception
    assert t("citizen.timeline.title", "ko") in texts(at)
    assert "합성" in texts(at)  # the synthetic-data notice on every page
    truth = platform_lake.frame("gold.citizen_timeline", pl.col("citizen_key") == people["alice"])
    assert sum(len(table.value) for table in at.dataframe) == truth.height  # a list per year
    log = platform_lake.frame("ops.audit_log", pl.col("account") == "alice")
    assert "read:timeline" in log["action"].to_list()
    assert set(log["subject_key"].drop_nulls().to_list()) == {people["alice"]}


@pytest.mark.security
@pytest.mark.usefixtures("env")
def test_a_forged_or_tampered_session_gets_nothing(people: dict, platform_lake: Lake) -> None:
    at = sign_in(app("citizen"), "alice")
    token = at.session_state[auth.STATE]
    session, signature = token.split(".")
    # Another session under alice's signature; a made-up signature; another app's token; a
    # made-up account name; the old shape of a session (a dict naming its account).
    for forged in (
        f"{'A' * len(session)}.{signature}",
        f"{session}.{'0' * 64}",
        sessions.token("clinician", session),
        "bob",
        {"account": "bob"},
    ):
        tampered = app("citizen")
        tampered.session_state[auth.STATE] = forged
        tampered.session_state["citizen_key"] = people["bob"]  # nothing reads this
        tampered.run()
        assert not tampered.exception
        assert not tampered.dataframe, forged
        assert tampered.text_input(key="sign_in_name") is not None
    recorded = platform_lake.frame("ops.sign_ins", pl.col("outcome") == "forged_session")
    assert recorded.height == 5 and "bob" in recorded["account"].to_list()


@pytest.mark.security
@pytest.mark.usefixtures("env")
def test_an_idle_session_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GJH_SESSION_MINUTES", "0.05")  # 3 s
    at = timeline(sign_in(app("citizen"), "alice"))
    assert at.dataframe
    time.sleep(4)
    at.run()
    assert not at.dataframe
    assert t("auth.expired", "ko") in texts(at)


@pytest.mark.security
@pytest.mark.usefixtures("env")
def test_a_signed_out_session_opens_nothing_anywhere() -> None:
    """Signing out ends the session in the server's store: the same token in another session
    (a copied cookie, another tab) is refused too."""
    at = sign_in(app("citizen"), "alice")
    token = at.session_state[auth.STATE]
    elsewhere = app("citizen")
    elsewhere.session_state[auth.STATE] = token
    assert timeline(elsewhere).dataframe  # the token alone opens the session
    at.button(key="sign_out").click().run()
    assert auth.STATE not in at.session_state
    elsewhere.run()
    assert not elsewhere.dataframe
    assert elsewhere.text_input(key="sign_in_name") is not None


@pytest.mark.security
@pytest.mark.usefixtures("env")
def test_each_app_admits_its_own_role_only() -> None:
    for name, wrong, role in (
        ("citizen", "dr.kim", "clinician"),
        ("clinician", "alice", "citizen"),
        ("public_health", "admin", "admin"),
        ("admin", "official", "official"),
    ):
        at = sign_in(app(name), wrong)
        refusal = t("auth.wrong_app", "ko", role=t(f"role.{role}", "ko"))
        assert refusal in [e.value for e in at.error], name
        assert not at.dataframe
        assert auth.STATE not in at.session_state


@pytest.mark.usefixtures("env")
def test_the_language_switch_turns_every_label_english() -> None:
    at = timeline(sign_in(app("citizen"), "alice"))
    at.radio[0].set_value("en").run()
    assert t("citizen.timeline.title", "en") in texts(at)
    assert "synthetic" in texts(at)
    assert t("citizen.timeline.title", "ko") not in texts(at)


@pytest.mark.usefixtures("env")
def test_in_english_the_tables_dates_and_codes_are_english_too() -> None:
    """Tables are formatted in the script's run, where the session's language is known: a
    callback handed to Polars ran on its threads, where it is not, and wrote Korean."""
    hangul = re.compile("[가-힣]")
    at = timeline(sign_in(app("citizen"), "alice"))
    at.radio[0].set_value("en").run()
    (table,) = at.dataframe
    dates = table.value[t("column.date", "en")].tolist()
    assert dates and all(re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4}", d) for d in dates)
    admin = sign_in(app("admin"), "admin")
    admin.radio[0].set_value("en").run()
    (log,) = admin.dataframe
    shown = log.value[[t(f"column.{c}", "en") for c in ("when", "role", "purpose", "outcome")]]
    assert len(shown) and not any(hangul.search(str(v)) for v in shown.to_numpy().ravel())


@pytest.mark.security
@pytest.mark.usefixtures("env")
def test_markup_in_data_is_shown_as_text(people: dict) -> None:
    from lakehouse.access import Access, Principal

    hostile = "[click](https://evil.example) <img src=x onerror=alert(1)><script>alert(2)</script>"
    doctor = Access(Principal("dr.er", "clinician", institution="99999999", origin="test"))
    doctor.open_emergency(people["bob"], f"unconscious patient {hostile}")
    at = sign_in(app("citizen"), "bob")
    at.switch_page("app_pages/share.py").run()
    assert not at.exception
    shown = [str(getattr(e, "value", "")) for e in at.get("text")]
    assert any(hostile in s for s in shown)  # as text, not as markup or a link
    assert not any(hostile in m.value or "evil.example" in m.value for m in at.markdown)
    # A carer name that is no account is refused without being echoed back.
    at.text_input(key="share_carer").input(hostile[:60])
    next(b for b in at.button if b.proto.form_id == "share_proxy").click().run()
    assert t("citizen.share.proxy_unknown", "ko") in [e.value for e in at.error]
    assert not any("evil.example" in str(e.value) for e in (*at.success, *at.error))


@pytest.mark.security
@pytest.mark.usefixtures("env")
def test_an_official_sees_suppressed_aggregates_only() -> None:
    at = sign_in(app("public_health"), "official")
    assert not at.exception, at.exception
    at.switch_page("app_pages/uptake.py").run()  # the app opens on the overview
    assert not at.exception, at.exception
    (table,) = at.dataframe
    values = table.value.iloc[:, -1].astype(str).tolist()
    assert any("◆" in v for v in values) or all(
        v == "0" or int(v.replace(",", "")) > 10 for v in values
    )
    for v in values:
        if "◆" not in v:
            assert not 1 <= int(v.replace(",", "")) <= 10


@pytest.mark.security
@pytest.mark.usefixtures("env")
def test_an_official_sees_dongs_for_the_whole_period_by_name() -> None:
    at = sign_in(app("public_health"), "official")
    at.switch_page("app_pages/uptake.py").run()  # the app opens on its overview
    at.radio(key="uptake_view.ko").set_value("dong").run()
    assert not at.exception, at.exception
    (table,) = at.dataframe
    names = set(table.value.iloc[:, 1].astype(str))
    boundaries = ROOT / "lakehouse/reference/gwangju/dongs.geojson"
    listed = {f["properties"]["name"] for f in json.loads(boundaries.read_text())["features"]}
    assert len(names & listed) > 10  # named from the boundaries, not codes
    assert not any(n.isdigit() for n in names)
    for v in table.value.iloc[:, -1].astype(str):
        if "◆" not in v:
            assert not 1 <= int(v.replace(",", "")) <= 10
    assert "전체 기간" in texts(at)


def test_korean_and_english_formats() -> None:
    from datetime import UTC, date, datetime

    from apps.common.i18n import day, moment, number

    assert day(date(2025, 3, 4), "ko") == "2025년 3월 4일"
    assert day(date(2025, 3, 4), "en") == "4 Mar 2025"
    assert moment(datetime(2025, 12, 31, 9, 5), "ko") == "2025년 12월 31일 09:05"
    assert moment(datetime(2025, 12, 31, 15, 5, tzinfo=UTC), "en") == "1 Jan 2026 00:05"
    assert number(1234567) == "1,234,567" and number(None) == "–" and number(2.345, 1) == "2.3"
    assert t("layout.signed_in_as", "ko", name="김", role="시민") == "김 (시민) 님으로 로그인됨"
    with pytest.raises(KeyError):
        t("no.such.message", "ko")


@pytest.mark.security
@pytest.mark.usefixtures("env")
def test_injection_in_every_free_text_input_is_refused_or_inert(platform_lake: Lake) -> None:
    attacks = ("' OR '1'='1", "Cx'; DROP TABLE ops.audit_log; --", "<script>alert(1)</script>")
    doctor = sign_in(app("clinician"), "dr.kim")
    doctor.text_input(key="wl_inst").input("' OR '1").run()  # the worklist's institution filter
    assert not doctor.exception
    assert t("triage.worklist.empty", "ko") in [e.value for e in doctor.info]
    doctor.switch_page("app_pages/patient.py").run()

    def submit(form: str) -> None:
        next(b for b in doctor.button if b.proto.form_id == form).click().run()

    for attack in attacks:
        doctor.text_input(key="patient_key_input").input(attack)
        submit("patient_open")  # open the record
        assert [e.value for e in doctor.error] == [t("refusal.not_a_key", "ko")]
        assert not doctor.dataframe
        doctor.text_input(key="patient_code").input(attack)
        submit("patient_share")  # open with a share code
        assert [e.value for e in doctor.error] == [t("refusal.share_unknown", "ko")]
        doctor.text_input(key="patient_find_name_in").input(attack)  # find by name
        doctor.date_input(key="patient_find_birth").set_value(date(1950, 1, 1))
        submit("patient_find_name")
        assert t("clinician.find.none", "ko") in [e.value for e in doctor.info]
        assert not doctor.error
    refused = platform_lake.frame(
        "ops.audit_log", (pl.col("account") == "dr.kim") & (pl.col("outcome") == "denied")
    )
    assert refused.height >= 2 * len(attacks)
    assert refused["subject_key"].is_null().all()  # no attack string reached a key column
    admin = sign_in(app("admin"), "admin")
    for attack in attacks:
        admin.text_input(key="audit_account").input(attack).run()
        assert not admin.exception
        assert t("admin.audit.none", "ko") in [e.value for e in admin.info]
    assert platform_lake.frame("ops.audit_log").height > 0  # the log is still there


@pytest.mark.usefixtures("env")
def test_large_text_mode_enlarges_every_page() -> None:
    larger = f"font-size: {PAGE_PX[True]}px"
    at = timeline(sign_in(app("citizen"), "alice"))
    assert not any(larger in str(h.proto) for h in at.get("html"))
    at.toggle(key="large_text").set_value(True).run()
    assert any(larger in str(h.proto) for h in at.get("html"))
