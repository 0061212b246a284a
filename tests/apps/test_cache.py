"""The apps' read cache (``apps/common/cache.py``): a pipeline-table query runs once per
distinct question and lakehouse within its time to live, only ``lakehouse.queries`` functions
are cached, and clearing forgets everything."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl
import pytest

from apps.common import cache
from lakehouse import queries


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, ...]]]:
    """``queries.institution_names`` replaced by one that counts its calls (no lakehouse)."""
    calls: list[tuple[str, ...]] = []

    def institution_names(codes: tuple[str, ...]) -> dict[str, str]:
        calls.append(codes)
        return {c: f"clinic {c}" for c in codes}

    monkeypatch.setattr(queries, "institution_names", institution_names)
    cache.clear()
    yield calls
    cache.clear()


def test_a_query_runs_once_per_question_and_lakehouse(
    counted: list[tuple[str, ...]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: pytest.TempPathFactory,
) -> None:
    names = cache.memo(queries.institution_names)
    monkeypatch.setenv("LAKEHOUSE_URI", "/srv/lake-a")
    assert names(("11111111",)) == {"11111111": "clinic 11111111"}
    assert names(("11111111",)) == {"11111111": "clinic 11111111"}
    assert counted == [("11111111",)]
    names(("22222222",))  # another question
    monkeypatch.setenv("LAKEHOUSE_URI", "/srv/lake-b")
    names(("11111111",))  # the same question of another lakehouse
    assert counted == [("11111111",), ("22222222",), ("11111111",)]
    cache.clear()
    names(("11111111",))
    assert len(counted) == 4


def test_only_the_access_layers_queries_are_cached() -> None:
    def studies_of_everyone() -> pl.DataFrame:
        return pl.DataFrame()

    with pytest.raises(ValueError, match=r"only lakehouse\.queries"):
        cache.memo(studies_of_everyone)
