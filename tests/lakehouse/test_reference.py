"""The reference code lists: a list's codes as ``code_set`` gives them (read with the standard
library, so the DICOM header workers need no Polars) are its first column as ``codes`` reads it."""

from __future__ import annotations

from lakehouse import reference


def test_a_code_list_s_codes_are_its_first_column_as_polars_reads_it() -> None:
    lists = sorted((reference.ROOT / "codes").glob("*.csv"))
    assert lists
    for path in lists:
        frame = reference.codes(path.stem)
        expected = frozenset(frame[frame.columns[0]].to_list())
        assert reference.code_set(path.stem) == expected, path.stem
