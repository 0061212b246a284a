"""The DICOM object store: write-once originals, encrypted at rest, one winner per key."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lakehouse import dicom_store

KEY = dicom_store.object_key("1.2.3", "1.2.3.4", "1.2.3.4.5")


@pytest.fixture(autouse=True)
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LAKEHOUSE_URI", str(tmp_path / "lake"))
    return tmp_path / "lake"


def test_an_object_is_written_once_and_replaced_only_on_purpose(lake: Path) -> None:
    assert dicom_store.put(KEY, b"first")
    assert not dicom_store.put(KEY, b"second")
    assert dicom_store.get(KEY) == b"first"
    assert dicom_store.put(KEY, b"second", replace=True)
    assert dicom_store.get(KEY) == b"second"
    assert [p.name for p in (lake / KEY).parent.iterdir()] == ["1.2.3.4.5.dcm"]  # no leftovers
    dicom_store.remove(KEY)
    assert not dicom_store.exists(KEY)
    dicom_store.remove(KEY)  # removing what is gone is not an error


def test_of_many_writers_at_once_exactly_one_wins(lake: Path) -> None:
    payloads = [secrets.token_bytes(64 * 1024) for _ in range(16)]
    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda data: dicom_store.put(KEY, data), payloads))
    assert won.count(True) == 1
    assert dicom_store.get(KEY) == payloads[won.index(True)]
    assert len(list((lake / KEY).parent.iterdir())) == 1


def test_a_moved_object_does_not_decrypt(lake: Path) -> None:
    dicom_store.put(KEY, b"original")
    other = dicom_store.object_key("1.2.3", "1.2.3.4", "1.2.3.4.6")
    (lake / other).write_bytes((lake / KEY).read_bytes())
    with pytest.raises(dicom_store.ObjectStoreError, match="moved here"):
        dicom_store.get(other)
