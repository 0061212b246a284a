"""Under any chart of the officials' app: its data as CSV and the chart as PNG.

What is downloaded is what the screen shows, the table as the access layer published it
(``published``: areas and sexes by their names, margins as "전체", suppressed cells empty and
flagged in words), never a count of 1-10. Both files are made when their button is pressed
(Streamlit's deferred download: the callable runs on the click), and each is an audited
aggregate export (``Access.export_aggregate``, which refuses a table holding a 1-10 count):
the PNG takes Chromium a few seconds (``kaleido`` 1.x drives Debian's Chromium), so no page
pays for it unless someone asks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from apps.common.i18n import labelled, number, t, word
from apps.common.views import district
from apps.public_health.charts import area_names
from lakehouse import disclosure
from lakehouse.access import Access
from lakehouse.access.exports import ExportKind, small_counts

BOM = "\ufeff"  # so that Excel reads the CSV as UTF-8 (Korean names)
SUPPRESSED = "suppressed"
PNG_SIZE = (1000, 640)


def _name(column: str, dongs: Mapping[str, str], value: str) -> str:
    if value == disclosure.TOTAL:
        return t("official.uptake.total")
    if column == "district_code":
        return district(value)
    if column == "dong_code":
        return dongs.get(value, value)
    return word("sex", value) if column == "sex" else value


def header(dimension: str) -> str:
    """A dimension's name as a column header (the uptake table's dimensions, and the dong)."""
    return t("compare.dong") if dimension == "dong_code" else t(f"dimension.{dimension}")


def published(
    frame: pl.DataFrame, dims: Sequence[str], columns: Mapping[str, str], digits: int = 1
) -> pl.DataFrame:
    """The table as an official reads and downloads it.

    Args:
        frame: A published table (``Access.uptake``) or one derived from it: the ``dims``,
            value columns, and ``suppressed`` if any cell is hidden.
        dims: The dimension columns, shown by name (district and dong names, the sex's word,
            ``TOTAL`` as "전체"/"Total") under their dimension's name.
        columns: The value columns to keep, each with its header, in order; counts stay
            integers (null where suppressed), rates are rounded to ``digits`` decimals.
        digits: Decimals of the float columns.
    """
    dongs = area_names("dongs")
    names = [labelled(frame, d, partial(_name, d, dongs)).alias(header(d)) for d in dims]
    values = [
        (pl.col(c).round(digits) if frame.schema[c].is_float() else pl.col(c)).alias(header)
        for c, header in columns.items()
    ]
    flag = (
        [
            pl.when(pl.col(SUPPRESSED))
            .then(pl.lit(f"◆ {t('compare.export.yes')}"))
            .otherwise(pl.lit(""))
            .alias(t("compare.suppressed"))
        ]
        if SUPPRESSED in frame.columns
        else []
    )
    return frame.select(*names, *values, *flag)


def displayed(table: pl.DataFrame, digits: int = 1) -> pl.DataFrame:
    """The published table as the screen shows it, cell for cell the CSV's: numbers with
    thousands separators (floats to ``digits`` decimals), an empty number as "–" (a Polars or
    Arrow null would read "None", an English word on a Korean screen)."""

    def text(series: pl.Series) -> pl.Series:
        if not series.dtype.is_numeric():
            return series.fill_null("")
        places = digits if series.dtype.is_float() else 0
        return pl.Series(series.name, [number(v, places) for v in series.to_list()], pl.Utf8)

    return pl.DataFrame([text(table[c]) for c in table.columns])


def csv_bytes(table: pl.DataFrame) -> bytes:
    """The table as CSV in UTF-8 with a byte-order mark (Excel opens it with its Korean)."""
    return (BOM + table.write_csv()).encode("utf-8")


def _file(
    layer: Access, table: pl.DataFrame, kind: ExportKind, what: str, figure: go.Figure | None
) -> bytes:
    """One download, made on the click: audited (or refused) first, then made."""
    layer.export_aggregate(table, kind, what)
    if kind == "csv" or figure is None:
        return csv_bytes(table)
    width, height = PNG_SIZE
    return bytes(figure.to_image(format="png", width=width, height=height))


def offer(layer: Access, table: pl.DataFrame, figure: go.Figure | None, what: str) -> None:
    """The download buttons under a chart: ``table`` (from ``published``) as CSV and, given a
    figure, the figure as PNG; ``what`` names both files and the audit row's detail. A table
    holding a count of 1-10 is not offered (the access layer would refuse it)."""
    if small_counts(table):
        st.warning(t("refusal.small_cells"))
        return
    files: list[tuple[ExportKind, str, go.Figure | None]] = [("csv", "text/csv", None)]
    if figure is not None:
        files.append(("png", "image/png", figure))
    for column, (kind, mime, drawn) in zip(st.columns(2), files, strict=False):
        column.download_button(
            t(f"compare.export.{kind}"),
            data=partial(_file, layer, table, kind, what, drawn),
            file_name=f"{what}.{kind}",
            mime=mime,
            key=f"export_{what}_{kind}",
            on_click="ignore",
            icon=":material/download:",
        )
    st.caption(t("compare.export.note"))
