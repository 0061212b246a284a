"""The citizen key is HMAC-SHA256 of the registration number's digits under the deployment's key:
exactly the standard construction, whatever the punctuation, and nothing without a key."""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from lakehouse import pseudonym
from lakehouse.config import MissingKeyError

pytestmark = pytest.mark.security


@pytest.fixture
def key(request: pytest.FixtureRequest) -> Iterator[bytes]:
    """A fresh random key of the requested length, set for the test and then restored."""
    value = secrets.token_bytes(request.param)
    before = os.environ.get("GJH_PSEUDONYM_KEY")
    os.environ["GJH_PSEUDONYM_KEY"] = value.hex()
    pseudonym.reset_key_cache()
    yield value
    if before is None:
        del os.environ["GJH_PSEUDONYM_KEY"]
    else:
        os.environ["GJH_PSEUDONYM_KEY"] = before
    pseudonym.reset_key_cache()


def _reference(key: bytes, digits: str) -> str:
    return "C" + hmac.digest(key, digits.encode("ascii"), "sha256").hex()[:32]


@pytest.mark.parametrize("key", [16, 32, 64, 65, 100], indirect=True)
def test_keys_equal_the_standard_library_hmac(key: bytes) -> None:
    """Key lengths below, at and above SHA-256's 64-byte block (longer keys are hashed first)."""
    numbers = [f"{i:06d}-{(i * 7919) % 10**7:07d}" for i in range(1, 2000)]
    keys = pseudonym.pseudonymise(pl.Series("rrn", numbers)).to_list()
    assert keys == [_reference(key, n.replace("-", "")) for n in numbers]
    assert pseudonym.citizen_key(numbers[0]) == keys[0]


@pytest.mark.parametrize("key", [32], indirect=True)
def test_punctuation_does_not_change_the_key_and_nulls_stay_null(key: bytes) -> None:
    forms = ["900101-1234567", "9001011234567", " 900101 - 1234567 ", None]
    keys = pseudonym.pseudonymise(pl.Series("rrn", forms)).to_list()
    assert keys[:3] == [_reference(key, "9001011234567")] * 3
    assert keys[3] is None


@pytest.mark.parametrize("key", [32], indirect=True)
def test_another_key_gives_other_citizen_keys(key: bytes) -> None:
    first = pseudonym.citizen_key("900101-1234567")
    os.environ["GJH_PSEUDONYM_KEY"] = secrets.token_hex(32)
    pseudonym.reset_key_cache()
    assert pseudonym.citizen_key("900101-1234567") != first


def test_no_key_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GJH_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("GJH_SECRETS_DIR", str(tmp_path))
    pseudonym.reset_key_cache()
    try:
        with pytest.raises(MissingKeyError, match="gjh keys"):
            pseudonym.citizen_key("900101-1234567")
    finally:
        pseudonym.reset_key_cache()
