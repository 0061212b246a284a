"""Sharing with Streamlit's AppTest on the built demo city: the citizen chooses what to share and
for how long and gets a code with its QR code and link, revoke first on the page; the clinician
app redeems the link (``?share=``) once the clinician has signed in and shows only the chosen
kinds; a carer's request waits for the carer's acceptance; "who viewed my record" names each
basis and institution in words."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from apps.common import cache
from apps.common.i18n import t
from lakehouse import accounts
from lakehouse.access import Access, Principal
from tests.apps import test_clinician as clinician_app
from tests.apps.served import app_env
from tests.lakehouse.test_access import consent_states
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.security]
PASSWORD = "demo-password-5"
CODE = re.compile(r"[A-Z2-9]{4}-[A-Z2-9]{4}")


@pytest.fixture(scope="module")
def cast(platform_lake: Lake) -> dict[str, Any]:
    """A linked citizen with medicines and other kinds of records, a clinic they never went
    to, and a second citizen to be their carer."""
    timeline = platform_lake.frame("gold.citizen_timeline")
    linked = consent_states(platform_lake).filter(pl.col("state") == "linked")["citizen_key"]
    mine = timeline.filter(pl.col("citizen_key").is_in(linked.implode()))
    counts = mine.group_by("citizen_key").agg(
        pl.len(), pl.col("kind").is_in(["prescription", "dispensing"]).sum().alias("medicines")
    )
    ranked = counts.filter(pl.col("medicines").is_between(1, pl.col("len") - 1)).sort(
        "len", "citizen_key", descending=[True, False]
    )
    citizen, carer = ranked["citizen_key"][0], ranked["citizen_key"][1]
    near = set(timeline.filter(pl.col("citizen_key") == citizen)["institution"].drop_nulls())
    clinics = platform_lake.frame("silver.institutions")["ykiho"].sort().to_list()
    return {
        "citizen": citizen,
        "carer": carer,
        "stranger": next(c for c in clinics if c not in near),
        "timeline": timeline.filter(pl.col("citizen_key") == citizen),
    }


@pytest.fixture(scope="module", autouse=True)
def env(
    platform_lake: Lake, cast: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    hashed = accounts.hash_password(PASSWORD)
    roster = (
        accounts.Account("minji", "citizen", citizen_key=cast["citizen"], password_hash=hashed),
        accounts.Account("jisu", "citizen", citizen_key=cast["carer"], password_hash=hashed),
        accounts.Account(
            "dr.park", "clinician", "박의사", institution=cast["stranger"], password_hash=hashed
        ),
    )
    served = app_env(platform_lake, roster, tmp_path_factory.mktemp("share_accounts"), "5a" * 32)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**served, "GJH_CLINICIAN_URL": "https://clinician.example.kr/"}.items():
            patch.setenv(name, value)
        cache.clear()
        yield


def signed_in(account: str, app: str, query: dict[str, str] | None = None) -> AppTest:
    return clinician_app.signed_in(account, app, query, PASSWORD)


def page(at: AppTest, path: str) -> AppTest:
    at.switch_page(path)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_scoped_share_by_qr_link_opens_only_the_chosen_kinds_after_sign_in(
    cast: dict[str, Any], platform_lake: Lake
) -> None:
    citizen = page(signed_in("minji", "citizen"), "app_pages/share.py")
    citizen.pills[0].set_value(["medicines"])
    citizen.radio(key="share_minutes").set_value(30)
    next(b for b in citizen.button if b.label == t("citizen.share.create", "ko")).click()
    citizen.run()
    assert not citizen.exception, [e.value for e in citizen.exception]
    shown = clinician_app.texts(citizen)
    code = CODE.search(shown)
    assert code is not None
    link = f"https://clinician.example.kr/patient?share={code.group(0)}"
    assert link in shown and citizen.image  # the link, and its QR code drawn
    # Revoke comes before any form: the first button on the page.
    assert citizen.main.button[0].label == t("access.share.revoke_now", "ko")

    # The clinician follows the link: signs in, and the patient page redeems it.
    doctor = signed_in("dr.park", "clinician", {"share": code.group(0)})
    doctor = page(doctor, "app_pages/patient.py")
    assert t("clinician.patient.basis", "ko", basis=t("basis.share", "ko")) in clinician_app.texts(
        doctor
    )
    assert "share" not in doctor.query_params  # taken out of the address once redeemed
    log = platform_lake.frame(
        "ops.audit_log", (pl.col("account") == "dr.park") & (pl.col("action") == "read:timeline")
    )
    medicines = cast["timeline"].filter(pl.col("kind").is_in(["prescription", "dispensing"]))
    assert log["purpose"].to_list() == ["share"] and log["rows"].to_list() == [medicines.height]

    # Revoked at once: the next run refuses the clinician.
    citizen.main.button[0].click()
    citizen.run()
    doctor.run()
    assert t("refusal.no_basis", "ko") in clinician_app.texts(doctor)


def test_a_carer_accepts_before_reading_and_the_parent_sees_it_in_words(
    cast: dict[str, Any],
) -> None:
    parent = page(signed_in("minji", "citizen"), "app_pages/share.py")
    parent.text_input(key="share_carer").input("jisu")
    next(b for b in parent.button if b.label == t("citizen.share.proxy_grant", "ko")).click()
    parent.run()
    assert t("citizen.share.proxy_done", "ko", account="jisu") in clinician_app.texts(parent)
    as_carer = Access(Principal("jisu", "citizen", citizen_key=cast["carer"], origin="test"))
    assert as_carer.proxied() == []  # nothing until jisu accepts
    carer = page(signed_in("jisu", "citizen"), "app_pages/share.py")
    assert t("access.carer.invited_title", "ko") in clinician_app.texts(carer)
    next(b for b in carer.button if b.label == t("access.carer.accept", "ko")).click()
    carer.run()
    assert as_carer.proxied() == [cast["citizen"]]
    as_carer.timeline(cast["citizen"])
    parent = page(parent, "app_pages/views.py")
    table = parent.dataframe[0].value
    assert t("basis.proxy", "ko") in set(table[t("column.purpose", "ko")].to_list())
