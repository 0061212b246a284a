"""Linkage tokens: the documented algorithm, its test vector, normalisation and the partners'
command (``gjh partner tokens``)."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from lakehouse import linkage
from lakehouse.config import MissingKeyError

# The test vector of docs/partners.md: key bytes 0x00..0x1f, number 900101-1234568.
VECTOR_KEY_HEX = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
VECTOR_NUMBER = "900101-1234568"
VECTOR_TOKEN = "cc7c0ab019f41d4f8d36027330cdda6769e0cad0ed50c8aefb7189f4cd89e56f"
DOC = Path(__file__).resolve().parents[2] / "docs" / "partners.md"


def test_the_vector_is_plain_hmac_sha256_of_the_13_digits() -> None:
    """Python's own hmac gives the documented token: nothing of this code is needed."""
    key = bytes.fromhex(VECTOR_KEY_HEX)
    assert hmac.new(key, b"9001011234568", hashlib.sha256).hexdigest() == VECTOR_TOKEN
    assert linkage.token(VECTOR_NUMBER, key) == VECTOR_TOKEN


def test_the_vector_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    for value in (VECTOR_KEY_HEX, VECTOR_NUMBER, "9001011234568", VECTOR_TOKEN):
        assert value in text


@pytest.mark.parametrize(
    "written", ["900101-1234568", "9001011234568", " 900101 1234568 ", "900101\t-1234568"]
)
def test_hyphens_spaces_and_tabs_are_removed(written: str) -> None:
    assert linkage.normalise(written) == "9001011234568"
    assert linkage.token(written, bytes.fromhex(VECTOR_KEY_HEX)) == VECTOR_TOKEN


@pytest.mark.parametrize(
    "written",
    [
        "900101-123456",  # 12 digits
        "900101-12345678",  # 14 digits
        "900101/1234568",  # another separator
        "90O101-1234568",  # a letter O
        "９００１０１１２３４５６８",  # full-width digits are not ASCII digits
        "",
    ],
)
def test_anything_else_is_malformed_and_never_repeated(written: str) -> None:
    with pytest.raises(linkage.MalformedNumberError) as raised:
        linkage.normalise(written)
    assert written.strip() == "" or written not in str(raised.value)


def test_the_key_file_is_hex_of_at_least_128_bits(tmp_path: Path) -> None:
    good = tmp_path / "good.key"
    good.write_text(VECTOR_KEY_HEX + "\n", encoding="ascii")
    assert linkage.read_key(good) == bytes(range(32))
    short = tmp_path / "short.key"
    short.write_text("00" * 15, encoding="ascii")
    text = tmp_path / "text.key"
    text.write_text("not a key", encoding="ascii")
    for path in (short, text, tmp_path / "missing.key"):
        with pytest.raises(MissingKeyError):
            linkage.read_key(path)


def test_citizen_tokens_hold_keys_and_tokens_never_numbers() -> None:
    numbers = pl.Series("RRN", [VECTOR_NUMBER, "9001011234568", "800202-2345678", None])
    rows = linkage.citizen_tokens(numbers)
    assert rows.columns == ["citizen_key", "token", "key_id"]
    assert rows.height == 2  # the same number twice (with and without hyphen) is one citizen
    expected = linkage.token("8002022345678")
    assert expected in rows["token"].to_list()
    flat = rows.write_csv()
    assert "1234568" not in flat and "2345678" not in flat


def _gjh(args: list[str], stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gjh.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_command_maps_a_partners_person_ids_to_tokens(tmp_path: Path) -> None:
    key = tmp_path / "linkage.key"
    key.write_text(VECTOR_KEY_HEX + "\n", encoding="ascii")
    done = _gjh(
        ["partner", "tokens", "--key", str(key)],
        "PERSON_ID,Number\n17,900101-1234568\n\n18,800202 2345678\n",
    )
    assert done.returncode == 0, done.stderr
    other = hmac.new(bytes(range(32)), b"8002022345678", hashlib.sha256).hexdigest()
    assert done.stdout == f"person_id,token\n17,{VECTOR_TOKEN}\n18,{other}\n"
    plain = _gjh(["partner", "tokens", "--key", str(key)], f"{VECTOR_NUMBER}\n")
    assert plain.returncode == 0 and plain.stdout == f"token\n{VECTOR_TOKEN}\n"


def test_the_command_refuses_a_malformed_number_without_printing_it(tmp_path: Path) -> None:
    key = tmp_path / "linkage.key"
    key.write_text(VECTOR_KEY_HEX, encoding="ascii")
    done = _gjh(
        ["partner", "tokens", "--key", str(key)],
        "person_id,number\n1,900101-1234568\n2,800202-234567X\n",
    )
    assert done.returncode != 0
    assert done.stdout == ""  # no partial output
    assert "line 3" in done.stderr and "234567X" not in done.stderr
    missing = _gjh(["partner", "tokens", "--key", str(tmp_path / "none.key")], "x\n")
    assert missing.returncode != 0 and "no linkage key" in missing.stderr
