"""The account file as every app run reads it: parsed once, read again only when it changes, so
a disabled account is refused on the next run and a run costs one ``stat``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lakehouse import accounts


def test_the_account_file_is_parsed_once_until_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "accounts.json"
    roster = {"dr.kim": accounts.Account("dr.kim", "clinician", institution="12345678")}
    accounts.save(roster, file)
    parsed: list[str] = []
    real = json.loads

    def counting(text: str) -> object:
        parsed.append(text)
        return real(text)

    monkeypatch.setattr(json, "loads", counting)
    first, second = accounts.load(file), accounts.load(file)
    assert first == second == roster
    assert len(parsed) == 1
    first.clear()  # a caller's copy: the kept accounts are not changed through it
    assert accounts.load(file) == roster

    disabled = {
        "dr.kim": accounts.Account("dr.kim", "clinician", institution="12345678", disabled=True)
    }
    accounts.save(disabled, file)
    assert accounts.load(file)["dr.kim"].disabled
    assert len(parsed) == 2
    file.unlink()
    assert accounts.load(file) == {}
