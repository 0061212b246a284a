"""The clinician triage app's logic with Streamlit's AppTest on the built demo city: the worklist
in priority order with counts per status, the viewer with its findings, the synthetic-data label
and a decision that lands in ``ops.triage_events``, a foreign study refused, remote reading from
request to reply, the turnaround page, and the model card from the models folder in use."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from apps.common import cache
from apps.common.i18n import Lang, t
from lakehouse import accounts, delta, identity
from models.runtime.registry import registry
from models.runtime.services import lookup
from tests.apps.signed import follow_link
from tests.apps.triage_cast import triage_cast
from tests.conftest import City
from tests.models.runtime.test_registry import models_with_cards
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "demo-password-3"


@pytest.fixture(scope="module")
def cast(platform_lake: Lake) -> dict[str, Any]:
    return dict(triage_cast(platform_lake))


@pytest.fixture(scope="module", autouse=True)
def env(
    platform_lake: Lake, cast: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    folder = tmp_path_factory.mktemp("clinician_accounts")
    hashed = accounts.hash_password(PASSWORD)
    roster = {
        a.name: a
        for a in (
            accounts.Account(
                "dr.kim", "clinician", "김의사", institution=cast["clinic"], password_hash=hashed
            ),
            accounts.Account(
                "dr.reader",
                "clinician",
                "판독의",
                institution=cast["hospital"],
                password_hash=hashed,
            ),
            accounts.Account("admin", "admin", "운영자", password_hash=hashed),
        )
    }
    with pytest.MonkeyPatch.context() as patch, platform_lake.active():
        patch.setenv("GJH_ACCOUNTS", str(accounts.save(roster, folder / "accounts.json")))
        patch.setenv("GJH_SESSION_KEY", "ef" * 32)
        cache.clear()
        yield


def signed_in(
    account: str,
    app: str = "clinician",
    query: dict[str, str] | None = None,
    password: str = PASSWORD,
) -> AppTest:
    """The app signed in as ``account``, opened at an address with ``query``."""
    at = AppTest.from_file(str(ROOT / "apps" / app / "streamlit_app.py"), default_timeout=90)
    at.query_params.update(query or {})
    at.run()
    at.text_input(key="sign_in_name").input(account)
    at.text_input(key="sign_in_password").input(password)
    at.button[0].click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [e.value for e in (*at.title, *at.header, *at.subheader, *at.markdown, *at.caption)]
    parts += [e.value for e in (*at.error, *at.warning, *at.info, *at.success)]
    parts += [getattr(e, "value", "") for e in at.get("text")]
    return "\n".join(str(p) for p in parts)


def open_top(at: AppTest) -> str:
    uid = str(at.selectbox(key="wl_pick").value)
    open_picked(at)
    return uid


def open_picked(at: AppTest) -> None:
    """The worklist's open link followed: the viewer on the picked study."""
    follow_link(at, t("triage.worklist.open"), "app_pages/viewer.py").run()
    assert not at.exception, [e.value for e in at.exception]


def test_the_worklist_lists_studies_by_priority_with_counts_per_status(
    platform_lake: Lake, cast: dict[str, Any]
) -> None:
    at = signed_in("dr.kim")
    options = at.selectbox(key="wl_pick").options
    priorities = [float(o.split(" · ")[1]) for o in options]
    assert priorities == sorted(priorities, reverse=True)
    metrics = {m.label: m.value for m in at.metric}
    studies = platform_lake.frame("ai.findings", pl.col("institution") == cast["clinic"])
    assert (
        sum(int(v.replace(",", "")) for v in metrics.values())
        == studies["study_instance_uid"].n_unique()
    )
    assert "합성 데이터" in texts(at)


def test_the_worklist_opens_the_picked_study_by_a_link_that_the_viewer_keeps(
    platform_lake: Lake,
) -> None:
    # A link, not a button whose fragment run switches page: the worklist refreshes every
    # minute, and a refresh tick that reaches the server after the viewer's run began blanks
    # the viewer (seen with forty people at once at the city; apps/clinician/app_pages/
    # worklist.py). Following a link, the browser stops the ticks before it changes page.
    at = signed_in("dr.kim")
    label = t("triage.worklist.open")
    assert not [b for b in at.button if b.label == label], "no button switches page"
    at.selectbox(key="wl_pick").select_index(1).run()  # the second study, not the top one
    uid = str(at.selectbox(key="wl_pick").value)
    link = next(e.proto for e in at.get("page_link") if e.proto.label == label)
    assert link.query_string == f"study={uid}"
    open_picked(at)
    assert at.session_state["study"] == uid
    header = texts(at)
    # Back on the worklist, then the viewer from the sidebar (no query): the same study.
    at.switch_page("app_pages/worklist.py").run()
    at.query_params.clear()
    at.switch_page("app_pages/viewer.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["study"] == uid
    assert t("triage.viewer.none") not in texts(at)
    assert texts(at).splitlines()[:3] == header.splitlines()[:3]


def test_opening_the_top_study_shows_its_findings_and_the_reference_model_label(
    platform_lake: Lake,
) -> None:
    at = signed_in("dr.kim")
    uid = open_top(at)
    page = texts(at)
    assert "참고 모델: 합성 데이터로 학습 — 진료용이 아님" in page
    assert "점수" in page or "측정" in page or "AI 분석 실패" in page
    assert at.get("plotly_chart"), "the image, waveform or mammogram is drawn"
    events = platform_lake.frame("ops.triage_events", pl.col("study_instance_uid") == uid)
    assert events["decision"].to_list()[:1] == ["review"]
    audit = platform_lake.frame(
        "ops.audit_log", (pl.col("account") == "dr.kim") & (pl.col("action") == "read:study")
    )
    assert audit.height >= 1


def trackings(at: AppTest) -> list[str]:
    """The findings the viewer offers a decision on, by their decision control's key."""
    prefix = "decide_decision_"
    return [r.key.removeprefix(prefix) for r in at.radio if r.key and r.key.startswith(prefix)]


def submit(at: AppTest, form: str) -> None:
    next(b for b in at.button if b.proto.form_id == form).click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]


def test_a_decision_from_the_viewer_is_appended_and_shown(platform_lake: Lake) -> None:
    at = signed_in("dr.kim")
    uid = open_top(at)
    tracking = trackings(at)[0]
    at.radio(key=f"decide_decision_{tracking}").set_value("rejected")
    at.run()
    at.selectbox(key=f"decide_reason_{tracking}_rejected").set_value("artefact")
    at.text_area(key=f"decide_note_{tracking}").input("<b>움직임 인공물</b>")
    submit = next(b for b in at.button if b.proto.form_id == f"decide_{tracking}")
    submit.click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("기각" in s.value for s in at.success)
    events = platform_lake.frame(
        "ops.triage_events",
        (pl.col("tracking_uid") == tracking) & (pl.col("decision") != "review"),
    )
    assert events.select("account", "decision", "reason_code", "note").rows()[-1] == (
        "dr.kim",
        "rejected",
        "artefact",
        "<b>움직임 인공물</b>",
    )
    assert platform_lake.frame("ai.findings", pl.col("tracking_uid") == tracking)[
        "verification"
    ].to_list() == ["rejected"]
    assert uid in platform_lake.frame("ops.triage_events")["study_instance_uid"].to_list()


def test_a_study_of_another_institution_is_refused_in_the_viewer(
    platform_lake: Lake, cast: dict[str, Any]
) -> None:
    at = signed_in("dr.kim")
    at.session_state["study"] = cast["foreign"]
    at.switch_page("app_pages/viewer.py")
    at.run()
    assert [e.value for e in at.error] == ["접근 권한이 없습니다."] or any(
        "권한" in e.value for e in at.error
    )
    assert not at.get("plotly_chart")
    refused = platform_lake.frame(
        "ops.audit_log",
        (pl.col("account") == "dr.kim")
        & (pl.col("action") == "read:study")
        & (pl.col("outcome") == "denied"),
    )
    assert refused.height >= 1


def test_a_remote_reading_goes_to_the_hospital_and_its_reply_comes_back(
    platform_lake: Lake, cast: dict[str, Any]
) -> None:
    clinic = signed_in("dr.kim")
    uid = open_top(clinic)
    clinic.selectbox(key="reading_hospital").set_value(cast["hospital"])
    clinic.text_area(key="reading_question").input("판독 부탁드립니다")
    next(b for b in clinic.button if b.proto.form_id == "reading_ask").click()
    clinic.run()
    assert any("의뢰했습니다" in s.value for s in clinic.success)

    reader = signed_in("dr.reader")
    reader.selectbox(key="wl_pick").set_value(uid).run()  # on the hospital's worklist
    open_picked(reader)
    assert not reader.error, [e.value for e in reader.error]
    assert "원격 판독 의뢰" in texts(reader)  # the basis it is seen on
    reader.text_area(key="reading_report").input("우하엽 결절, 추적 CT 권고")
    assert reader.radio(key="reading_decision").value is None  # the reader chooses, always
    reader.radio(key="reading_decision").set_value("accepted")
    next(b for b in reader.button if b.proto.form_id == "reading_reply").click()
    reader.run()
    assert any("회신했습니다" in s.value for s in reader.success)

    clinic.switch_page("app_pages/readings.py")
    clinic.run()
    assert not clinic.exception, [e.value for e in clinic.exception]
    tables = "\n".join(d.value.to_string() for d in clinic.dataframe)
    assert "우하엽 결절, 추적 CT 권고" in tables


def test_the_turnaround_page_draws_the_service_figures() -> None:
    at = signed_in("dr.kim")
    at.switch_page("app_pages/turnaround.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == 3
    assert at.selectbox(key="stats_service.ko").options  # keyed: one per language
    # The page says what its figures measure: from the study's arrival, not its acquisition.
    assert t("triage.stats.measures", "ko") in [c.value for c in at.caption]
    (table,) = at.dataframe
    assert {"도착→AI 분석", "도착→첫 판단"} <= set(table.value.columns)


def test_the_admin_sees_the_city_wide_model_monitoring() -> None:
    at = signed_in("admin", "admin")
    at.switch_page("app_pages/monitoring.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == 3


@pytest.mark.security
def test_markup_in_a_clinics_dicom_header_is_shown_as_text(
    platform_lake: Lake, cast: dict[str, Any]
) -> None:
    hostile = "[병원](http://evil.example) <img src=x onerror=alert(1)>"
    studies = platform_lake.frame("silver.imaging_studies", pl.col("institution") == cast["clinic"])
    uid = studies.sort("study_instance_uid")["study_instance_uid"][0]
    row = studies.filter(pl.col("study_instance_uid") == uid).with_columns(
        pl.lit(hostile).alias("institution_name"), pl.lit(hostile).alias("study_description")
    )
    delta.merge("silver.imaging_studies", row)
    cache.clear()
    at = signed_in("dr.kim")
    at.session_state["study"] = uid
    at.switch_page("app_pages/viewer.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = [str(getattr(e, "value", "")) for e in at.get("text")]
    assert any(hostile in line for line in shown)  # as typed, in a text element
    rendered = [e.value for e in (*at.markdown, *at.caption, *at.title, *at.subheader)]
    assert not any("evil.example" in str(m) or "onerror" in str(m) for m in rendered)


def test_the_viewer_shows_the_card_of_the_models_folder_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = "A deployment's own model card, from GJH_MODELS_DIR"
    monkeypatch.setenv("GJH_MODELS_DIR", str(models_with_cards(tmp_path, own)))
    at = signed_in("dr.kim")
    open_top(at)
    cards = [e for e in at.expander if e.label == "모델 카드"]
    assert cards, "the viewer offers the model card"
    shown = [str(m.value) for e in cards for m in e.markdown]
    assert shown and all(text == own for text in shown)


def test_no_decision_is_preselected_and_saving_without_one_is_refused(
    platform_lake: Lake,
) -> None:
    at = signed_in("dr.kim")
    open_top(at)
    tracking = trackings(at)[0]
    assert all(at.radio(key=f"decide_decision_{k}").value is None for k in trackings(at))
    reason = at.selectbox(key=f"decide_reason_{tracking}_None")
    assert reason.value is None and reason.disabled
    before = platform_lake.frame("ops.triage_events", pl.col("decision") != "review").height

    submit(at, f"decide_{tracking}")  # one click on "save", nothing chosen
    assert [e.value for e in at.error] == [t("triage.decide.choose", "ko")]
    at.radio(key=f"decide_decision_{tracking}").set_value("accepted")
    at.run()
    assert at.selectbox(key=f"decide_reason_{tracking}_accepted").value is None
    submit(at, f"decide_{tracking}")  # a decision, but no reason
    assert [e.value for e in at.error] == [t("triage.decide.choose_reason", "ko")]
    assert not at.success
    after = platform_lake.frame("ops.triage_events", pl.col("decision") != "review").height
    assert after == before


def stranger(lake: Lake, clinic: str) -> str:
    """A citizen the clinic has never seen: no visit there, no study from it."""
    seen = set(lake.frame("gold.citizen_timeline", pl.col("institution") == clinic)["citizen_key"])
    seen |= set(
        lake.frame("silver.imaging_studies", pl.col("institution") == clinic)["patient_key"]
    )
    keys = lake.frame("silver.citizens")["citizen_key"].sort().to_list()
    return next(k for k in keys if k not in seen)


HANGUL = re.compile(r"[\uac00-\ud7a3]")


@pytest.mark.security
@pytest.mark.parametrize("language", ["ko", "en"])
def test_an_emergency_access_without_a_reason_is_refused_once_in_the_sessions_language(
    platform_lake: Lake, cast: dict[str, Any], language: Lang
) -> None:
    at = signed_in("dr.kim")
    at.radio(key="lang").set_value(language)
    at.switch_page("app_pages/patient.py")
    at.run()
    at.text_input(key="patient_key_input").input(stranger(platform_lake, cast["clinic"]))
    submit(at, "patient_open")
    assert [e.value for e in at.error] == [t("refusal.no_basis", language)]

    submit(at, "patient_emergency")  # no reason given
    shown = [e.value for e in at.error]
    assert shown == [t("refusal.reason_required", language)]
    if language == "ko":
        assert not re.search("[A-Za-z]", shown[0]), shown  # no English inside the Korean
    else:
        assert not HANGUL.search(shown[0]), shown
    assert not at.get("text")  # no record shown


def test_a_patient_found_by_name_and_birth_date_opens_under_emergency_access_without_retyping(
    platform_lake: Lake, cast: dict[str, Any], demo_city: City
) -> None:
    key = stranger(platform_lake, cast["clinic"])
    vault = platform_lake.frame("vault.identities", pl.col("citizen_key") == key).row(0, named=True)
    with platform_lake.active():
        name = identity.decrypt(vault["name_enc"])
        born = datetime.strptime(identity.decrypt(vault["birth_date_enc"]), "%Y%m%d").date()
    at = signed_in("dr.kim")
    at.switch_page("app_pages/patient.py")
    at.run()
    at.text_input(key="patient_find_name_in").input(name)
    at.date_input(key="patient_find_birth").set_value(born)
    submit(at, "patient_find_name")
    listed = [str(getattr(e, "value", "")) for e in at.get("text")]
    assert any(line.startswith(key) for line in listed), listed  # the full key, age and sex
    assert not any(name in line for line in listed)  # the name is never shown back

    at.button(key=f"patient_use_{key}").click()
    at.run()
    assert at.text_input(key="patient_key_input").value == key  # not retyped
    assert [e.value for e in at.error] == [t("refusal.no_basis", "ko")]
    at.text_area(key="patient_reason").input("의식 저하로 응급실 내원, 복용 약 확인 필요")
    submit(at, "patient_emergency")
    assert not at.error, [e.value for e in at.error]
    assert t("clinician.patient.basis", "ko", basis=t("basis.emergency", "ko")) in [
        c.value for c in at.caption
    ]
    audit = platform_lake.frame("ops.audit_log", pl.col("account") == "dr.kim")
    assert {"lookup:patient", "emergency:open", "read:timeline"} <= set(audit["action"])
    found = audit.filter(pl.col("action") == "lookup:patient")
    assert key in found["subject_key"].to_list()
    assert not any(name in (d or "") for d in found["detail"].to_list())


@pytest.mark.parametrize("language", ["ko", "en"])
def test_earlier_studies_name_their_services_and_findings(
    platform_lake: Lake, cast: dict[str, Any], language: Lang
) -> None:
    findings = platform_lake.frame("ai.findings")
    twice = findings.group_by("patient_key").agg(pl.col("study_instance_uid").unique())
    mine = set(findings.filter(pl.col("institution") == cast["clinic"])["study_instance_uid"])
    # A patient with several studies, all sent by this clinic: its own records, which the
    # context shows whatever else the clinician may see (issue 19's institution rule).
    patient, uid = next(
        (p, sorted(studies)[0])
        for p, studies in twice.sort("patient_key").iter_rows()
        if len(studies) > 1 and set(studies) <= mine
    )
    at = signed_in("dr.kim")
    at.radio(key="lang").set_value(language)
    at.session_state["study"] = uid
    at.switch_page("app_pages/viewer.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]

    def named(service: str, code: str) -> str:
        config = registry()[service].config
        finding = config.finding_ko if language == "ko" else config.finding_en
        return f"{lookup(service).name(language)} · {finding}"

    others = platform_lake.frame(
        "silver.imaging_studies",
        (pl.col("patient_key") == patient) & (pl.col("study_instance_uid") != uid),
    )["study_instance_uid"].to_list()
    expected = {
        ", ".join(
            named(s, c)
            for s, c in sorted(
                set(
                    findings.filter(pl.col("study_instance_uid") == other)
                    .select("service", "finding_code")
                    .rows()
                )
            )
        )
        for other in others
    }
    column = t("triage.viewer.findings", language)
    (priors,) = [d.value for d in at.dataframe if column in d.value.columns]
    assert set(priors[column].fillna("").tolist()) == expected
    assert any(expected)


@pytest.mark.security
def test_a_registration_number_finds_the_patient_masked_and_unlogged(
    platform_lake: Lake, demo_city: City
) -> None:
    resident = demo_city.table("registry/citizens", "residents_").sort("RRN").row(0, named=True)
    at = signed_in("dr.kim")
    at.switch_page("app_pages/patient.py")
    at.run()
    field = at.text_input(key="patient_find_rrn_in")
    assert field.proto.type == field.proto.PASSWORD  # masked on the screen
    field.input(resident["RRN"])
    submit(at, "patient_find_rrn")
    listed = [str(getattr(e, "value", "")) for e in at.get("text")]
    assert len(listed) == 1 and listed[0].startswith("C")  # the key, age and sex
    assert resident["NAME"] not in listed[0]
    audit = platform_lake.frame("ops.audit_log", pl.col("action") == "lookup:patient")
    digits = resident["RRN"].replace("-", "")
    assert not any(digits in (d or "") for d in audit["detail"].to_list())
