"""Districts compared: rates per 1,000 residents, age-standardised rates with their intervals
and benchmark marks, the district map, then one chosen district (or the city): its dongs on the
map, the programme's funnel and the age-sex pyramid, each with its data and chart to download.

Every figure comes from the access layer's published tables (``Access.uptake``, suppressed and
complemented there) through ``lakehouse.stats``; a rate that would need a hidden count is not
computed, and says so.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from apps.common.i18n import keyed, labelled, t
from apps.common.layout import access
from apps.common.theme import apply
from apps.common.views import district
from apps.public_health import charts, freshness
from apps.public_health.exports import displayed, offer, published
from lakehouse import disclosure, stats
from lakehouse.access import UPTAKE_DIMENSIONS, UPTAKE_MEASURES

DISTRICT = "district_code"
RATE_MEASURES = [m for m in UPTAKE_MEASURES if m != "residents"]

layer = access()
with layer.view("compare"):  # one audited unit: one commit per view
    MONTHS = layer.uptake_months()
    st.title(t("compare.title"))
    freshness.line(layer)
    if not MONTHS:
        st.info(t("compare.empty"))
        st.stop()
    st.caption(t("compare.rule"))
    a, b = st.columns(2)
    measure = a.selectbox(
        t("compare.measure"),
        RATE_MEASURES,
        index=RATE_MEASURES.index("app_users"),
        format_func=lambda m: t(f"measure.{m}"),
        key=keyed("compare_measure"),
    )
    first, last = b.select_slider(
        t("compare.period"), MONTHS, value=(MONTHS[0], MONTHS[-1]), key="compare_period"
    )
    RATE_COLUMNS = {
        measure: t(f"measure.{measure}"),
        "residents": t("measure.residents"),
        "rate": t("compare.column.rate"),
        "lower": t("compare.column.lower"),
        "upper": t("compare.column.upper"),
    }

    def rates(dims: list[str]) -> pl.DataFrame:
        """Crude rates per 1,000 by ``dims`` from the two published tables of the period."""
        events = layer.uptake(measure, dims, first, last)
        residents = layer.uptake("residents", dims, first, last)
        return stats.crude_rates(events, residents, dims, measure)

    # --- rates per 1,000 by district, age group, sex ----------------------------------------------
    st.subheader(t("compare.crude.title"))
    st.caption(t("compare.crude.explain"))
    dims = st.multiselect(
        t("compare.by"),
        list(UPTAKE_DIMENSIONS),
        default=[DISTRICT],
        format_func=lambda d: t(f"dimension.{d}"),
        key=keyed("compare_dims"),
    )
    crude = rates(dims)
    crude_table = published(crude, dims, RATE_COLUMNS)
    st.dataframe(displayed(crude_table).to_arrow(), hide_index=True, key="compare_rates")
    offer(layer, crude_table, None, "rates")

    # --- age-standardised rates of the districts, against the city --------------------------------
    st.subheader(t("compare.dsr.title"))
    st.caption(t("compare.dsr.explain"))
    standard = st.radio(
        t("compare.dsr.standard"),
        list(stats.STANDARDS),
        format_func=lambda s: t(f"compare.standard.{s}"),
        horizontal=True,
        key=keyed("compare_standard"),
    )
    st.caption(
        t(
            "compare.dsr.used",
            name=t(f"compare.standard.{standard}"),
            source=t(f"compare.source.{standard}"),
        )
    )
    by_age = [DISTRICT, "age_group"]
    dsr = stats.standardised_rates(
        layer.uptake(measure, by_age, first, last),
        layer.uptake("residents", by_age, first, last),
        [DISTRICT],
        measure,
        stats.standard_population(standard),
    )
    found = dsr.filter(pl.col(DISTRICT) == disclosure.TOTAL)["rate"].first()
    city = float(found) if isinstance(found, float) else None  # the benchmark: the city's own DSR
    marked = dsr.with_columns(
        pl.when(pl.col(DISTRICT) != disclosure.TOTAL).then(stats.benchmark(city)).alias("mark")
    ).sort(pl.col(DISTRICT) != disclosure.TOTAL, DISTRICT)  # the city first
    marked = marked.with_columns(
        labelled(marked, "mark", lambda m: t(f"compare.mark.{m}")).alias("mark_words"),
        labelled(
            marked, "status", lambda s: "" if s == "shown" else t(f"compare.status.{s}")
        ).alias("why"),
    )
    dsr_table = published(
        marked,
        [DISTRICT],
        {**RATE_COLUMNS, "mark_words": t("compare.column.mark"), "why": t("compare.column.status")},
    )
    names = dsr_table[t(f"dimension.{DISTRICT}")].to_list()
    labels = pl.Series("label", [t("compare.dsr.city_row"), *names[1:]], dtype=pl.Utf8)
    dsr_chart = apply(
        charts.intervals(marked.with_columns(labels), "label", t("compare.column.rate"), city)
    )
    st.plotly_chart(dsr_chart, key="compare_dsr_chart")
    st.dataframe(displayed(dsr_table).to_arrow(), hide_index=True, key="compare_dsr")
    offer(layer, dsr_table, dsr_chart, f"standardised_{standard}")

    # --- the map ----------------------------------------------------------------------------------
    st.subheader(t("compare.map.title"))
    by_district = crude if dims == [DISTRICT] else rates([DISTRICT])
    district_table = published(by_district, [DISTRICT], RATE_COLUMNS)
    district_map = apply(
        charts.choropleth(by_district, "districts", DISTRICT, "rate", t("compare.column.rate"))
    )
    st.plotly_chart(district_map, key="compare_map")
    st.caption(t("compare.map.licence"))
    offer(layer, district_table, district_map, "district_map")

    # --- one district, or the city: its dongs, its funnel, its pyramid ----------------------------
    st.subheader(t("compare.area.title"))
    areas = [
        disclosure.TOTAL,
        *(d for d in by_district[DISTRICT].to_list() if d != disclosure.TOTAL),
    ]
    area = st.selectbox(
        t("compare.area.choose"),
        areas,
        format_func=lambda d: t("compare.area.city") if d == disclosure.TOTAL else district(d),
        key=keyed("compare_area"),
    )
    area_name = t("compare.area.city") if area == disclosure.TOTAL else district(area)

    def in_area(frame: pl.DataFrame) -> pl.DataFrame:
        """The chosen area's rows of a table by district (the city: the district margin)."""
        return frame.filter(pl.col(DISTRICT) == area).drop(DISTRICT)

    # Dongs are published for the whole period only (lakehouse.access.aggregates.uptake_dongs).
    st.markdown(f"**{t('compare.dongs.title', area=area_name)}**")
    st.caption(t("compare.dongs.period", first=MONTHS[0], last=MONTHS[-1]))
    by_dong = [DISTRICT, "dong_code"]
    dong_rates = stats.crude_rates(
        layer.uptake_dongs(measure, MONTHS[0], MONTHS[-1]),
        layer.uptake_dongs("residents", MONTHS[0], MONTHS[-1]),
        by_dong,
        measure,
    )
    if area != disclosure.TOTAL:
        dong_rates = dong_rates.filter(pl.col(DISTRICT) == area)
    dong_map = apply(
        charts.choropleth(dong_rates, "dongs", "dong_code", "rate", t("compare.column.rate"))
    )
    st.plotly_chart(dong_map, key="compare_dong_map")
    offer(layer, published(dong_rates, by_dong, RATE_COLUMNS), dong_map, "dong_map")

    st.markdown(f"**{t('compare.funnel.title', area=area_name)}**")
    st.caption(t("compare.funnel.explain"))
    stages = charts.funnel_stages(
        {m: in_area(layer.uptake(m, [DISTRICT], first, last)) for m in charts.FUNNEL}
    )
    funnel = apply(charts.funnel(stages))
    st.plotly_chart(funnel, key="compare_funnel")
    funnel_table = stages.select(
        pl.col("stage").alias("measure"), pl.col("value").alias("count"), "suppressed"
    )
    offer(layer, funnel_table, funnel, "funnel")

    # --- the pyramid ------------------------------------------------------------------------------
    st.markdown(f"**{t('compare.pyramid.of', area=area_name)}**")
    by_sex = ["age_group", "sex"]
    users = in_area(layer.uptake(measure, [DISTRICT, *by_sex], first, last))
    population = in_area(layer.uptake("residents", [DISTRICT, *by_sex], first, last))
    pyramid = apply(charts.pyramid(users, population, measure))
    st.caption(t("compare.pyramid.read"))
    st.plotly_chart(pyramid, key="compare_pyramid")
    pyramid_table = published(
        stats.crude_rates(users, population, by_sex, measure), by_sex, RATE_COLUMNS
    )
    offer(layer, pyramid_table, pyramid, "pyramid")
