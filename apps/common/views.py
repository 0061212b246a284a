"""Views more than one app shows: a person's timeline (the citizen's own, a clinician's
patient). Data is shown through Streamlit's table and chart widgets, which render text as text,
never as HTML: a name or a note holding markup is displayed, not run."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Final

import plotly.express as px
import polars as pl
import streamlit as st

from apps.common.i18n import keyed, lang, t
from apps.common.theme import apply
from lakehouse import accounts
from models.runtime.registry import registry
from models.runtime.services import listed, lookup

DISTRICTS: Final = (
    Path(__file__).resolve().parents[2] / "lakehouse/reference/gwangju/districts.geojson"
)


DONGS: Final = DISTRICTS.with_name("dongs.geojson")


@cache
def _areas(boundaries: Path) -> dict[str, dict[str, str]]:
    features = json.loads(boundaries.read_text(encoding="utf-8"))["features"]
    return {f["properties"]["code"]: f["properties"] for f in features}


def district(code: str) -> str:
    """A district's name from the reference boundaries, in the session's language."""
    return _area_name(DISTRICTS, code)


def dong(code: str) -> str:
    """A dong's name from the reference boundaries, in the session's language."""
    return _area_name(DONGS, code)


def _area_name(boundaries: Path, code: str) -> str:
    found = _areas(boundaries).get(code)
    if found is None:
        return code
    return str(found["name"] if lang() == "ko" else found["name_eng"])


def account_name(account: str) -> str:
    """How the apps name an account in the access log: the account file's display name (staff),
    the pipelines' ``system`` as such, otherwise the account's ID (a citizen's name is the
    vault's, never shown here)."""
    if account == SYSTEM:
        return t("admin.audit.system")
    known = accounts.load().get(account)
    return known.display_name if known is not None and known.display_name else account


def service_names() -> tuple[str, ...]:
    """Every AI service's code, in the registry's order."""
    return tuple(listed())


def _modalities() -> tuple[str, ...]:
    found: list[str] = []
    for service in listed().values():
        found += [m for m in service.modalities if m not in found]
    return tuple(found)


def service_name(code: str) -> str:
    """An AI service's name (the registry's), in the session's language.

    Raises:
        RegistryError: The registry does not list ``code``: a name is never made up.
    """
    return lookup(code).name(lang())


def finding_name(service: str, code: str) -> str:
    """What a service's model looks for (its ``config.toml``), in the session's language."""
    found = registry().get(service)
    if found is None or found.config.finding_code != code:
        return code
    return found.config.finding_ko if lang() == "ko" else found.config.finding_en


MODALITIES: Final = _modalities()
SYSTEM: Final = "system"  # the pipelines' account in the access log (lakehouse.audit)


def timeline(rows: pl.DataFrame, key: str) -> None:
    """A person's timeline (``Access.timeline``): the picture, the list by year and the chosen
    item's details (``apps.common.timeline``, which names AI results with this module's
    ``service_name`` and ``finding_name`` and so is imported when first drawn)."""
    from apps.common.timeline import show

    show(rows, key)


def turnaround(rows: pl.DataFrame, key: str) -> None:
    """Turnaround and agreement of one AI service at a time (``Access.triage_stats``): median
    hours from the study's arrival to scoring and to the first decision (said on the page),
    the share of AI flags accepted and the disagreements, by month; the figures in a table
    below."""
    st.caption(t("triage.stats.measures"))
    if rows.is_empty():
        st.info(t("triage.stats.empty"))
        return
    present = rows["service"].unique(maintain_order=True).to_list()
    service = st.selectbox(
        t("triage.stats.service"), present, format_func=service_name, key=keyed(f"{key}_service")
    )
    mine = rows.filter(pl.col("service") == service).sort("month")
    hours = mine.unpivot(
        ["hours_to_score", "hours_to_decision"], index="month", variable_name="step"
    ).with_columns(
        pl.col("step").replace_strict(
            {
                "hours_to_score": t("triage.stats.to_score"),
                "hours_to_decision": t("triage.stats.to_decision"),
            }
        )
    )
    left, right = st.columns(2)
    figure = px.line(
        hours,
        x="month",
        y="value",
        color="step",
        line_dash="step",  # not by colour alone
        symbol="step",
        markers=True,
        labels={"month": t("triage.stats.month"), "value": t("triage.stats.hours"), "step": ""},
        title=t("triage.stats.hours"),
    )
    left.plotly_chart(apply(figure), key=f"{key}_hours")
    agreement = px.bar(
        mine,
        x="month",
        y="disagreements",
        text="disagreements",  # the count is written on each bar
        labels={"month": t("triage.stats.month"), "disagreements": t("triage.stats.disagreements")},
        title=t("triage.stats.disagreements"),
    )
    right.plotly_chart(apply(agreement), key=f"{key}_disagreements")
    share = px.line(
        mine,
        x="month",
        y="accepted_share",
        markers=True,
        range_y=[0, 1],
        labels={
            "month": t("triage.stats.month"),
            "accepted_share": t("triage.stats.accepted_share"),
        },
        title=t("triage.stats.accepted_share"),
    )
    share.update_yaxes(tickformat=".0%")
    st.plotly_chart(apply(share), key=f"{key}_share")
    st.dataframe(
        mine.select(
            pl.col("month").alias(t("triage.stats.month")),
            pl.col("findings").alias(t("triage.stats.findings")),
            pl.col("failed").alias(t("triage.stats.failed")),
            pl.col("hours_to_score").round(1).alias(t("triage.stats.to_score")),
            pl.col("hours_to_decision").round(1).alias(t("triage.stats.to_decision")),
            pl.col("flags").alias(t("triage.stats.flags")),
            pl.col("decided").alias(t("triage.stats.decided")),
            pl.col("flags_accepted").alias(t("triage.stats.accepted")),
            (pl.col("accepted_share") * 100).round(1).alias(t("triage.stats.accepted_share")),
            pl.col("disagreements").alias(t("triage.stats.disagreements")),
        ).to_arrow(),
        hide_index=True,
        key=f"{key}_table",
    )
