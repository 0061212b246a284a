"""What the signals page shows of ``gold.ade_signals``: the pairs named, the forest plot, the table.

Kept apart from the page script so that the figure and the table can be tested without a
session. Drugs and diagnoses are named from the code lists (``apps.common.medicine_words``),
never shown as bare codes; a signal is marked by a symbol and a word, not by colour alone.
"""

from __future__ import annotations

import math
from typing import Final

import plotly.graph_objects as go
import polars as pl

from apps.common.i18n import labelled, number, t
from apps.common.medicine_words import diagnosis, drug
from apps.common.theme import BACKGROUND, PALETTE, TEXT

# Characters of a diagnosis's name kept on the forest plot's axis (a 390 px phone).
SHORT: Final = 13


def _short(text: str) -> str:
    return text if len(text) <= SHORT else text[: SHORT - 1] + "…"


def pair_label(drug_code: str, event_code: str) -> str:
    """``drug`` over ``→ diagnosis (code)``, names shortened to fit a phone's width."""
    name = diagnosis(event_code).rsplit(" (", 1)[0]
    return f"{_short(drug(drug_code))}<br>→ {_short(name)} ({event_code})"


def shown_pairs(rows: pl.DataFrame) -> pl.DataFrame:
    """The pairs the forest plot shows: the prespecified ones and those with a signal."""
    return rows.filter(pl.col("prespecified") | pl.col("signal").fill_null(False))


def forest(rows: pl.DataFrame) -> go.Figure:
    """Adjusted sequence ratios with their 95% intervals on a log axis, one row per pair, the
    line of no effect at 1; a signal is a filled triangle with the word beside it, no signal an
    open circle. Each pair's name is written above its row, across the plot's width (a phone
    has no room for names beside the axis); a pair whose ratio is hidden says so instead.

    Args:
        rows: ``gold.ade_signals`` rows of one scope.
    """
    labels = [pair_label(d, e) for d, e in rows.select("drug", "event").rows()]
    framed = rows.with_row_index("y").with_columns(pl.Series("label", labels, dtype=pl.Utf8))
    shown = framed.filter(pl.col("adjusted_sr").is_not_null())
    signal = shown["signal"].fill_null(False).to_list()
    figure = go.Figure(
        go.Scatter(
            x=shown["adjusted_sr"].to_list(),
            y=shown["y"].to_list(),
            mode="markers+text",
            marker={
                "size": 16,
                "color": TEXT,
                "symbol": ["triangle-up" if s else "circle-open" for s in signal],
            },
            error_x={
                "type": "data",
                "symmetric": False,
                "array": (shown["sr_high"] - shown["adjusted_sr"]).to_list(),
                "arrayminus": (shown["adjusted_sr"] - shown["sr_low"]).to_list(),
                "thickness": 2,
                "width": 8,
                "color": PALETTE[0],
            },
            text=[t("signals.mark.signal") if s else "" for s in signal],
            textposition="bottom center",
            customdata=list(
                zip(
                    shown["label"].to_list(),
                    [number(v, 2) for v in shown["sr_low"].to_list()],
                    [number(v, 2) for v in shown["sr_high"].to_list()],
                    strict=True,
                )
            ),
            hovertemplate=(
                "%{customdata[0]}<br>%{x:.2f} (%{customdata[1]}–%{customdata[2]})<extra></extra>"
            ),
            showlegend=False,
        )
    )
    for y, label, ratio in framed.select("y", "label", "adjusted_sr").rows():
        text = label if ratio is not None else f"{label} · {t('signals.mark.hidden')}"
        figure.add_annotation(
            x=0,
            xref="paper",
            y=y - 0.45,
            text=text,
            showarrow=False,
            xanchor="left",
            align="left",
            bgcolor=BACKGROUND,
        )
    figure.add_vline(x=1, line={"dash": "dash", "color": PALETTE[1], "width": 2})
    low = min([1.0, *shown["sr_low"].to_list()]) / 1.3
    high = max([1.0, *shown["sr_high"].to_list()]) * 1.3
    ticks = [v for v in (0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32) if low <= v <= high]
    figure.update_layout(
        xaxis={
            "title": {"text": t("signals.forest.axis")},
            "type": "log",
            "range": [math.log10(low), math.log10(high)],
            "tickvals": ticks,
            "ticktext": [f"{v:g}" for v in ticks],
            "tickangle": 0,
            "automargin": True,
        },
        yaxis={
            "showticklabels": False,
            "range": [framed.height - 0.4, -1.0],
            "showgrid": False,
            "zeroline": False,
        },
        height=170 + 110 * max(framed.height, 1),
        margin={"l": 8, "r": 8, "t": 16, "b": 60},
    )
    return figure


def table(rows: pl.DataFrame) -> pl.DataFrame:
    """The pairs as the page lists them, in words, with the catalogue's column names."""
    return rows.select(
        labelled(rows, "drug", drug).alias(t("signals.column.drug")),
        labelled(rows, "event", diagnosis).alias(t("signals.column.event")),
        pl.when(pl.col("prespecified"))
        .then(pl.lit(t("signals.kind.prespecified")))
        .otherwise(pl.lit(t("signals.kind.screened")))
        .alias(t("signals.column.kind")),
        pl.col("drug_first").alias(t("signals.column.drug_first")),
        pl.col("event_first").alias(t("signals.column.event_first")),
        pl.col("adjusted_sr").round(2).alias(t("signals.column.adjusted_sr")),
        _interval("sr_low", "sr_high").alias(t("signals.column.sr_interval")),
        pl.col("null_sr").round(2).alias(t("signals.column.null_sr")),
        _with_interval("prr").alias(t("signals.column.prr")),
        _with_interval("ror").alias(t("signals.column.ror")),
        pl.when(pl.col("signal").is_null())
        .then(pl.lit(t("signals.mark.hidden")))
        .when(pl.col("signal"))
        .then(pl.lit(t("signals.mark.signal")))
        .otherwise(pl.lit(t("signals.mark.none")))
        .alias(t("signals.column.mark")),
    )


def _interval(low: str, high: str) -> pl.Expr:
    return pl.format("{}–{}", pl.col(low).round(2), pl.col(high).round(2))


def _with_interval(ratio: str) -> pl.Expr:
    return pl.format(
        "{} ({}–{})",
        pl.col(ratio).round(2),
        pl.col(f"{ratio}_low").round(2),
        pl.col(f"{ratio}_high").round(2),
    )
