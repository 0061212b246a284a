"""Parsing one delimited file: every line becomes a row or a quarantine record with its line
number, and a damaged line never takes its neighbours with it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.ingest import parse
from pipelines.ingest.deliveries import DeliveredFile, file_sha256
from pipelines.ingest.parse import (
    MALFORMED_ROW,
    SCHEMA_DRIFT,
    WRONG_ENCODING,
    _well_formed,
    parse_csv,
)

HEADERS = ("SPEC_ID_SNO", "LN_NO", "DIV_NM", "AMT")


def _file(tmp_path: Path, body: bytes, encoding: str = "utf-8") -> DeliveredFile:
    path = tmp_path / "T300_202503.csv"
    path.write_bytes(body)
    return DeliveredFile(
        source="claims",
        delivery_id="202503",
        period="2025-03",
        delivered_at=datetime(2025, 4, 10, tzinfo=UTC),
        path=path,
        rel="claims/202503/T300_202503.csv",
        name=path.name,
        format="csv",
        encoding=encoding,
        delimiter=",",
        rows=body.count(b"\n") - 1,
        sha256=file_sha256(path),
    )


def test_quoted_fields_keep_their_delimiters_quotes_and_empty_strings(tmp_path: Path) -> None:
    body = (
        "SPEC_ID_SNO,LN_NO,DIV_NM,AMT\r\n"
        '1,1,"아세트아미노펜 500mg, 정",790\r\n'
        '1,2,"",1720\r\n'
        '1,3,"6"" 붕대",\r\n'
    ).encode()
    parsed = parse_csv(_file(tmp_path, body), "bronze.claims_t300", HEADERS, {})
    assert parsed.quarantined == []
    assert parsed.rows.rows() == [
        ("1", "1", "아세트아미노펜 500mg, 정", "790", 2),
        ("1", "2", "", "1720", 3),
        ("1", "3", '6" 붕대', "", 4),
    ]


def test_a_line_with_an_unclosed_quote_is_quarantined_alone(tmp_path: Path) -> None:
    """The csv module would read on into the next lines looking for the closing quote, so one
    damaged line would swallow good rows; each line is judged on its own."""
    body = b'SPEC_ID_SNO,LN_NO,DIV_NM,AMT\n1,1,"broken,790\n1,2,ok,1720\n1,3,"fine",10\n'
    parsed = parse_csv(_file(tmp_path, body), "bronze.claims_t300", HEADERS, {})
    assert parsed.rows["LN_NO"].to_list() == ["2", "3"]
    assert parsed.rows["_line"].to_list() == [3, 4]
    [bad] = parsed.quarantined
    assert (bad.reason, bad.line, bad.record_key) == (MALFORMED_ROW, 2, "1")
    assert bad.message == "a quoted field is not closed"
    assert parsed.rows_read == 3 == parsed.rows.height + parsed.rows_quarantined


def test_short_long_and_blank_lines_are_quarantined_with_their_numbers(tmp_path: Path) -> None:
    body = b"SPEC_ID_SNO,LN_NO,DIV_NM,AMT\n1,1,a,1\n1,2,b\n\n1,4,d,4,extra\n1,5,e,5\n"
    parsed = parse_csv(_file(tmp_path, body), "bronze.claims_t300", HEADERS, {})
    assert parsed.rows["_line"].to_list() == [2, 6]
    assert [(q.line, q.message) for q in parsed.quarantined] == [
        (3, "3 fields where the layout has 4"),
        (4, "1 fields where the layout has 4"),
        (5, "5 fields where the layout has 4"),
    ]
    assert {q.reason for q in parsed.quarantined} == {MALFORMED_ROW}


@pytest.mark.parametrize(
    ("body", "encoding", "reason"),
    [
        ("SPEC_ID_SNO,LN_NO,DIV_NM,AMT\n1,1,정,1\n".encode("cp949"), "utf-8", WRONG_ENCODING),
        (b"SPEC_ID_SNO,DIV_NM,LN_NO,AMT\n1,a,1,1\n", "utf-8", SCHEMA_DRIFT),
        (b"SPEC_ID_SNO,LN_NO,DIV_NM\n1,1,a\n", "utf-8", SCHEMA_DRIFT),
    ],
)
def test_whole_file_faults_quarantine_the_file(
    tmp_path: Path, body: bytes, encoding: str, reason: str
) -> None:
    parsed = parse_csv(_file(tmp_path, body, encoding), "bronze.claims_t300", HEADERS, {})
    assert parsed.status == "rejected"
    assert [q.reason for q in parsed.quarantined] == [reason]
    assert parsed.rows.height == 0


def test_escaped_quotes_around_delimiters_do_not_split_fields(tmp_path: Path) -> None:
    """Empty quoted fields are stripped before the quoted-field expression runs; quotes escaped
    next to a delimiter must still keep it inside its field."""
    body = (
        b"SPEC_ID_SNO,LN_NO,DIV_NM,AMT\n"
        b'1,1,""",""",1\n1,2,"a"",b",2\n1,3,"",3\n1,4,"x,y,4\n'
        b'1,"","",""\n1,6,"p,"",q",6\n'
    )
    parsed = parse_csv(_file(tmp_path, body), "bronze.claims_t300", HEADERS, {})
    assert parsed.rows.select("LN_NO", "DIV_NM", "_line").rows() == [
        ("1", '","', 2),
        ("2", 'a",b', 3),
        ("3", "", 4),
        ("", "", 6),
        ("6", 'p,",q', 7),
    ]
    [bad] = parsed.quarantined
    assert (bad.line, bad.message) == (5, "a quoted field is not closed")


@pytest.mark.parametrize("line", ['1,4,"x,"y,4', '1,4,""x,4', '1,4,"a" ,4', '1,4,a"b,c"d'])
def test_a_misplaced_quote_is_quarantined_not_a_crash(tmp_path: Path, line: str) -> None:
    """Balanced quotes in the wrong place (text after a closing quote, quotes inside an unquoted
    field) would stop Polars' reader, or split the line differently than it was counted, and so
    fail the whole run; the line is quarantined alone."""
    body = f"SPEC_ID_SNO,LN_NO,DIV_NM,AMT\n1,1,a,1\n{line}\n1,3,c,3\n".encode()
    parsed = parse_csv(_file(tmp_path, body), "bronze.claims_t300", HEADERS, {})
    assert parsed.rows["_line"].to_list() == [2, 4]
    [bad] = parsed.quarantined
    assert (bad.reason, bad.line, bad.payload) == (MALFORMED_ROW, 3, line)
    assert bad.message.startswith("a quote is misplaced")


def test_a_cp949_delivery_reads_as_its_utf8_twin(tmp_path: Path) -> None:
    text = 'SPEC_ID_SNO,LN_NO,DIV_NM,AMT\r\n1,1,"약국관리료, 야간",790\r\n1,2,조제기본료,1720\r\n'
    korean = parse_csv(_file(tmp_path, text.encode("cp949"), "cp949"), "t", HEADERS, {})
    twin = parse_csv(_file(tmp_path, ("\ufeff" + text).encode()), "t", HEADERS, {})
    assert korean.quarantined == twin.quarantined == []
    assert korean.rows.rows() == twin.rows.rows()
    assert korean.rows["DIV_NM"].to_list() == ["약국관리료, 야간", "조제기본료"]


def test_a_nul_byte_in_a_line_neither_breaks_the_file_nor_its_line_numbers(tmp_path: Path) -> None:
    """Lines are normally split by Polars with NUL as a separator no text holds; a file that
    does hold one is split the slower way, with the same result."""
    body = b"SPEC_ID_SNO,LN_NO,DIV_NM,AMT\n1,1,a\x00b,1\n1,2\n1,3,c,3\n"
    parsed = parse_csv(_file(tmp_path, body), "bronze.claims_t300", HEADERS, {})
    assert parsed.rows.select("DIV_NM", "_line").rows() == [("a\x00b", 2), ("c", 4)]
    assert [(q.line, q.message) for q in parsed.quarantined] == [
        (3, "2 fields where the layout has 4")
    ]


def test_a_well_formed_file_is_read_in_one_pass_with_the_rows_of_the_line_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The usual delivery (empty quoted fields, CRLF, Korean text, no final newline) is proved
    well formed as a whole and read once; its rows are exactly the line-by-line path's."""
    body = (
        'SPEC_ID_SNO,LN_NO,DIV_NM,AMT\r\n1,"","",790\r\n1,"","",\r\n'
        '2,2,초진진찰료(의원),1720\r\n3,"",,'
    ).encode()
    f = _file(tmp_path, body)
    whole = _well_formed(f, body, HEADERS)
    assert whole is not None and whole.quarantined == []
    monkeypatch.setattr("pipelines.ingest.parse._well_formed", lambda *_: None)
    by_line = parse_csv(f, "bronze.claims_t300", HEADERS, {})
    assert by_line.quarantined == []
    assert whole.rows.equals(by_line.rows) and whole.rows_read == by_line.rows_read == 4
    assert whole.rows.rows()[0] == ("1", "", "", "790", 2)


@pytest.mark.parametrize(
    "lines",
    [
        "1,2,b\n1,4,d,4,extra\n",  # one short and one long: the delimiters add up
        "1,2,b,c\n\n1,4,d,4,e\n",  # a blank line
        '1,2,"",4\n"",2,x,4\n',  # a quote left at the line's start
    ],
)
def test_a_file_not_proved_well_formed_is_checked_line_by_line(tmp_path: Path, lines: str) -> None:
    body = ("SPEC_ID_SNO,LN_NO,DIV_NM,AMT\n" + lines).encode()
    f = _file(tmp_path, body)
    assert _well_formed(f, body, HEADERS) is None
    parsed = parse_csv(f, "bronze.claims_t300", HEADERS, {})
    assert parsed.rows_read == parsed.rows.height + parsed.rows_quarantined


# A file of well-formed, quoted, blank, short, long and unclosed lines, CRLF and LF mixed.
_MIXED = (
    "SPEC_ID_SNO,LN_NO,DIV_NM,AMT\r\n"
    '1,1,"아세트아미노펜 500mg, 정",790\r\n'
    "1,2,b\n"
    "\n"
    '1,4,"broken,40\n'
    "1,5,e,5,extra\n"
    '1,6,"6"" 붕대",\r\n' + "".join(f"2,{n},line {n},{n}\n" for n in range(7, 40))
).encode()


@pytest.mark.parametrize("chunk", [1, 40, 200])
def test_a_file_parsed_in_pieces_gives_the_rows_and_records_of_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    """A large file is parsed ``CHUNK_BYTES`` at a time, cut at line ends: the pieces number
    their rows and quarantined lines as the file's lines, and together are the whole file."""
    f = _file(tmp_path, _MIXED)
    whole = parse_csv(f, "bronze.claims_t300", HEADERS, {})
    monkeypatch.setattr(parse, "CHUNK_BYTES", chunk)
    pieces = list(parse.parse_csv_pieces(f, "bronze.claims_t300", HEADERS, {}))
    assert len(pieces) > 1
    joined = parse.joined(pieces)
    assert joined.rows.rows() == whole.rows.rows()
    assert joined.quarantined == whole.quarantined and len(whole.quarantined) == 4
    assert [q.line for q in whole.quarantined] == [3, 4, 5, 6]
    assert joined.rows_read == whole.rows_read == 39
    assert whole.rows["_line"].to_list() == [2, 7, *range(8, 41)]


def test_a_file_in_pieces_with_a_drifted_header_is_rejected_whole_with_every_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = b"SPEC_ID_SNO,DIV_NM,LN_NO,AMT\n" + b"".join(b"1,a,%d,1\n" % n for n in range(50))
    monkeypatch.setattr(parse, "CHUNK_BYTES", 64)
    [rejected] = parse.parse_csv_pieces(_file(tmp_path, body), "bronze.claims_t300", HEADERS, {})
    assert rejected.status == "rejected" and rejected.rows_read == 50
    assert [(q.reason, q.rows) for q in rejected.quarantined] == [(SCHEMA_DRIFT, 50)]


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_a_file_decoded_in_slices_gives_its_text_and_the_first_bad_byte_of_one_decode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """Files are decoded a slice at a time (never the whole text as one Python string): a
    character cut at a slice's end is finished by the next, and a wrong byte is reported where
    decoding the whole file would report it."""
    text = "SPEC_ID_SNO,LN_NO,DIV_NM,AMT\n" + "".join(f"1,{n},정제 {n}mg,{n}\n" for n in range(9))
    good = text.encode("cp949")
    bad = good[:40] + b"\xff\xff" + good[40:]
    with pytest.raises(UnicodeDecodeError) as whole:
        bad.decode("cp949")
    monkeypatch.setattr(parse, "_DECODE_BYTES", size)
    parsed = parse_csv(_file(tmp_path, good, "cp949"), "bronze.claims_t300", HEADERS, {})
    assert parsed.rows["DIV_NM"].to_list() == [f"정제 {n}mg" for n in range(9)]
    rejected = parse_csv(_file(tmp_path, bad, "cp949"), "bronze.claims_t300", HEADERS, {})
    [record] = rejected.quarantined
    assert record.reason == WRONG_ENCODING
    assert record.message.endswith(f"{whole.value.reason} at byte {whole.value.start}")
