"""The citizen's "my images" page with Streamlit's AppTest on the built demo city: the citizen's
own studies drawn with the shared viewer, each AI finding in plain words under the reference
model's label, the DICOM zip made (and audited) only when downloaded, a second opinion asked of
a hospital through the form and its reply shown; another citizen's study named by a link or a
tampered session is refused and the attempt audited."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from apps.common import cache
from apps.common.i18n import t
from lakehouse import accounts
from lakehouse.access import Access, Principal
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "demo-password-5"
PAGE = "app_pages/images.py"


@pytest.fixture(scope="module")
def cast(platform_lake: Lake) -> dict[str, Any]:
    """Alice, with the most scored studies; Bob, another citizen with a study; a reading
    hospital that did not take Alice's newest study."""
    studies = platform_lake.frame("silver.imaging_studies", pl.col("citizen_key").is_not_null())
    scored = platform_lake.frame("ai.findings", pl.col("status") == "scored")
    mine = studies.filter(
        pl.col("study_instance_uid").is_in(scored["study_instance_uid"].implode())
    )
    counts = mine.group_by("citizen_key").len().sort("len", "citizen_key", descending=True)
    alice, bob = counts["citizen_key"][0], counts["citizen_key"][1]
    newest = studies.filter(pl.col("citizen_key") == alice).sort(
        "study_datetime", descending=True, nulls_last=True
    )
    readers = platform_lake.frame("silver.institutions", pl.col("class_code").is_in(["01", "11"]))
    hospital = next(h for h in readers["ykiho"].sort() if h != newest["institution"][0])
    return {
        "alice": alice,
        "bob": bob,
        "newest": newest["study_instance_uid"][0],
        "count": newest.height,
        "bobs": studies.filter(pl.col("citizen_key") == bob)["study_instance_uid"][0],
        "hospital": hospital,
    }


@pytest.fixture(scope="module", autouse=True)
def env(
    platform_lake: Lake, cast: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    folder = tmp_path_factory.mktemp("images_accounts")
    hashed = accounts.hash_password(PASSWORD)
    roster = {
        a.name: a
        for a in (
            accounts.Account("alice", "citizen", citizen_key=cast["alice"], password_hash=hashed),
            accounts.Account("bob", "citizen", citizen_key=cast["bob"], password_hash=hashed),
        )
    }
    with pytest.MonkeyPatch.context() as patch, platform_lake.active():
        patch.setenv("GJH_ACCOUNTS", str(accounts.save(roster, folder / "accounts.json")))
        patch.setenv("GJH_SESSION_KEY", "5a" * 32)
        cache.clear()
        yield


def images_page(account: str = "alice", study: str | None = None) -> AppTest:
    """Signed in as ``account`` on the images page (through a link naming ``study``)."""
    at = AppTest.from_file(str(ROOT / "apps/citizen/streamlit_app.py"), default_timeout=90)
    at.run()
    at.text_input(key="sign_in_name").input(account)
    at.text_input(key="sign_in_password").input(PASSWORD)
    at.button[0].click()
    at.run()
    if study:
        at.query_params["study"] = study
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [e.value for e in (*at.title, *at.header, *at.subheader, *at.markdown, *at.caption)]
    parts += [e.value for e in (*at.error, *at.warning, *at.info, *at.success)]
    parts += [getattr(e, "value", "") for e in at.get("text")]
    return "\n".join(str(p) for p in parts)


def denied(lake: Lake, subject: str) -> int:
    where = (pl.col("outcome") == "denied") & (pl.col("subject_key") == subject)
    return lake.frame("ops.audit_log", where & (pl.col("action") == "read:my_study")).height


def test_my_newest_study_is_drawn_with_its_findings_in_plain_words(
    platform_lake: Lake, cast: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    offered: list[Callable[[], bytes]] = []
    offer = st.download_button

    def recorded(label: str, data: Callable[[], bytes], **options: Any) -> bool:
        offered.append(data)
        return offer(label, data, **options)

    monkeypatch.setattr(st, "download_button", recorded)
    at = images_page()
    shown = texts(at)
    assert t("citizen.images.title", "ko") in shown
    assert len(at.selectbox(key="images_pick.ko").options) == cast["count"]
    assert t("citizen.images.label", "ko") in shown  # the reference model's label
    assert "AI가" in shown and "살펴봅니다" in shown  # what the service looks for
    assert "점수" in shown or "잰 값" in shown  # the result against its threshold
    assert at.get("plotly_chart")  # the viewer's drawing
    reads = platform_lake.frame(
        "ops.audit_log", (pl.col("account") == "alice") & (pl.col("action") == "read:my_study")
    )
    assert reads["subject_key"].to_list()[-1] == cast["alice"]
    # The zip is made, and audited, only when the button is pressed.
    exports = pl.col("action") == "export:study"
    assert platform_lake.frame("ops.audit_log", exports).is_empty()
    data = offered[-1]()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() and all(n.endswith(".dcm") for n in archive.namelist())
    assert platform_lake.frame("ops.audit_log", exports)["subject_key"].to_list() == [cast["alice"]]


@pytest.mark.security
def test_another_citizens_study_by_link_or_tampered_session_is_refused_and_audited(
    platform_lake: Lake, cast: dict[str, Any]
) -> None:
    before = denied(platform_lake, cast["bob"])
    at = images_page(study=cast["bobs"])
    assert t("error.denied", "ko") in texts(at)
    assert denied(platform_lake, cast["bob"]) == before + 1
    at = images_page()
    at.session_state["images_open"] = cast["bobs"]
    at.run()
    assert not at.exception
    assert t("error.denied", "ko") in texts(at)
    assert denied(platform_lake, cast["bob"]) == before + 2
    # Bob's own link to his study opens it for him.
    bob = images_page("bob", study=cast["bobs"])
    assert t("error.denied", "ko") not in texts(bob)


def test_a_second_opinion_is_asked_through_the_form_and_its_reply_shown(
    platform_lake: Lake, cast: dict[str, Any]
) -> None:
    at = images_page()
    at.selectbox(key="images_hospital").select(cast["hospital"])
    at.text_area(key="images_q").input("이 결과가 걱정됩니다. 다른 의견을 부탁드립니다.")
    at.checkbox(key="images_copy").check()
    next(b for b in at.button if b.proto.form_id == "images_ask").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert t("citizen.images.sent", "ko") in texts(at)
    (event,) = platform_lake.frame(
        "ops.reading_requests", pl.col("study_instance_uid") == cast["newest"]
    ).rows(named=True)
    assert (event["basis"], event["actor"], event["to_institution"]) == (
        "citizen_consent",
        "alice",
        cast["hospital"],
    )
    assert event["copy_to"] is not None
    reader = Access(
        Principal("dr.reader", "clinician", "판독의", institution=cast["hospital"], origin="test")
    )
    reader.reply_reading(event["request_id"], "정상 소견입니다.", "rejected")
    again = images_page()
    shown = texts(again)
    assert "정상 소견입니다." in shown
    assert t("citizen.images.reply_decision.rejected", "ko") in shown
    assert t("citizen.images.status.replied", "ko") in shown
