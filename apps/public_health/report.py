"""The monthly programme report for the city council: one HTML page that prints on one A4
sheet (a print stylesheet; no PDF library, which would be a new dependency).

It holds the month's KPIs against their targets (whose target each is: the city's, or a
deployment setting marked †), their trends over the last months (figures and a small line with
the target), the AI reading services' month as published, the disclosure rule and the synthetic
data note. It reads only the access layer's published figures (``Access.kpis``,
``Access.kpi_series``, ``Access.service_table``), so it holds nothing the pages could not show:
the services' counts of 1-10 are hidden there, not here. Made in the language it is given (the
download runs off the page's thread, where the session is not at hand).
"""

from __future__ import annotations

from html import escape
from typing import Final

import polars as pl

from apps.common.i18n import Lang, moment, number, t
from apps.public_health import kpis as words
from lakehouse import disclosure
from lakehouse.access import Access
from lakehouse.access.programme import Kpi
from lakehouse.catalog.gold import SERVICE_COUNTS
from models.runtime.services import lookup

TREND_MONTHS: Final = 6  # months of history a one-page report has room for
SPARK: Final = (110, 16)  # a trend line's width and height, in CSS pixels
STYLE: Final = """
@page { size: A4; margin: 10mm 12mm; }
body { font-family: "Noto Sans CJK KR", "Noto Sans KR", sans-serif; font-size: 8.5pt;
       color: #1f2328; margin: 0; }
h1 { font-size: 14pt; margin: 0 0 2pt; }
h2 { font-size: 10pt; margin: 6pt 0 2pt; }
p { margin: 2pt 0; }
.note { border: 1pt solid #57606a; padding: 3pt 5pt; margin: 4pt 0; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 0.5pt solid #d0d7de; padding: 1pt 3pt; text-align: left;
         vertical-align: top; }
td.target { white-space: nowrap; }
td.count, td.figure { text-align: right; white-space: nowrap; }
.small { font-size: 7.5pt; color: #57606a; }
svg { display: block; }
@media print { body { width: auto; } }
@media screen { body { max-width: 186mm; margin: 12mm auto; } }
"""


def report(layer: Access, month: str, language: Lang) -> bytes:
    """The report of ``month`` (``YYYY-MM``) as UTF-8 HTML, made now, in ``language``; its
    reads are one audited view (one commit for their three rows)."""
    with layer.view("report"):
        cards = layer.kpis(month)
        series = layer.kpi_series().filter(pl.col("month") <= month)
        services = layer.service_table().filter(
            (pl.col("month") == month) & (pl.col("service") != disclosure.TOTAL)
        )
    recent = sorted(series["month"].unique().to_list())[-TREND_MONTHS:]
    deployment = any(k.target is not None and not k.target.sourced for k in cards)
    made = t("report.for", language, made=moment(layer.clock(), language))
    parts = [
        "<!doctype html>",
        f'<html lang="{language}"><head><meta charset="utf-8">',
        f"<title>{escape(t('report.title', language, month=month))}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(t('report.title', language, month=month))}</h1>",
        f"<p class='small'>{escape(made)}</p>",
        f"<p class='note'>{escape(t('report.synthetic', language))}</p>",
        f"<h2>{escape(t('report.kpis', language))}</h2>",
        _kpi_table(cards, language),
        f"<h2>{escape(t('report.trends', language))}</h2>",
        _trend_table(series.filter(pl.col("month").is_in(recent)), recent, language),
        f"<h2>{escape(t('report.services', language))}</h2>",
        _service_table(services, language),
        f"<p class='small'>{escape(t('official.overview.services_note', language))}</p>",
        f"<p class='note'>{escape(t('report.rule', language))}</p>",
    ]
    if deployment:
        parts.append(f"<p class='small'>{escape(t('report.deployment', language))}</p>")
    parts.append("</body></html>")
    return "\n".join(parts).encode("utf-8")


def _cell(text: str, kind: str | None = None) -> str:
    return f"<td class='{kind}'>{escape(text)}</td>" if kind else f"<td>{escape(text)}</td>"


def _head(*names: str) -> str:
    return "<tr>" + "".join(f"<th>{escape(n)}</th>" for n in names) + "</tr>"


def _target(kpi: Kpi, language: Lang) -> str:
    """The target in a table cell: its figure, † when it is a deployment setting."""
    goal = kpi.target
    if goal is None:
        return t("kpi.target.none", language)
    said = words.amount(goal.value, goal.unit, language)
    return said if goal.sourced else f"{said} †"


def _kpi_table(cards: list[Kpi], language: Lang) -> str:
    """The month's KPIs against their targets, then how fresh each source is (once each)."""
    rows = [_head(*(t(f"column.{c}", language) for c in ("kpi", "value", "target", "change")))]
    for kpi in cards:
        shown = words.value(kpi, language)
        more = [m for m in (words.share(kpi, language), words.progress(kpi, language)) if m]
        rows.append(
            "<tr>"
            + _cell(words.name(kpi.kpi, language))
            + _cell(" · ".join([shown, *more]), "figure")
            + _cell(_target(kpi, language), "target")
            + _cell(words.change(kpi, language))
            + "</tr>"
        )
    sources = {k.source: k.freshness for k in cards}
    fresh = "; ".join(words.fresh(f, language, source) for source, f in sources.items())
    return (
        "<table>"
        + "".join(rows)
        + "</table>"
        + f"<p class='small'>{escape(t('column.freshness', language))}: {escape(fresh)}</p>"
    )


def _trend_table(series: pl.DataFrame, months: list[str], language: Lang) -> str:
    """Each KPI's figure over the recent months and a small line of it with its target."""
    rows = [_head(t("column.kpi", language), *months, "")]
    for (kpi,), of_kpi in series.group_by("kpi", maintain_order=True):
        by_month = {r["month"]: r for r in of_kpi.iter_rows(named=True)}
        cells = []
        for month in months:
            found = by_month.get(month)
            if found is None or found["compared"] is None:
                cells.append(_cell(words.hidden(language), "figure"))
                continue
            cells.append(_cell(words.compared(str(kpi), found["compared"]), "figure"))
        line = _spark([by_month.get(m, {}).get("compared") for m in months], of_kpi["target"][0])
        rows.append(
            "<tr>"
            + _cell(words.name(str(kpi), language))
            + "".join(cells)
            + f"<td>{line}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def _spark(values: list[float | None], target: float | None) -> str:
    """A small SVG line of the values (gaps where hidden) and the target as a dotted line."""
    width, height = SPARK
    known = [v for v in values if v is not None]
    top = max([*known, target or 0.0, 1e-9])
    step = width / max(len(values) - 1, 1)

    def y(v: float) -> float:
        return round(height - 2 - (height - 4) * v / top, 1)

    points = " ".join(f"{round(i * step, 1)},{y(v)}" for i, v in enumerate(values) if v is not None)
    goal = (
        f"<line x1='0' x2='{width}' y1='{y(target)}' y2='{y(target)}' stroke='#57606a' "
        "stroke-dasharray='3 2' stroke-width='1'/>"
        if target
        else ""
    )
    return (
        f"<svg width='{width}' height='{height}' viewBox='0 0 {width} {height}' role='img'>"
        f"{goal}<polyline points='{points}' fill='none' stroke='#0072B2' stroke-width='1.5'/>"
        "</svg>"
    )


def _service_table(services: pl.DataFrame, language: Lang) -> str:
    """The month's published service table: hidden counts as the suppressed mark."""
    if services.is_empty():
        return f"<p>{escape(t('official.overview.no_services', language))}</p>"
    rows = [
        _head(
            t("column.service", language),
            *(t(f"column.{c}", language) for c in SERVICE_COUNTS),
            t("column.median_hours", language),
        )
    ]
    for row in services.sort("service").iter_rows(named=True):
        counts = [
            _cell(
                words.hidden(language) if row[f"{c}_suppressed"] else number(row[c]),
                "count",
            )
            for c in SERVICE_COUNTS
        ]
        hours = row["median_hours"]
        rows.append(
            "<tr>"
            + _cell(lookup(row["service"]).name(language))
            + "".join(counts)
            + _cell(number(hours, 1) if hours is not None else "–", "figure")
            + "</tr>"
        )
    return "<table class='suppressed'>" + "".join(rows) + "</table>"
