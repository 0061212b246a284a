"""Provider sign-ins in the account file: matched by issuer and subject together (never by
e-mail or by a subject alone), refused when unknown or disabled, and every attempt recorded in
``ops.sign_ins``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from lakehouse import accounts
from lakehouse import read as lake

CITY = "https://login.gwangju.test/realms/city"
HOSPITAL = "https://sso.hospital.test"


@pytest.fixture
def roster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("LAKEHOUSE_URI", str(tmp_path / "lakehouse"))
    file = tmp_path / "accounts.json"
    accounts.save(
        {
            "official": accounts.Account(
                "official", "official", oidc_issuer=CITY, oidc_subject="u-1"
            ),
            "dr.kim": accounts.Account(
                "dr.kim",
                "clinician",
                institution="12345678",
                oidc_issuer=HOSPITAL,
                oidc_subject="u-1",
            ),
            "gone": accounts.Account(
                "gone", "admin", oidc_issuer=CITY, oidc_subject="u-2", disabled=True
            ),
        },
        file,
    )
    monkeypatch.setenv("GJH_ACCOUNTS", str(file))
    yield file


def outcomes() -> list[tuple[str, str]]:
    rows = lake.scan(accounts.SIGN_INS).select("account", "outcome").collect()
    return [tuple(r) for r in rows.sort("account").iter_rows()]


@pytest.mark.security
@pytest.mark.usefixtures("roster")
def test_the_same_subject_at_two_providers_is_two_people() -> None:
    assert accounts.by_subject(CITY, "u-1").name == "official"  # type: ignore[union-attr]
    assert accounts.by_subject(HOSPITAL, "u-1").name == "dr.kim"  # type: ignore[union-attr]
    assert accounts.by_subject("https://elsewhere.test", "u-1") is None
    assert accounts.by_subject(CITY, "") is None
    assert accounts.by_subject(CITY, "official") is None  # an account's name is no subject


@pytest.mark.security
@pytest.mark.usefixtures("roster")
def test_provider_sign_ins_are_refused_unless_listed_and_enabled_and_all_recorded() -> None:
    assert accounts.provider_sign_in(HOSPITAL, "u-1", "clinician 10.0.0.1").name == "dr.kim"
    with pytest.raises(accounts.SignInError, match="unknown_account"):
        accounts.provider_sign_in(HOSPITAL, "u-9", "clinician 10.0.0.2")
    with pytest.raises(accounts.SignInError, match="disabled"):
        accounts.provider_sign_in(CITY, "u-2", "admin 10.0.0.3")
    assert outcomes() == [
        ("dr.kim", "ok"),
        ("gone", "disabled"),
        (f"u-9@{HOSPITAL}", "unknown_account"),
    ]
    recorded = lake.scan(accounts.SIGN_INS).collect()
    assert recorded.filter(pl.col("account") == "dr.kim")["origin"].item() == "clinician 10.0.0.1"


def test_an_account_file_that_maps_one_subject_twice_or_half_is_rejected(tmp_path: Path) -> None:
    file = tmp_path / "accounts.json"
    twice = {
        name: accounts.Account(name, "official", oidc_issuer=CITY, oidc_subject="u-1")
        for name in ("a", "b")
    }
    accounts.save(twice, file)
    with pytest.raises(ValueError, match="the same provider subject"):
        accounts.load(file)
    half = {"a": accounts.Account("a", "official", oidc_subject="u-1")}
    accounts.save(half, tmp_path / "half.json")
    with pytest.raises(ValueError, match="go together"):
        accounts.load(tmp_path / "half.json")
