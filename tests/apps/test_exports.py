"""Chart exports (``apps/public_health/exports.py``, ``Access.export_aggregate``): the CSV is the
published table in UTF-8 with a byte-order mark, holds no count of 1-10 and names what it
shows; each download is audited as an aggregate export, a table with a 1-10 count is refused
(audited), and the PNG is drawn by kaleido in Debian's Chromium with no network."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import polars as pl
import pytest

from apps.common.i18n import t
from apps.public_health import charts, exports
from lakehouse import disclosure
from lakehouse.access import Access, AccessDeniedError, Principal
from lakehouse.access.exports import small_counts
from lakehouse.audit import AUDIT
from lakehouse.read import frame as read_frame

TOTAL = disclosure.TOTAL


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LAKEHOUSE_URI", str(tmp_path / "lakehouse"))
    return tmp_path / "lakehouse"


def official() -> Access:
    return Access(Principal("official", "official", "시청 담당자", origin="test"))


def uptake_by_district() -> pl.DataFrame:
    """A table as ``Access.uptake("app_users", ["district_code"], ...)`` publishes it: a 7 and
    its complement hidden."""
    raw = pl.DataFrame(
        {
            "district_code": ["24010", "24020", "24030", "24040", "24050"],
            "app_users": [7, 40, 12, 0, 55],
        }
    )
    protected = disclosure.protect(raw, ["district_code"], "app_users")
    return protected.with_columns(
        (pl.col(disclosure.STATUS) != disclosure.SHOWN).alias("suppressed")
    ).drop(disclosure.STATUS)


def test_the_csv_is_the_published_table_with_a_bom_and_no_count_of_1_to_10() -> None:
    published = uptake_by_district()
    assert published["suppressed"].sum() == 2  # the 7 and its complement
    table = exports.published(published, ["district_code"], {"app_users": "users"})
    data = exports.csv_bytes(table)
    assert data.startswith("\ufeff".encode())  # Excel reads it as UTF-8
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    district, flag = t("dimension.district_code"), t("compare.suppressed")
    assert [r[district] for r in rows] == ["동구", "서구", "남구", "북구", "광산구", "전체"]
    for row in rows:
        if row[flag]:
            assert row["users"] == "" and "◆" in row[flag]
        else:
            assert not 1 <= int(row["users"]) <= 10
    assert {r["users"] for r in rows if not r[flag]} >= {"0", "114"}  # a real 0 shows
    assert not small_counts(table)


def test_a_dong_level_table_names_its_dongs() -> None:
    frame = pl.DataFrame(
        {
            "district_code": ["24050", "24050", "24050"],
            "dong_code": ["2405075", "2405074", TOTAL],
            "app_users": [None, 25, 40],
            "suppressed": [True, False, False],
        },
        schema_overrides={"app_users": pl.Int64},
    )
    table = exports.published(frame, ["district_code", "dong_code"], {"app_users": "users"})
    assert table[t("compare.dong")].to_list() == ["수완동", "신가동", "전체"]
    assert table[t("dimension.district_code")].to_list() == ["광산구"] * 3
    shown = exports.displayed(table)
    assert shown["users"].to_list() == ["–", "25", "40"]


def test_a_table_with_a_count_of_1_to_10_is_found() -> None:
    leaked = pl.DataFrame({"district": ["동구", "서구"], "users": [7, 40], "rate": [3.5, 8.0]})
    assert small_counts(leaked) == ["users"]  # rates are not counts
    assert small_counts(leaked.filter(pl.col("users") > 10)) == []


@pytest.mark.integration
@pytest.mark.security
def test_each_export_is_audited_and_a_1_to_10_count_is_refused(lake: Path) -> None:
    table = exports.published(uptake_by_district(), ["district_code"], {"app_users": "users"})
    official().export_aggregate(table, "csv", "district_map")
    leaked = pl.DataFrame({"users": [7]})
    with pytest.raises(AccessDeniedError) as refused:
        official().export_aggregate(leaked, "csv", "district_map")
    assert refused.value.code == "small_cells"
    clinician = Access(Principal("dr.kim", "clinician", institution="12345678", origin="test"))
    with pytest.raises(AccessDeniedError):
        clinician.export_aggregate(table, "csv", "district_map")
    log = read_frame(AUDIT).sort("at")
    assert log.select("account", "action", "outcome", "rows", "detail", "refusal").rows() == [
        ("official", "export:aggregate", "allowed", 6, "csv district_map", None),
        ("official", "export:aggregate", "denied", 0, log["detail"][1], "small_cells"),
        ("dr.kim", "export:aggregate", "denied", 0, log["detail"][2], "role"),
    ]


@pytest.mark.integration
@pytest.mark.slow
def test_the_png_is_drawn_offline_when_asked_and_audited(lake: Path) -> None:
    published = uptake_by_district()
    rates = published.with_columns(pl.col("app_users").cast(pl.Float64).alias("rate"))
    figure = charts.choropleth(rates, "districts", "district_code", "rate", "users")
    table = exports.published(published, ["district_code"], {"app_users": "users"})
    png = exports._file(official(), table, "png", "district_map", figure)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert read_frame(AUDIT)["detail"].to_list() == ["png district_map"]
