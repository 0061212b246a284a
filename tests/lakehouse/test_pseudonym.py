"""The citizen key is HMAC-SHA256 of the registration number's digits under the deployment's key:
exactly the standard construction, whatever the punctuation, and nothing without a key."""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
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


ROOT = Path(__file__).resolve().parents[2]
SHAPE = "C[0-9a-f]{32}"


def test_the_citizen_key_shape_is_written_down_once() -> None:
    where = sorted(
        path.relative_to(ROOT).as_posix()
        for folder in ("lakehouse", "apps", "pipelines")
        for path in (ROOT / folder).rglob("*.py")
        if SHAPE in path.read_text(encoding="utf-8")
    )
    assert where == ["lakehouse/pseudonym.py"]


@pytest.mark.parametrize(
    "value",
    ["C" + "0" * 32 + "\n", "C" + "A" * 32, "C" + "0" * 31, "L" + "0" * 32, " C" + "0" * 32, None],
)
def test_what_is_not_a_citizen_key_is_refused_everywhere_alike(value: str | None) -> None:
    from lakehouse.access import Principal
    from lakehouse.audit import row
    from lakehouse.buckets import key_bucket

    assert not pseudonym.is_citizen_key(value)
    with pytest.raises(ValueError, match="citizen key"):
        Principal("someone", "citizen", citizen_key=value)
    assert (
        row(datetime.now(UTC), "a", "admin", "test", "x", "y", subject=value)["subject_key"] is None
    )
    if value is not None:
        with pytest.raises(ValueError, match="not a citizen key"):
            key_bucket(value)
    key = "C" + "0a" * 16
    assert pseudonym.is_citizen_key(key) and key_bucket(key) == 10
