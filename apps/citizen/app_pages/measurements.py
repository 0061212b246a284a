"""My measurements at the seniors' centre: each measure over time against its published reference
range for my age and sex, and the fall-risk notice with the measurements that drove it."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from apps.common import carer
from apps.common.i18n import day, keyed, lang, number, t, word
from apps.common.layout import access
from apps.common.theme import PALETTE, apply
from apps.common.timeline import context_name
from lakehouse import norms
from lakehouse.access.measurements import Measured
from lakehouse.insights import falls
from lakehouse.reference import codes

DEVICES = ("mobility", "gait", "balance", "checkup", "body", "emg", "foot", "posture")
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star", "cross", "hexagon")


def measure_name(code: str, device: str) -> str:
    """The measure's name in the session's language (``centre_measures.csv``)."""
    named = codes("centre_measures").filter((pl.col("code") == code) & (pl.col("device") == device))
    if named.is_empty():
        named = codes("centre_measures").filter(pl.col("code") == code)
    return code if named.is_empty() else str(named[f"name_{lang()}"][0])


def unit_name(unit: str) -> str:
    return word("centre.unit", unit)


def threshold(low: float | None, high: float | None, unit: str) -> str:
    """The reference range in words: ``1.0 m/s 이상``, ``12 s 미만``, ``60–101 bpm 미만``."""
    u = unit_name(unit)
    if low is not None and high is not None:
        return t("citizen.measurements.between", low=_num(low), high=_num(high), unit=u)
    if low is not None:
        return t("citizen.measurements.at_least", value=_num(low), unit=u)
    return t("citizen.measurements.below", value=_num(high), unit=u)


def _num(value: float | None) -> str:
    if value is None:
        return number(None)
    return number(value, 0 if float(value).is_integer() else 2 if abs(value) < 1 else 1)


def chart(rows: pl.DataFrame, title: str, unit: str, key: str) -> None:
    """One measure over time, one line per context, the reference band shaded and its bounds
    drawn as labelled dashed lines (never told by colour alone)."""
    figure = go.Figure()
    for i, ((context,), part) in enumerate(rows.group_by("context", maintain_order=True)):
        figure.add_trace(
            go.Scatter(
                x=part["measured_at"].dt.convert_time_zone("Asia/Seoul").to_list(),
                y=part["value"].to_list(),
                mode="lines+markers",
                name=context_name(context) or title,
                marker={"symbol": SYMBOLS[i % len(SYMBOLS)], "size": 9},
                line={"color": PALETTE[i % len(PALETTE)]},
            )
        )
    first = rows.row(0, named=True)
    low, high = first["ref_low"], first["ref_high"]
    if low is not None or high is not None:
        edges = [float(v) for v in (*rows["value"].to_list(), low, high) if v is not None]
        bottom, top = min(edges), max(edges)
        pad = (top - bottom) * 0.15 or 1.0
        figure.add_hrect(
            y0=low if low is not None else bottom - pad,
            y1=high if high is not None else top + pad,
            fillcolor="#009E73",
            opacity=0.12,
            line_width=0,
        )
        for bound in (b for b in (low, high) if b is not None):
            figure.add_hline(
                y=bound,
                line_dash="dash",
                line_color="#1f2328",
                annotation_text=f"{t('citizen.measurements.band')} {_num(bound)}",
                annotation_position="top left",
            )
    figure.update_layout(
        height=300,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        showlegend=rows["context"].n_unique() > 1,
        legend={"orientation": "h", "y": -0.25},
        yaxis_title=unit_name(unit),
        xaxis={"tickformat": "%Y.%m.%d", "nticks": 4},
    )
    st.plotly_chart(apply(figure), key=key)


def latest_line(rows: pl.DataFrame) -> str:
    """The latest value, its day, and whether it is inside the reference range, in words."""
    last = rows.row(-1, named=True)
    said = t(
        "citizen.measurements.latest",
        value=_num(last["value"]),
        unit=unit_name(last["unit"]),
        day=day(last["measured_on"]),
    )
    if last["band"] is None:
        return said
    if last["in_reference"]:
        return f"{said} · {t('citizen.measurements.inside')}"
    return f"{said} · {t('citizen.measurements.outside', band=word('centre.band', last['band']))}"


def fall_notice(risk: falls.FallRisk) -> None:
    """The fall-risk notice: the measurements that drove it with their cut-offs and sources,
    what to do, never a diagnosis."""
    st.subheader(t("citizen.measurements.falls.title"))
    if risk.raised:
        st.warning(t("citizen.measurements.falls.raised", count=len(risk.drivers)))
        for d in risk.drivers:
            st.markdown(
                "- "
                + t(
                    "citizen.measurements.falls.driver",
                    name=measure_name(d.measure, d.device),
                    value=_num(d.value),
                    unit=unit_name(d.unit),
                    day=day(d.measured_on),
                    threshold=threshold(d.ref_low, d.ref_high, d.unit),
                    band=word("centre.band", d.band),
                    source=word("centre.source", d.source),
                )
            )
        st.markdown(f"**{t('citizen.measurements.falls.advice')}**")
    elif risk.checked:
        measures = ", ".join(measure_name(m, "") for m in risk.checked)
        st.success(t("citizen.measurements.falls.quiet", measures=measures))
        st.write(t("citizen.measurements.falls.keep"))
    else:
        st.info(t("citizen.measurements.falls.unchecked"))


def sources_list(used: list[str]) -> None:
    """The full citation of every source a shown range came from."""
    cited = norms.sources().filter(pl.col("source").is_in(used))
    if cited.is_empty():
        return
    with st.expander(t("citizen.measurements.sources")):
        for row in cited.iter_rows(named=True):
            st.markdown(f"- **{word('centre.source', row['source'])}**: {row['citation']}")


def judged(measured: Measured) -> pl.DataFrame:
    """The rows with their bands for the person's age and sex (none when either is unknown)."""
    if measured.age is None or measured.sex is None:
        return measured.rows.with_columns(
            pl.lit(None, pl.Utf8).alias("band"),
            pl.lit(None, pl.Boolean).alias("in_reference"),
            pl.lit(None, pl.Float64).alias("ref_low"),
            pl.lit(None, pl.Float64).alias("ref_high"),
            pl.lit(None, pl.Utf8).alias("source"),
        )
    return norms.judge(measured.rows, measured.age, measured.sex)


def page() -> None:
    layer = access()
    st.title(t("citizen.measurements.title"))
    measured = layer.centre_measurements(carer.whose(layer, "measurements_whose"))
    if measured.rows.is_empty():
        st.info(t("citizen.measurements.empty"))
        return
    if measured.age is None or measured.sex is None:
        st.caption(t("citizen.measurements.no_person"))
    else:
        sex = word("centre.sex", measured.sex)
        st.write(t("citizen.measurements.intro", age=measured.age, sex=sex))
        st.caption(t("citizen.measurements.age_note"))
    rows = judged(measured)
    fall_notice(falls.assess(rows, layer.clock().date()))
    present = [d for d in DEVICES if d in set(rows["device"].to_list())]
    device = st.radio(
        t("citizen.measurements.device"),
        present,
        format_func=lambda d: word("centre.device", d),
        horizontal=True,
        key=keyed("measurements_device"),
    )
    mine = rows.filter(pl.col("device") == device)
    for (measure,), series in mine.group_by("measure", maintain_order=True):
        show_measure(str(measure), str(device), series)
    sources_list(rows["source"].drop_nulls().unique().to_list())


def show_measure(measure: str, device: str, series: pl.DataFrame) -> None:
    """One measure: its name, the latest value against its range, the chart, the source."""
    name = measure_name(measure, device)
    st.subheader(name)
    contexts = series["context"].unique(maintain_order=True).to_list()
    if len(contexts) > 2:  # EMG: one channel at a time (four muscles, two sides)
        chosen: Any = st.selectbox(
            t("citizen.measurements.context"),
            contexts,
            format_func=context_name,
            key=keyed(f"measurements_{device}_{measure}_context"),
        )
        series = series.filter(pl.col("context") == chosen)
    st.markdown(f"**{latest_line(series)}**")
    last = series.row(-1, named=True)
    if last["ref_low"] is None and last["ref_high"] is None:
        st.caption(t("citizen.measurements.no_norm"))
    else:
        band = threshold(last["ref_low"], last["ref_high"], last["unit"])
        source = word("centre.source", last["source"] or "")
        st.caption(
            f"{t('citizen.measurements.band')}: {band} · "
            + t("citizen.measurements.source", source=source)
        )
    chart(series, name, last["unit"], key=f"measurements_{device}_{measure}_chart")


page()
