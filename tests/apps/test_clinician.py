"""The clinician triage app's logic with Streamlit's AppTest on the built demo city: the worklist
in priority order with counts per status, the viewer with its findings, the synthetic-data label
and a decision that lands in ``ops.triage_events``, a foreign study refused, remote reading from
request to reply, the turnaround page, and the model card from the models folder in use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from apps.common import cache
from lakehouse import accounts, delta
from tests.apps.triage_cast import triage_cast
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


def signed_in(account: str, app: str = "clinician") -> AppTest:
    at = AppTest.from_file(str(ROOT / "apps" / app / "streamlit_app.py"), default_timeout=90)
    at.run()
    at.text_input(key="sign_in_name").input(account)
    at.text_input(key="sign_in_password").input(PASSWORD)
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
    at.button(key="wl_open").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return uid


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


def test_a_decision_from_the_viewer_is_appended_and_shown(platform_lake: Lake) -> None:
    at = signed_in("dr.kim")
    uid = open_top(at)
    reasons = [b.key for b in at.selectbox if b.key and b.key.startswith("decide_reason_")]
    tracking = reasons[0].removeprefix("decide_reason_")
    at.selectbox(key=f"decide_reason_{tracking}").set_value(("rejected", "artefact"))
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
    reader.selectbox(key="wl_pick").set_value(uid)  # on the hospital's worklist
    reader.button(key="wl_open").click()
    reader.run()
    assert not reader.exception, [e.value for e in reader.exception]
    assert not reader.error, [e.value for e in reader.error]
    assert "원격 판독 의뢰" in texts(reader)  # the basis it is seen on
    reader.text_area(key="reading_report").input("우하엽 결절, 추적 CT 권고")
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
