"""The worklist: the AI-scored studies this clinician may triage, most pressing first
(``lakehouse.triage``), with filters and counts per status. It refreshes every minute as a
fragment, so the filters, the chosen study and the scroll of the page stay where they were.

The chosen study opens through a link to the viewer (``?study=<uid>``), not a button whose run
switches page: a refreshing fragment that switches page from its own run can leave the viewer
blank. The browser keeps sending the fragment's minute ticks until it has taken in the page
change, and a tick that reaches the server after the viewer's run began is run after it, with
the worklist as its page. A slow browser (a busy phone, or forty people at once on the city's
two cores) was seen to end on a viewer that showed nothing (docs/performance.md). Following a
link, the browser stops the ticks before it asks for the new page."""

from datetime import datetime, timedelta
from functools import partial

import polars as pl
import streamlit as st

from apps.common import views
from apps.common.i18n import SEOUL, keyed, labelled, moments, number, t, word
from apps.common.layout import access
from lakehouse.triage import OPEN, STATUSES, status_counts

SHOWN = 500  # rows in the table; the counts cover every study
REFRESH = timedelta(minutes=1)
VIEWER = "app_pages/viewer.py"
STATUS_MARK = {"new": "●", "in_review": "◐", "accepted": "✓", "rejected": "✗", "amended": "✎"}

st.title(t("triage.worklist.title"))
st.caption(t("triage.synthetic"))
layer = access()


def label(status: str) -> str:
    """A status as a mark and a word: never by colour alone."""
    return f"{STATUS_MARK[status]} {t(f'triage.status.{status}')}"


with st.expander(t("triage.worklist.filters"), expanded=False):
    a, b, c = st.columns(3)
    services = a.multiselect(
        t("triage.worklist.services"),
        list(views.service_names()),
        format_func=views.service_name,
        key=keyed("wl_services"),
    )
    modalities = b.multiselect(
        t("triage.worklist.modalities"), list(views.MODALITIES), key="wl_modalities"
    )
    statuses = c.multiselect(
        t("triage.worklist.statuses"),
        list(STATUSES),
        default=list(OPEN),
        format_func=label,
        key=keyed("wl_statuses"),
    )
    d, e = st.columns(2)
    period = d.date_input(t("triage.worklist.period"), value=[], key="wl_period")
    institutions = e.text_input(t("triage.worklist.institutions"), max_chars=8, key="wl_inst")


@st.fragment(run_every=REFRESH)
def worklist() -> None:
    since, until = (*tuple(period), None, None)[:2] if period else (None, None)
    rows = layer.worklist(
        services=services,
        modalities=modalities,
        since=since,
        until=until,
        institutions=[institutions.strip()] if institutions.strip() else (),
    )
    counts = status_counts(rows)
    for column, status in zip(st.columns(len(STATUSES)), STATUSES, strict=True):
        column.metric(label(status), number(counts[status]))
    shown = rows.filter(pl.col("status").is_in(statuses)) if statuses else rows
    st.caption(
        t("triage.worklist.count", count=number(shown.height))
        + " · "
        + t("triage.worklist.refreshed", time=datetime.now(SEOUL).strftime("%H:%M"))
    )
    if shown.is_empty():
        st.info(t("triage.worklist.empty"))
        return
    top = shown.head(SHOWN)
    names = {s: views.service_name(s) for s in set(top["service"].to_list())}
    pairs = top.select("service", "finding_code").rows()
    named = {pair: views.finding_name(*pair) for pair in set(pairs)}  # a dozen, not 500
    findings = [named[pair] for pair in pairs]
    table = top.select(
        pl.col("priority").alias(t("triage.column.priority")),
        pl.col("status")
        .replace_strict({s: label(s) for s in STATUSES})
        .alias(t("triage.column.status")),
        pl.col("patient_key").str.slice(0, 9).alias(t("triage.column.patient")),
        pl.format(
            "{} {}",
            pl.col("age_years").cast(pl.Utf8).fill_null("?"),
            labelled(top, "patient_sex", partial(word, "sex")),
        ).alias(t("triage.column.age_sex")),
        pl.col("service").replace_strict(names).alias(t("triage.column.service")),
        pl.lit(pl.Series(findings, dtype=pl.Utf8)).alias(t("triage.column.finding")),
        pl.col("score_100").alias(t("triage.column.score")),
        pl.format("{} {}", pl.col("value").round(1), "unit").alias(t("triage.column.value")),
        moments("acquired_at").alias(t("triage.column.acquired")),
        moments("scored_at").alias(t("triage.column.scored")),
        pl.format(
            "{}{} / {}",
            pl.when(pl.col("overdue")).then(pl.lit("⚠ ")).otherwise(pl.lit("")),
            pl.col("waited_hours").round(0).cast(pl.Int64),
            pl.col("target_hours").cast(pl.Int64),
        ).alias(t("triage.column.waiting")),
        pl.col("reading")
        .replace_strict(
            {s: t(f"triage.reading.status.{s}") for s in ("requested", "replied", "cancelled")},
            default=None,
        )
        .alias(t("triage.column.reading")),
        pl.col("decisions").alias(t("triage.column.decisions")),
        pl.col("institution_name").alias(t("triage.column.institution")),
    )
    picked = st.dataframe(
        table.to_arrow(),
        hide_index=True,
        key="wl_table",
        on_select="rerun",
        selection_mode="single-row",
        column_config={
            t("triage.column.score"): st.column_config.ProgressColumn(
                t("triage.column.score"), min_value=0, max_value=100, format="%d"
            )
        },
    )
    uids = top["study_instance_uid"].to_list()
    choices = {
        uid: f"{i + 1}. {names[s]} · {p} · {key[:9]}"
        for i, (uid, s, p, key) in enumerate(
            top.select("study_instance_uid", "service", "priority", "patient_key").iter_rows()
        )
    }
    rows_picked = picked.selection.rows if picked is not None else []
    if rows_picked:
        st.session_state["wl_pick"] = uids[rows_picked[0]]
    left, right = st.columns([4, 1])
    pick = left.selectbox(
        t("triage.worklist.pick"), uids, format_func=choices.__getitem__, key="wl_pick"
    )
    with right.container(key="wl_open"):
        st.page_link(
            VIEWER,
            label=t("triage.worklist.open"),
            icon=":material/open_in_new:",
            query_params={"study": pick},
        )


worklist()
