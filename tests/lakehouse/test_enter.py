"""An account at another role's app is refused, and the refusal is in the access log."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse import delta
from lakehouse import read as lake
from lakehouse.access import Access, AccessDeniedError, Principal

pytestmark = pytest.mark.security
KEY = "C" + "a" * 32


@pytest.fixture(autouse=True)
def lakehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_URI", str(tmp_path / "lakehouse"))


@pytest.mark.parametrize(
    ("principal", "app", "role"),
    [
        (Principal("kim", "official", origin="citizen 10.0.0.1"), "citizen", "citizen"),
        (Principal("kim", "official", origin="clinician 10.0.0.1"), "clinician", "clinician"),
        (Principal("minji", "citizen", citizen_key=KEY), "public_health", "official"),
    ],
)
def test_another_roles_app_is_refused_and_audited(
    principal: Principal, app: str, role: str
) -> None:
    with pytest.raises(AccessDeniedError) as refused:
        Access(principal).enter(app, role)  # type: ignore[arg-type]
    assert refused.value.code == "role"
    (row,) = lake.frame("ops.audit_log").iter_rows(named=True)
    assert (row["account"], row["action"], row["outcome"], row["refusal"]) == (
        principal.account,
        "open:app",
        "denied",
        "role",
    )
    assert app in row["detail"]


def test_the_roles_own_app_is_entered_without_a_refusal() -> None:
    Access(Principal("kim", "official")).enter("public_health", "official")
    assert not delta.exists("ops.audit_log")  # nothing refused, nothing read yet
