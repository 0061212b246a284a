"""Insights: medicines across clinics (in the style of Korea's DUR checks), follow-up gaps and
national screening turns. Each card names the records it came from, says what to do and cites
its source; none of it is a diagnosis or says that anything is wrong."""

import streamlit as st

from apps.common import carer
from apps.common.i18n import day, lang, t
from apps.common.layout import access
from apps.common.medicine_words import diagnosis, drug, place, plain, topic
from lakehouse.access.medicines import Insights
from lakehouse.insights import rules
from lakehouse.insights.insight import Insight, Record

MEDICINE_RULES = ("combination", "same_ingredient", "same_class")


def record_line(record: Record, names: dict[str, str]) -> str:
    """One record as a list item: what, when, where, and until when for a medicine."""
    what = diagnosis(record.code) if record.kind == "diagnosis" else drug(record.code)
    where = place(record.institution, names)
    if record.prescriber:
        where = f"{where} ← {place(record.prescriber, names)}"
    parts = [t(f"kind.{record.kind}"), day(record.day), plain(where), plain(what)]
    if record.until is not None:
        parts.append(t("citizen.insights.until", day=day(record.until)))
    return "- " + " · ".join(parts)


def heading(item: Insight) -> str:
    """The card's title."""
    if item.rule == "same_ingredient":
        return t("citizen.insights.same_ingredient.title", drug=drug(item.topic))
    if item.rule == "combination":
        drugs = " + ".join(dict.fromkeys(drug(r.code) for r in item.records))
        return t("citizen.insights.combination.title", drugs=drugs)
    if item.rule == "same_class":
        return t("citizen.insights.same_class.title", group=topic(item.rule, item.topic))
    if item.rule == "follow_up":
        return t("citizen.insights.follow_up.title", condition=topic(item.rule, item.topic))
    return topic(item.rule, item.topic)


def body(item: Insight, today_year: int) -> list[str]:
    """What the card says about its finding, line by line."""
    start, end = day(item.start), day(item.end)
    if item.rule in MEDICINE_RULES:
        lines = [t(f"citizen.insights.{item.rule}.body", start=start, end=end)]
        if item.rule == "combination":
            lines.append(t(f"citizen.insights.combination.{item.severity}"))
        return lines
    if item.rule == "follow_up":
        gap = (item.end - item.start).days
        return [t("citizen.insights.follow_up.body", start=start, days=gap)]
    interval = next(p.interval_months for p in rules.programmes() if p.id == item.topic)
    if interval == 6:  # the half year the citizen is in
        lines = [t("citizen.insights.screening.half", start=start, end=end)]
    elif item.start.year == today_year:
        lines = [t("citizen.insights.screening.this_year", year=item.start.year)]
    else:
        lines = [t("citizen.insights.screening.next_year", year=item.start.year)]
    if item.severity == "ask":
        lines.append(t("citizen.insights.screening.ask_smoking"))
    if item.records:
        lines.append(t("citizen.insights.screening.risk"))
    return lines


def card(item: Insight, report: Insights, today_year: int) -> None:
    """One insight: title, what was found, its records, what to do, and its source."""
    with st.container(border=True):
        st.markdown(f"#### {plain(heading(item))}")
        for line in body(item, today_year):
            st.markdown(line)
        if item.records:
            st.markdown(f"**{t('citizen.insights.records')}**")
            st.markdown("\n".join(record_line(r, report.institutions) for r in item.records))
        st.markdown(f"👉 **{t(f'citizen.insights.advice.{item.advice}')}**")
        cited = item.source_ko if lang() == "ko" else item.source_en
        source = plain(t("citizen.insights.source", source=cited))
        st.caption(f"[{source}]({item.url})" if item.url else source)


layer = access()
st.title(t("citizen.insights.title"))
st.info(t("citizen.insights.not_a_diagnosis"), icon=":material/info:")
whose = carer.whose(layer, "insights_whose")
report = layer.insights(whose)
st.caption(t("citizen.insights.as_of", day=day(report.as_of)))
this_year = layer.clock().year
sections = (
    ("citizen.insights.medicines", MEDICINE_RULES),
    ("citizen.insights.follow_ups", ("follow_up",)),
    ("citizen.insights.screenings", ("screening",)),
)
for title, kinds in sections:
    st.subheader(t(title))
    items = [i for i in report.items if i.rule in kinds]
    if not items:
        st.write(t("citizen.insights.nothing"))
    for item in items:
        card(item, report, this_year)
