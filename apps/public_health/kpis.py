"""How the programme's KPIs read, in the session's language: the cards, the trends and the
monthly report say a figure, its target, its change and its freshness the same way.

A target is either the city's (the seed article, quoted) or this deployment's own setting, and
every text of a target says which: an invented target is never shown as the city's.
"""

from __future__ import annotations

from typing import Final

from apps.common.i18n import Lang, moment, number, t
from apps.common.i18n import day as day_text
from lakehouse.access.health import Freshness
from lakehouse.access.programme import (
    FINDINGS,
    INSTITUTIONS,
    ROUND,
    UPTAKE,
    Kpi,
    Target,
    Unit,
    source,
    targets,
)

# What each KPI's value counts (a round's, like ``institutions``).
UNITS: Final[dict[str, Unit]] = {
    "app_users": "people",
    "active_users": "per_day",
    "centre_visits": "per_day",
    "institutions": "institutions",
    "ai_services": "services",
    "ai_studies": "studies",
}
HIDDEN_KEY: Final = "official.uptake.suppressed"
# Each source table by the group of KPIs it feeds (the overview's headings).
GROUPS: Final = {
    UPTAKE: "official.overview.citizens",
    INSTITUTIONS: "official.overview.institutions",
    FINDINGS: "official.overview.services",
}


def unit(kpi: str) -> Unit:
    """The unit of a KPI's value."""
    return UNITS["institutions" if kpi.startswith(ROUND) else kpi]


def name(kpi: str, language: Lang | None = None) -> str:
    """A KPI's name (a round's with its number)."""
    if kpi.startswith(ROUND):
        return t("kpi.institutions_round", language, round=kpi.removeprefix(ROUND))
    return t(f"kpi.{kpi}", language)


def hidden(language: Lang | None = None) -> str:
    """The one mark of a suppressed figure, as on the uptake page."""
    return "◆ " + t(HIDDEN_KEY, language)


def percent(share: float) -> str:
    """A share as a percentage: ``12.3%``."""
    return f"{share * 100:,.1f}%"


def amount(value: float, of: Unit, language: Lang | None = None) -> str:
    """A figure in its unit: ``1,234명``, ``하루 12.5명``, ``주민의 4.1%``."""
    if of == "share":
        return t("kpi.unit.share", language, value=percent(value))
    digits = 1 if of == "per_day" and value != round(value) else 0
    return t(f"kpi.unit.{of}", language, value=number(value, digits))


def compared(kpi: str, figure: float) -> str:
    """A figure as it is set against the KPI's target, bare (a trend's point, a report's
    column): a percentage for a share target, else the number."""
    goal = targets().get(kpi)
    if goal is not None and goal.unit == "share":
        return percent(figure)
    return number(figure, 1 if unit(kpi) == "per_day" else 0)


def value(kpi: Kpi, language: Lang | None = None) -> str:
    """The card's figure, or the suppressed mark."""
    if kpi.value is None:
        return hidden(language)
    return amount(kpi.value, unit(kpi.kpi), language)


def share(kpi: Kpi, language: Lang | None = None) -> str | None:
    """The figure as a share of the residents, where it has one."""
    return None if kpi.share is None else t("kpi.share", language, percent=percent(kpi.share))


def target(goal: Target | None, kpi: str, language: Lang | None = None) -> str:
    """The target and whose it is: the city's, or this deployment's own setting."""
    if goal is None:
        note = t("kpi.target.round_note", language) if kpi.startswith(ROUND) else ""
        return " ".join(filter(None, (t("kpi.target.none", language), note)))
    said = amount(goal.value, goal.unit, language)
    if not goal.sourced:
        return t("kpi.target.deployment", language, target=said)
    text = t("kpi.target.source", language, target=said)
    return f"{text} {t('kpi.target.centre_note', language)}" if kpi == "centre_visits" else text


def quote(goal: Target | None, language: Lang | None = None) -> str | None:
    """The source's sentence behind a city's target, with the article it is from."""
    if goal is None or not goal.quote:
        return None
    found = source()
    return t(
        "kpi.target.quote",
        language,
        publisher=found["publisher"],
        title=found["title"],
        quote=goal.quote,
    )


def progress(kpi: Kpi, language: Lang | None = None) -> str | None:
    """How far the figure is toward its target, where both are known."""
    if kpi.target is None or kpi.compared is None or not kpi.target.value:
        return None
    return t("kpi.progress", language, percent=percent(kpi.compared / kpi.target.value))


def signed(change: float, of: Unit) -> str:
    """A change with its sign always written (never told by colour alone)."""
    digits = 1 if of == "per_day" else 0
    text = number(abs(change), digits)
    if round(change, digits) == 0:
        return text
    return f"+{text}" if change > 0 else f"−{text}"


def change(kpi: Kpi, language: Lang | None = None) -> str:
    """The change since the previous month, in words."""
    if kpi.change is None:
        return t("kpi.no_change", language)
    return t("kpi.change", language, change=signed(kpi.change, unit(kpi.kpi)))


def fresh(found: Freshness, language: Lang | None = None, source: str | None = None) -> str:
    """How fresh a figure is: the newest day its source holds and its last update (after the
    name of the KPIs' group the ``source`` table feeds, when given)."""
    text = t(
        "kpi.fresh",
        language,
        newest=day_text(found.data_until, language),
        committed=moment(found.built_at, language),
    )
    return f"{t(GROUPS[source], language)}: {text}" if source else text
