"""Freshness (``lakehouse.access.health.fresh``) is reckoned once per version of the tables it
looks at: a page drawn again reads no Delta log's statistics anew, and a new commit is seen at
once (issue 23: the KPI page's profile found most of its time in reading them)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from lakehouse import delta
from lakehouse.access import health
from tests.lakehouse.test_delta import CLAIMS, _claims

DAYS = [(CLAIMS, "delivered_at")]


@pytest.fixture(autouse=True)
def lakehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("LAKEHOUSE_URI", str(tmp_path / "lakehouse"))
    yield tmp_path / "lakehouse"


def test_freshness_is_read_once_per_table_version(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    state = delta.state

    def counted(name: str) -> delta.TableState:
        reads.append(name)
        return state(name)

    monkeypatch.setattr(delta, "state", counted)
    delta.append(CLAIMS, _claims({"s1": ("d1", 3)}))
    first = health.fresh([CLAIMS], DAYS)
    assert first.data_until == date(2025, 4, 3)
    assert reads == [CLAIMS]

    assert health.fresh([CLAIMS], DAYS) == first
    assert reads == [CLAIMS], "a second reckoning at the same version read the log again"

    delta.append(CLAIMS, _claims({"s2": ("d2", 9)}))
    later = health.fresh([CLAIMS], DAYS)
    assert later.data_until == date(2025, 4, 9)
    assert first.built_at is not None and later.built_at is not None
    assert later.built_at >= first.built_at
    assert reads == [CLAIMS, CLAIMS]


def test_a_table_not_built_yet_has_no_freshness() -> None:
    found = health.fresh([CLAIMS], DAYS)
    assert found.built_at is None and found.data_until is None
