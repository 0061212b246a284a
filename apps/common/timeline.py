"""A person's lifetime timeline as people read it: a picture with a real time axis and one lane
per kind of event, a list of the same events by year, and the details of whichever item is
chosen (``show``; the citizen's own timeline and a clinician's patient).

The gold table (``gold.citizen_timeline``) stores codes and numbers; every word shown is made
here, in the session's language, from the message catalogue and the code lists (``describe``),
after the read and in Python, never inside Polars. Only the names delivered with the data (a
diagnosis's or drug's Korean name when the list has no English one, an institution's name, a
study's description) appear as they were delivered.

The picture (``figure``), drawn by plotly.js in the browser, where a phone spends most of the
page's time (measured in docs/benchmarks.md), so it holds one trace per kind and one marker per
day where a day holds many items:
* lanes from the top: visits and admissions, one lane per institution for the most visited
  (``CARE_LANES``, the rest in one "other places" lane), each named for its institution;
  diagnoses; imaging with its AI result; check-ups and centre visits, one marker per day that
  opens that day's measurements; then one row per medicine, each prescription and each
  dispensing a bar spanning the days it supplies, so medicines taken at the same time stand
  one above the other and a second supply of the same medicine overlaps on its row;
* each lane's name stands above its items, inside the plot, across its whole width (beside the
  plot, names in large text left it a few pixels wide at 390 px);
* each kind has its own marker shape or bar pattern and its name in the legend and the hover
  text: meaning is never carried by colour alone;
* it opens on the last ``WINDOW_DAYS`` (a phone cannot show twenty years legibly); zoom by range
  buttons (a month, six months, a year, five years, everything) and a range slider under the
  axis; choosing an item (a tap, ``on_select="rerun"``) opens its details.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import Any, Final

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from apps.common.i18n import NOTHING, Lang, day, days, keyed, lang, number, t, word
from apps.common.theme import BACKGROUND, CHART_PX, apply, large
from lakehouse.catalog.gold import KINDS
from lakehouse.reference import codes

# Lanes from the top of the picture; medicines follow, one row each.
LANES: Final = ("care", "diagnosis", "imaging", "centre")
LANE_OF: Final = {
    "visit": "care",
    "admission": "care",
    "diagnosis": "diagnosis",
    "imaging": "imaging",
    "measurement": "centre",
}
MEDICINES: Final = ("prescription", "dispensing")
CARE: Final = ("visit", "admission")
# Marker shapes of the point kinds (an AI result beyond its threshold gets a crossed square).
SYMBOLS: Final = {
    "visit": "circle",
    "diagnosis": "diamond",
    "imaging": "square",
    "measurement": "triangle-up",
}
FLAGGED: Final = "square-x"
PATTERNS: Final = {"admission": "", "prescription": "", "dispensing": "/"}
DAY_MS: Final = 86_400_000
WINDOW_DAYS: Final = 2 * 365  # the picture opens on the last two years
PAD_DAYS: Final = 15  # room after the last item, so its marker is not cut in half
CARE_LANES: Final = 3  # institutions with a visits lane of their own; the rest share one
MARKER_PX: Final = 16  # a point's marker: large enough to tap
LABEL_GAP_PX: Final = 10  # from a lane's centre (its items) up to the foot of its name
# The plot's width on a phone (390 px less the page's padding) over a Hangul glyph's width
# (1 em): a lane's name is cut to fit on one line (the whole name is in the hover and the list).
PHONE_PLOT_PX: Final = 330
EVENT_COLUMNS: Final = (
    "ref",
    "kind",
    "start",
    "end",
    "row",
    "title",
    "detail",
    "place",
    "flagged",
    "text",
)
EVENT_SCHEMA: Final[dict[str, pl.DataType]] = {
    c: {"start": pl.Date(), "end": pl.Date(), "flagged": pl.Boolean()}.get(c, pl.Utf8())
    for c in EVENT_COLUMNS
}
SPECIMEN_FROM: Final = date(2025, 1, 1)  # the made-up timeline of ``specimen``


DATE_TICKS: Final = (
    {"dtickrange": [None, "M1"], "value": "%Y.%m.%d"},
    {"dtickrange": ["M1", "M12"], "value": "%Y.%m"},
    {"dtickrange": ["M12", None], "value": "%Y"},
)


@cache
def _list_names(code_list: str, key: str, column: str) -> dict[str, str]:
    frame = codes(code_list)
    return dict(zip(frame[key].to_list(), frame[column].to_list(), strict=True))


def _listed(code_list: str, key: str, code: str | None, language: Lang) -> str | None:
    """A code's name from a code list in ``language`` (``name_ko``/``name_en``)."""
    if code is None:
        return None
    return _list_names(code_list, key, f"name_{language}").get(code)


def _drug(code: str | None, delivered: str | None, language: Lang) -> str:
    """A drug's name: the list's English name and strength in English, the delivered Korean
    name in Korean; the code only when neither is known."""
    if language == "en" and code is not None:
        english = _list_names("drugs", "gnl_nm_cd", "name_en").get(code)
        strength = _list_names("drugs", "gnl_nm_cd", "strength").get(code)
        if english:
            return f"{english} {strength}" if strength else english
    return delivered or t("timeline.unnamed", language, code=code or NOTHING)


def _diagnosis(code: str | None, delivered: str | None, language: Lang) -> str:
    """A KCD code's name in ``language``, with the code (clinicians read it)."""
    if code is None:
        return NOTHING
    english = _listed("kcd", "code", code.replace(".", ""), language) if language == "en" else None
    return f"{english or delivered or t('timeline.unnamed', language, code=code)} ({code})"


def context_name(context: str | None, language: Lang | None = None) -> str:
    """A centre measurement's condition (a balance condition, the EMG protocol) or channel in
    words (``vastus_lateralis L``: the muscle and the side), in ``language`` (the session's
    by default)."""
    if not context:
        return ""
    muscle, _, side = context.partition(" ")
    if side:
        muscle_word = word("centre.muscle", muscle, language)
        return f"{muscle_word} ({word('centre.side', side, language)})"
    return word("centre.context", context, language)


def _measure(code: str | None, context: str | None, language: Lang) -> str:
    name = _listed("centre_measures", "code", code, language) or t(
        "timeline.unnamed", language, code=code or NOTHING
    )
    shown = context_name(context, language)
    return f"{name} ({shown})" if shown else name


def _dosage(row: Mapping[str, Any], language: Lang) -> str:
    return t(
        "timeline.detail.dosage",
        language,
        dose=number(row["dose"], 2).rstrip("0").rstrip("."),
        per_day=number(row["per_day"]),
        days=number(row["days"]),
        until=day(row["end_date"], language),
    )


def _ai(row: Mapping[str, Any], language: Lang) -> str:
    """An imaging study's AI result in words: what the service looks for, the score of 100 and
    whether it is beyond the threshold (said in words, not only by a marker)."""
    from apps.common.views import finding_name, service_name

    service = row["ai_service"]
    if service is None:
        return t("timeline.detail.ai_pending", language)
    return t(
        "timeline.detail.ai",
        language,
        service=service_name(service),
        finding=finding_name(service, row["ai_finding"]),
        score=number(None if row["ai_score"] is None else row["ai_score"] * 100),
        verdict=t("timeline.ai.flagged" if row["ai_positive"] else "timeline.ai.clear", language),
    )


def _words(row: Mapping[str, Any], language: Lang) -> tuple[str, str]:
    """One event's title and detail in ``language``."""
    kind = row["kind"]
    if kind in ("visit", "admission"):
        form = _listed("form_types", "fom_tp_cd", row["form_type"], language) or t(
            f"kind.{kind}", language
        )
        where = _listed("departments", "dgsbjt_cd", row["department"], language) or NOTHING
        money = t(
            "timeline.detail.cost",
            language,
            total=number(row["amount"]),
            paid=number(row["patient_amount"]),
        )
        span = (
            t(
                "timeline.detail.stay",
                language,
                start=day(row["event_date"], language),
                end=day(row["end_date"], language),
            )
            if kind == "admission"
            else ""
        )
        care = t("timeline.detail.days_of_care", language, days=number(row["days"]))
        return (
            f"{form} · {_diagnosis(row['code'], row['name'], language)}",
            " · ".join(p for p in (where, span, care, money) if p),
        )
    if kind == "diagnosis":
        return (
            _diagnosis(row["code"], row["name"], language),
            word("timeline.role", row["role"] or "", language),
        )
    if kind in MEDICINES:
        parts = [
            _dosage(row, language),
            t("timeline.detail.amount", language, amount=number(row["amount"])),
        ]
        if kind == "dispensing":
            prescriber = row["prescriber_name"] or NOTHING
            parts.append(t("timeline.detail.prescriber", language, name=prescriber))
        return _drug(row["code"], row["name"], language), " · ".join(parts)
    if kind == "imaging":
        study = " ".join(p for p in (row["code"], row["name"]) if p)
        return study or t("kind.imaging", language), _ai(row, language)
    value = number(row["value"], 2).rstrip("0").rstrip(".") if row["value"] is not None else NOTHING
    device = word("centre.device", row["device"] or "", language)
    return _measure(
        row["code"], row["context"], language
    ), f"{value} {row['unit'] or ''} · {device}"


def describe(rows: pl.DataFrame) -> pl.DataFrame:
    """The events as shown: ``ref`` (the row's ``source_ref``), ``kind``, ``start`` and
    ``end`` (the days it spans; a point event starts and ends on its day), ``row`` (its lane,
    or the medicine's row), ``title``, ``detail``, ``place`` and ``text`` (what a search
    looks in: the shown words and the delivered Korean name), newest first.

    A lifetime is thousands of rows, worded one by one in Python: the session's language is
    looked up once (each lookup is a read of Streamlit's session state), not per word."""
    language = lang()
    out: dict[str, list[Any]] = {c: [] for c in EVENT_COLUMNS}
    lanes = {lane: t(f"timeline.lane.{lane}", language) for lane in LANES}
    kinds = {kind: t(f"kind.{kind}", language) for kind in KINDS}
    centre = t("timeline.centre", language)
    for row in rows.sort("event_date", "source_ref", descending=[True, False]).iter_rows(
        named=True
    ):
        title, detail = _words(row, language)
        kind = row["kind"]
        place = row["institution_name"] or (centre if kind == "measurement" else NOTHING)
        if row.get("partner"):  # a hospital partner's record (docs/partners.md): named as such
            place = t("partners.place", language, name=row["institution_name"] or row["partner"])
        out["ref"].append(row["source_ref"])
        out["kind"].append(kind)
        out["start"].append(row["event_date"])
        out["end"].append(row["end_date"] or row["event_date"])
        out["row"].append(title if kind in MEDICINES else lanes[LANE_OF[kind]])
        out["title"].append(title)
        out["detail"].append(detail)
        out["place"].append(place)
        out["flagged"].append(bool(row["ai_positive"]))
        searched = (title, detail, place, row["name"] or "", row["code"] or "", kinds[kind])
        out["text"].append(" ".join(searched).lower())
    return pl.DataFrame(out, schema=EVENT_SCHEMA)


def narrowed(events: pl.DataFrame, kinds: Iterable[str], words: str) -> pl.DataFrame:
    """The events of the chosen kinds whose words contain every word searched for (a
    diagnosis, a medicine, an institution), case aside."""
    shown = events.filter(pl.col("kind").is_in(list(kinds)))
    for part in words.lower().split():
        shown = shown.filter(pl.col("text").str.contains(part, literal=True))
    return shown


def _hover(frame: pl.DataFrame) -> list[str]:
    return [
        f"<b>{title}</b><br>{when}<br>{place}"
        for title, when, place in frame.select(
            "title", days("start").alias("when"), "place"
        ).iter_rows()
    ]


def _escaped(frame: pl.DataFrame) -> pl.DataFrame:
    """Delivered text made inert for plotly's hover labels (which read a little HTML)."""
    return frame.with_columns(
        pl.col(c).str.replace_all("&", "&amp;").str.replace_all("<", "&lt;")
        for c in ("title", "place", "row")
    )


def care_lanes(events: pl.DataFrame) -> dict[str, str]:
    """The lane of each place of visits and admissions in ``events``: a lane of its own, named
    for it, for each of the ``CARE_LANES`` most visited (all of them when one more would be
    left), one "other places" lane for the rest; most visited first."""
    ranked = (
        events.filter(pl.col("kind").is_in(CARE))
        .group_by("place")
        .len()
        .sort("len", "place", descending=[True, False])["place"]
        .to_list()
    )
    own = ranked if len(ranked) <= CARE_LANES + 1 else ranked[:CARE_LANES]
    other = t("timeline.lane.care_other")
    return {p: t("timeline.lane.care_at", place=p) if p in own else other for p in ranked}


def _centre_days(mine: pl.DataFrame) -> pl.DataFrame:
    """One item per day of centre measurements (a visit there: a check-up or a session on
    several devices), which opens that day's first measurement, with the others beside it; a
    marker each would draw thousands over a lifetime, one on another."""
    per_day = mine.group_by("start", maintain_order=True).agg(
        pl.col("ref", "end", "row", "place").first(), pl.len().alias("count")
    )
    titles = [t("timeline.centre_day", count=number(n)) for n in per_day["count"].to_list()]
    return per_day.with_columns(pl.Series("title", titles, dtype=pl.Utf8()))


def _ems(text: str) -> float:
    """A text's width in ems, about: a Hangul (or other wide) glyph 1, a Latin one 0.6."""
    return sum(1.0 if ord(c) >= 0x1100 else 0.6 for c in text)


def _fitted(name: str, place: str | None, ems: float) -> str:
    """A lane's name on one line of ``ems``: whole; else a visits lane by its place alone;
    else cut, with an ellipsis (the whole name is in the hover and the list)."""
    if _ems(name) <= ems:
        return name
    if place is not None and _ems(place) <= ems:
        return place
    kept = ""
    for c in place or name:
        if _ems(kept + c + "…") > ems:
            break
        kept += c
    return kept + "…"


def _lane_px(font: int) -> int:
    """A lane's height: its items about its centre, the gap, its name's line above them, and
    room for the items of the lane above."""
    return MARKER_PX + LABEL_GAP_PX + round(font * 1.25) + 2


def _window(events: pl.DataFrame) -> list[str]:
    """The x range the picture opens on: the last ``WINDOW_DAYS``, or everything if shorter."""
    pad = timedelta(days=PAD_DAYS)
    ends: list[date] = events["end"].to_list()
    starts: list[date] = events["start"].to_list()
    last = max(ends) + pad
    first = max(min(starts) - pad, last - timedelta(days=WINDOW_DAYS))
    return [first.isoformat(), last.isoformat()]


def figure(events: pl.DataFrame) -> go.Figure:
    """The picture of ``events`` (``describe``, possibly narrowed): lanes of point events,
    then a bar row per medicine; every item carries its ``ref`` as customdata."""
    events = _escaped(events)
    care = care_lanes(events)
    events = events.with_columns(
        pl.when(pl.col("kind").is_in(CARE))
        .then(pl.col("place").replace(care))
        .otherwise(pl.col("row"))
        .alias("row")
    )
    font = CHART_PX[large()]
    lane_px = _lane_px(font)
    # Items' extents in lanes (plotly's unit on a category axis): a marker about the centre,
    # an admission as tall as a marker, a prescription just under the centre and its
    # dispensing just over it, both under the lane's name.
    bar = LABEL_GAP_PX - 1
    spans = {
        "admission": (-MARKER_PX / 2 / lane_px, MARKER_PX / lane_px),
        "prescription": (-(bar + 1) / lane_px, bar / lane_px),
        "dispensing": (0.0, bar / lane_px),
    }
    traces: list[go.Bar | go.Scatter] = []
    for kind in KINDS:
        mine = events.filter(pl.col("kind") == kind)
        if mine.is_empty():
            continue
        if kind == "measurement":
            mine = _centre_days(mine)
        name = t(f"kind.{kind}")
        refs = [[r] for r in mine["ref"].to_list()]
        if kind in PATTERNS:  # spans: admissions and medicines
            length = ((mine["end"] - mine["start"]).dt.total_days() + 1) * DAY_MS
            offset, width = spans[kind]
            traces.append(
                go.Bar(
                    name=name,
                    orientation="h",
                    base=[d.isoformat() for d in mine["start"].to_list()],
                    x=length.to_list(),
                    y=mine["row"].to_list(),
                    customdata=refs,
                    hovertext=_hover(mine),
                    hoverinfo="text",
                    marker={"pattern": {"shape": PATTERNS[kind]}, "line": {"width": 1}},
                    opacity=0.75,
                    width=width,
                    offset=offset,
                )
            )
            continue
        symbols = [SYMBOLS[kind]] * mine.height
        if kind == "imaging":
            symbols = [FLAGGED if f else SYMBOLS[kind] for f in mine["flagged"].to_list()]
        traces.append(
            go.Scatter(
                name=name,
                mode="markers",
                x=mine["start"].to_list(),
                y=mine["row"].to_list(),
                customdata=refs,
                hovertext=_hover(mine),
                hoverinfo="text",
                marker={"symbol": symbols, "size": MARKER_PX, "line": {"width": 1.5}},
            )
        )
    medicines = events.filter(pl.col("kind").is_in(MEDICINES))["row"].unique().sort().to_list()
    present = set(events["row"].to_list())
    lanes = [t(f"timeline.lane.{lane}") for lane in LANES if lane != "care"]
    rows = list(dict.fromkeys(care.values())) + [r for r in lanes if r in present] + medicines
    # Each lane's name above its items, from the plot's left edge across its width: beside the
    # plot, the names took all of a phone's width in large text and left the plot a few pixels
    # wide; drawn on the axis's ticks, plotly centres them on the items.
    ems = PHONE_PLOT_PX / font
    other = t("timeline.lane.care_other")
    place_of = {lane: place for place, lane in care.items() if lane != other}
    names = [
        {
            "text": _fitted(row, place_of.get(row), ems),
            "xref": "paper",
            "x": 0,
            "xanchor": "left",
            "yref": "y",
            "y": row,
            "yanchor": "bottom",
            "yshift": LABEL_GAP_PX,
            "showarrow": False,
            "bgcolor": BACKGROUND,
            "font": {"size": font},
        }
        for row in rows
    ]
    # The layout and its axes first, in the platform's theme (``apply``), then the lane names
    # and the items: plotly validates every update against everything the figure already
    # holds, and themed after them the picture took three times as long to build.
    fig = go.Figure(
        layout={
            "barmode": "overlay",
            "height": 240 + lane_px * (len(rows) + 1),
            # The legend under the range slider, where it may wrap at a phone's width.
            "legend": {"orientation": "h", "yanchor": "top", "y": -0.3, "x": 0},
            "hovermode": "closest",
            "clickmode": "event+select",
            "margin": {"l": 10, "r": 10, "t": 50, "b": 10},
            "yaxis": {
                "categoryorder": "array",
                "categoryarray": list(reversed(rows)),
                # Room above the top lane for its name.
                "range": [-0.5, len(rows) - 0.5 + (lane_px - MARKER_PX) / lane_px],
                "showticklabels": False,
                "ticks": "",
                "showgrid": False,
                "fixedrange": True,
            },
            "xaxis": {
                "type": "date",
                "range": _window(events),
                # Dates in numbers at every zoom (plotly's own labels name months in English,
                # "Jan 2026", on a Korean screen): a year, a year and month, a day.
                "tickformatstops": DATE_TICKS,
                "rangeslider": {"visible": True, "thickness": 0.08},
                "rangeselector": {
                    "buttons": [
                        {
                            "count": 1,
                            "step": "month",
                            "stepmode": "backward",
                            "label": t("timeline.zoom.month"),
                        },
                        {
                            "count": 6,
                            "step": "month",
                            "stepmode": "backward",
                            "label": t("timeline.zoom.half"),
                        },
                        {
                            "count": 1,
                            "step": "year",
                            "stepmode": "backward",
                            "label": t("timeline.zoom.year"),
                        },
                        {
                            "count": 5,
                            "step": "year",
                            "stepmode": "backward",
                            "label": t("timeline.zoom.five"),
                        },
                        {"step": "all", "label": t("timeline.zoom.all")},
                    ],
                    "yanchor": "bottom",
                    "y": 1.01,
                },
            },
        }
    )
    apply(fig)
    fig.update_layout(annotations=names)
    return fig.add_traces(traces)


def specimen() -> go.Figure:
    """The picture of a made-up timeline, one item of each kind a month apart (no one's
    record, words from the catalogue only): what the sign-in page draws out of sight so that
    the browser is ready to draw a real one (``apps.common.layout.warm_charts``)."""
    medicine = t("kind.prescription")
    items = []
    for n, kind in enumerate(KINDS):
        start = SPECIMEN_FROM + timedelta(days=30 * n)
        name = t(f"kind.{kind}")
        items.append(
            {
                "ref": kind,
                "kind": kind,
                "start": start,
                "end": start + timedelta(days=29) if kind in PATTERNS else start,
                "row": medicine if kind in MEDICINES else t(f"timeline.lane.{LANE_OF[kind]}"),
                "title": medicine if kind in MEDICINES else name,
                "detail": "",
                "place": name,
                "flagged": kind == "imaging",
                "text": "",
            }
        )
    return figure(pl.DataFrame(items, schema=EVENT_SCHEMA))


def picked(selection: Any) -> str | None:
    """The ``ref`` of the item chosen in the picture (Streamlit's plotly selection state),
    or None."""
    points = ((selection or {}).get("selection") or {}).get("points") or []
    for point in points:
        data = point.get("customdata")
        if data:
            return str(data[0] if isinstance(data, list) else data)
    return None


@dataclass(frozen=True)
class Keys:
    """The widget keys of one timeline on a page."""

    base: str

    @property
    def chart(self) -> str:
        return f"{self.base}_chart"

    @property
    def opened(self) -> str:
        return f"{self.base}_opened"

    @property
    def seen(self) -> str:
        return f"{self.base}_seen"

    @property
    def select(self) -> str:
        return keyed(f"{self.base}_open")

    def year(self, year: int) -> str:
        return f"{self.base}_year_{year}"


def _years(events: pl.DataFrame) -> list[tuple[int, pl.DataFrame]]:
    """The events by year, newest year first, each newest first."""
    with_year = events.with_columns(pl.col("start").dt.year().alias("_year"))
    years = sorted(set(with_year["_year"].to_list()), reverse=True)
    return [(y, with_year.filter(pl.col("_year") == y).drop("_year")) for y in years]


def _follow(keys: Keys, events: pl.DataFrame) -> None:
    """Open the item chosen since the last run, in the picture or in a year's list: each
    widget's selection is remembered, so only a new choice opens (an old one stays put when
    another is chosen elsewhere)."""
    seen: dict[str, str | None] = st.session_state.setdefault(keys.seen, {})
    chosen = {
        keys.chart: picked(st.session_state.get(keys.chart)),
        keys.select: st.session_state.get(keys.select),
    }
    for year, frame in _years(events):
        state = st.session_state.get(keys.year(year)) or {}
        rows = (state.get("selection") or {}).get("rows") or []
        refs = frame["ref"].to_list()
        chosen[keys.year(year)] = refs[rows[0]] if rows and rows[0] < len(refs) else None
    for widget, ref in chosen.items():
        if ref is not None and seen.get(widget) != ref:
            st.session_state[keys.opened] = ref
        seen[widget] = ref
    # The "open an item" box shows what is open, whichever way it was chosen.
    opened = st.session_state.get(keys.opened)
    st.session_state[keys.select] = opened if opened in set(events["ref"].to_list()) else None
    seen[keys.select] = st.session_state[keys.select]


def _details(event: Mapping[str, Any], shown: pl.DataFrame) -> None:
    """The chosen item: what, when, where, and its details; an AI result with its label; a
    centre measurement with the others of its day (the picture's marker for that day opens
    its first)."""
    with st.container(border=True):
        st.subheader(event["title"])
        when = day(event["start"])
        if event["end"] != event["start"]:
            when = t("timeline.detail.stay", start=when, end=day(event["end"]))
        st.text(f"{t('kind.' + event['kind'])} · {when}")
        st.text(f"{t('column.institution')}: {event['place']}")
        st.text(event["detail"])
        if event["kind"] == "imaging":
            st.caption(t("triage.synthetic"))
        if event["kind"] == "measurement":
            day_of = shown.filter(
                (pl.col("kind") == "measurement")
                & (pl.col("start") == event["start"])
                & (pl.col("ref") != event["ref"])
            )
            if not day_of.is_empty():
                st.markdown(f"**{t('timeline.same_day')}**")
                st.text(
                    "\n".join(f"{a}: {b}" for a, b in day_of.select("title", "detail").iter_rows())
                )


def show(rows: pl.DataFrame, key: str) -> None:
    """A timeline: kind filter and word search, the picture, the chosen item's details and
    the list by year (newest first); the same ``rows`` (``Access.timeline``) for the citizen
    and for a clinician."""
    if rows.is_empty():
        st.info(t("citizen.timeline.empty"))
        return
    keys = Keys(key)
    events = describe(rows)
    present = [k for k in KINDS if k in set(events["kind"].to_list())]
    left, right = st.columns([1, 1])
    chosen = left.multiselect(
        t("citizen.timeline.kinds"),
        present,
        default=present,
        format_func={k: t(f"kind.{k}") for k in present}.__getitem__,
        key=keyed(f"{key}_kinds"),
    )
    words = right.text_input(
        t("timeline.search"), placeholder=t("timeline.search_hint"), key=f"{key}_search"
    )
    shown = narrowed(events, chosen, words)
    _follow(keys, shown)
    st.caption(t("citizen.timeline.count", count=number(shown.height)))
    if shown.is_empty():
        return
    st.caption(t("timeline.how"))
    picture, listing = st.columns([3, 2])
    with picture:
        st.plotly_chart(
            figure(shown),
            key=keys.chart,
            theme=None,  # the platform's template (apps/common/theme.py), not Streamlit's sizes
            on_select="rerun",
            selection_mode="points",
            # No mode bar: at a phone's width it lies over the range buttons and takes their
            # taps; the buttons and the range slider zoom.
            config={"displaylogo": False, "displayModeBar": False},
        )
        refs = shown["ref"].to_list()
        kinds = {k: t(f"kind.{k}") for k in present}
        labels = {
            ref: f"{when} · {kinds[kind]} · {title}"
            for ref, when, kind, title in shown.select(
                "ref", days("start"), "kind", "title"
            ).iter_rows()
        }
        choice = st.selectbox(
            t("timeline.open"),
            refs,
            index=None,
            format_func=labels.__getitem__,
            placeholder=t("timeline.open_hint"),
            key=keys.select,
        )
        if choice is not None:
            _details(shown.row(refs.index(choice), named=True), shown)
    with listing:
        kind_words = {k: t(f"kind.{k}") for k in KINDS}
        for year, frame in _years(shown):
            st.subheader(str(year))
            st.dataframe(
                frame.select(
                    days("start").alias(t("column.date")),
                    pl.col("kind").replace_strict(kind_words).alias(t("column.kind")),
                    pl.col("title").alias(t("column.title")),
                    pl.col("place").alias(t("column.institution")),
                ).to_arrow(),
                hide_index=True,
                on_select="rerun",
                selection_mode="single-row",
                key=keys.year(year),
            )
