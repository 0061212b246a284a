"""The admin's access-log page (Streamlit's AppTest on a lakehouse holding just the log): actions
as words in the session's language with their codes in the column's help and the CSV export,
accounts by the names the account file gives them, and an emergency access's reason right after
its action."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from apps.common.i18n import LANGS, Lang, messages, t
from lakehouse import accounts, audit
from lakehouse.access import Access, AccessDeniedError, Principal
from lakehouse.config import environment
from tests.apps.signed import signed_in

pytestmark = [pytest.mark.integration, pytest.mark.security]
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "demo-password-4"
CITIZEN = "C" + "0" * 32  # the shape of a citizen key (lakehouse.pseudonym)
REASON = "Unconscious on arrival, record needed for treatment"
UNKNOWN = "future:action"  # a code the catalogue does not know yet
HANGUL = re.compile("[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A lakehouse whose access log holds a clinician's read and emergency access, a citizen's
    share code, a pipeline's export and an action the catalogue does not know; the accounts
    file names the staff."""
    folder = tmp_path_factory.mktemp("audit_page")
    hashed = accounts.hash_password(PASSWORD)
    roster = {
        a.name: a
        for a in (
            accounts.Account("admin", "admin", "운영자", password_hash=hashed),
            accounts.Account("dr.park", "clinician", "박의사", institution="12345678"),
            accounts.Account("minji", "citizen", citizen_key=CITIZEN),
        )
    }
    with environment(
        LAKEHOUSE_URI=str(folder / "lakehouse"),
        GJH_SECRETS_DIR=str(folder / "secrets"),
        GJH_ACCOUNTS=str(accounts.save(roster, folder / "accounts.json")),
        GJH_SESSION_KEY="12" * 32,
    ):
        now = datetime.now(UTC)
        audit.append(
            [
                by_doctor(now - timedelta(hours=5), "read:timeline", subject=CITIZEN),
                by_doctor(
                    now - timedelta(hours=4),
                    "emergency:open",
                    "emergency",
                    subject=CITIZEN,
                    emergency=True,
                    detail=REASON,
                ),
                audit.row(
                    now - timedelta(hours=3),
                    "minji",
                    "citizen",
                    "citizen",
                    "share:create",
                    "self",
                    subject=CITIZEN,
                ),
            ]
        )
        audit.record_export("export:research", [CITIZEN], "run-1", "IRB 2025-1")
        refused_at = datetime.now(UTC)
        doctor = Access(
            Principal("dr.park", "clinician", institution="12345678", origin="clinician"),
            clock=lambda: refused_at,
        )
        for refused in (
            lambda: doctor.timeline("C-not-a-key"),  # not_a_key
            lambda: doctor.open_emergency(CITIZEN, "now"),  # reason_required
        ):
            with pytest.raises(AccessDeniedError):
                refused()
        audit.append([by_doctor(datetime.now(UTC), UNKNOWN)])  # the newest entry
        yield


def by_doctor(
    at: datetime, action: str, purpose: str = "institution", **more: Any
) -> dict[str, object]:
    """An access-log entry of the clinician ``dr.park``."""
    return audit.row(
        at, "dr.park", "clinician", "clinician", action, purpose, institution="12345678", **more
    )


def audit_page(language: Lang) -> AppTest:
    """The admin signed in, on the access log, in ``language``."""
    return signed_in("admin", "admin", PASSWORD, language)


@pytest.mark.usefixtures("logged")
@pytest.mark.parametrize("language", LANGS)
def test_actions_and_accounts_read_as_words_with_the_reason_beside_the_action(
    language: Lang,
) -> None:
    at = audit_page(language)
    (table,) = at.dataframe
    shown = table.value.iloc[::-1].reset_index(drop=True)
    action, account, reason = (
        t(f"column.{c}", language) for c in ("action", "account", "detail_reason")
    )
    columns = list(shown.columns)
    assert columns.index(reason) == columns.index(action) + 1  # the reason beside the action
    logged = shown[shown[action] != t("action.read:audit_log", language)]
    assert logged[action].tolist() == [
        t("action.read:timeline", language),
        t("action.emergency:open", language),
        t("action.share:create", language),
        t("action.export:research", language),
        t("action.read:timeline", language),  # refused: not a key
        t("action.emergency:open", language),  # refused: no reason
        UNKNOWN,  # shown as itself, not failing the page
    ]
    assert logged[account].tolist() == [
        "박의사",
        "박의사",
        "minji",  # a citizen's name is the vault's, never the log's
        t("admin.audit.system", language),
        "박의사",
        "박의사",
        "박의사",
    ]
    assert logged[reason].tolist()[1] == REASON
    # The codes as logged are in the Action column's help.
    config = json.loads(table.proto.columns)
    help_text = config[action]["help"]
    for code in ("read:timeline", "emergency:open", "share:create", "export:research", UNKNOWN):
        assert f"`{code}`" in help_text


@pytest.mark.usefixtures("logged")
@pytest.mark.parametrize("language", LANGS)
def test_a_refusal_says_why_in_the_session_language(language: Lang) -> None:
    """A refusal's reason is its code named by the catalogue: no English sentence on a Korean
    screen, no Hangul on an English one; the log's English detail stays in the export."""
    at = audit_page(language)
    (table,) = at.dataframe
    shown = table.value
    outcome, reason = (t(f"column.{c}", language) for c in ("outcome", "detail_reason"))
    refused = shown[shown[outcome] == t("outcome.denied", language)][reason].tolist()
    assert sorted(refused) == sorted(
        t(f"refused.{code}", language) for code in ("not_a_key", "reason_required")
    )
    for text in refused:
        if language == "ko":
            assert not re.search("[A-Za-z]", text), text
        else:
            assert not HANGUL.search(text), text


@pytest.mark.usefixtures("logged")
def test_the_export_keeps_the_codes_and_ids_as_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    exported: list[str] = []
    offer = st.download_button

    def recorded(label: str, data: str, **options: object) -> bool:
        exported.append(data)  # what the admin downloads
        return offer(label, data, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(st, "download_button", recorded)
    at = audit_page("en")
    (button,) = at.get("download_button")
    assert button.proto.label == t("admin.audit.export", "en")
    csv = exported[-1]  # the last run's, in English
    for logged in (
        "read:timeline",
        "emergency:open",
        UNKNOWN,
        "dr.park",
        "system",
        REASON,
        "not_a_key",
        "reason_required",
        "an emergency access needs a stated reason",
    ):
        assert logged in csv
    assert "박의사" not in csv and t("action.read:timeline", "en") not in csv


@pytest.mark.usefixtures("logged")
def test_a_display_name_finds_its_account() -> None:
    at = audit_page("ko")
    at.text_input(key="audit_account").input("박의사").run()
    (table,) = at.dataframe
    assert set(table.value[t("column.account", "ko")]) == {"박의사"}


def test_every_action_the_platform_logs_has_a_word() -> None:
    """Every action code the access layer and the pipelines write (a quoted ``verb:noun``)
    has its catalogue entry in both languages."""
    codes: set[str] = set()
    for folder in ("lakehouse", "pipelines"):
        for source in (ROOT / folder).rglob("*.py"):
            codes |= set(re.findall(r'"([a-z_]+:[a-z_]+)"', source.read_text(encoding="utf-8")))
    assert {"read:timeline", "share:redeem", "emergency:open", "export:research"} <= codes
    missing = sorted(c for c in codes if f"action.{c}" not in messages())
    assert not missing, missing


def test_every_refusal_the_access_layer_raises_has_a_word() -> None:
    """Every refusal code the access layer gives (``_deny``'s code, positional or named, and
    ``AccessDeniedError``'s) has its catalogue entry in both languages, as the access log's
    reason (``refused.<code>``)."""
    codes = {"denied"}  # what a refusal that names no code is
    for source in (ROOT / "lakehouse" / "access").rglob("*.py"):
        for call in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if not isinstance(call, ast.Call):
                continue
            name = getattr(call.func, "attr", getattr(call.func, "id", ""))
            position = {"_deny": 3, "AccessDeniedError": 1}.get(name)
            if position is None:
                continue
            given = [k.value for k in call.keywords if k.arg == "code"]
            given += call.args[position : position + 1]
            codes |= {
                g.value for g in given if isinstance(g, ast.Constant) and isinstance(g.value, str)
            }
    assert {"role", "not_a_key", "no_basis", "reason_required", "share_unknown"} <= codes
    missing = sorted(c for c in codes if f"refused.{c}" not in messages())
    assert not missing, missing
