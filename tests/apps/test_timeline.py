"""The timeline's page logic with Streamlit's AppTest, on timeline rows of every kind as the gold
job writes them (structured fields; words come from the catalogue at display): the picture's
lanes, bars spanning the days supplied and zoom controls, the list by year (newest first), the
kind filter, the search by words, and choosing an item (in the picture, the list or the box)
opening its details; in English, no project word in Korean."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from apps.common.timeline import describe, figure, picked
from lakehouse import buckets
from lakehouse.catalog import table

KEY = "C" + "3a" * 16
HANGUL = re.compile("[가-힣]")
REFS = {
    "visit": "silver.claims:S1",
    "admission": "silver.claims:S2",
    "diagnosis": "silver.diagnoses:S1:D1:1",
    "prescription": "silver.prescriptions:S1:D1:1",
    "dispensing": "silver.dispensings:P1:D2:1",
    "imaging": "silver.imaging_studies:1.2.3",
    "measurement": "silver.centre_measurements:M1:speed_m_s:",
    "old": "silver.diagnoses:S0:D0:1",
}
CLINIC = "빛고을내과의원"
PHARMACY = "무등약국"
# A clinic visit for hypertension, as the claims deliver it.
CLINIC_VISIT: dict[str, Any] = {
    "code": "I10",
    "name": "본태성(일차성) 고혈압",
    "form_type": "031",
    "department": "01",
    "days": 1,
    "amount": 18000,
    "patient_amount": 5400,
}


def sample_rows() -> pl.DataFrame:
    """One citizen's timeline: each kind once in 2025, an older diagnosis in 2012."""
    common = {"citizen_key": KEY, "key_bucket": buckets.key_bucket(KEY)}
    clinic = {"institution": "12345678", "institution_name": CLINIC}
    medicine = {"code": "107601ATB", "name": "암로디핀베실산염 5 mg", "dose": 1.0, "per_day": 1}
    rows: list[dict[str, Any]] = [
        {
            **clinic,
            "event_date": date(2025, 3, 4),
            "end_date": date(2025, 3, 4),
            "kind": "visit",
            **CLINIC_VISIT,
            "source_ref": REFS["visit"],
        },
        {
            "institution": "87654321",
            "institution_name": "광주종합병원",
            "event_date": date(2025, 5, 2),
            "end_date": date(2025, 5, 6),
            "kind": "admission",
            "code": "J18.9",
            "name": "상세불명의 폐렴",
            "form_type": "021",
            "department": "01",
            "days": 5,
            "amount": 900000,
            "patient_amount": 180000,
            "source_ref": REFS["admission"],
        },
        {
            **clinic,
            "event_date": date(2025, 3, 4),
            "kind": "diagnosis",
            "code": "I10",
            "name": "본태성(일차성) 고혈압",
            "role": "main",
            "source_ref": REFS["diagnosis"],
        },
        {
            **clinic,
            **medicine,
            "event_date": date(2025, 3, 4),
            "end_date": date(2025, 4, 2),
            "kind": "prescription",
            "days": 30,
            "amount": 11100,
            "prescription_no": "20250304001",
            "source_ref": REFS["prescription"],
        },
        {
            **medicine,
            "institution": "11112222",
            "institution_name": PHARMACY,
            "event_date": date(2025, 3, 5),
            "end_date": date(2025, 4, 3),
            "kind": "dispensing",
            "days": 30,
            "amount": 11100,
            "prescriber": "12345678",
            "prescriber_name": CLINIC,
            "source_ref": REFS["dispensing"],
        },
        {
            **clinic,
            "event_date": date(2025, 6, 1),
            "kind": "imaging",
            "code": "CR",
            "name": "CHEST PA",
            "study_uid": "1.2.3",
            "ai_service": "chest",
            "ai_finding": "lung_opacity",
            "ai_score": 0.82,
            "ai_positive": True,
            "source_ref": REFS["imaging"],
        },
        {
            "event_date": date(2025, 6, 3),
            "kind": "measurement",
            "code": "speed_m_s",
            "device": "gait",
            "value": 0.92,
            "unit": "m/s",
            "source_ref": REFS["measurement"],
        },
        {
            **clinic,
            "event_date": date(2012, 8, 20),
            "kind": "diagnosis",
            "code": "E11.9",
            "name": "합병증을 동반하지 않은 2형 당뇨병",
            "role": "sub",
            "source_ref": REFS["old"],
        },
    ]
    schema = table("gold.citizen_timeline").polars_schema()
    return pl.DataFrame([{**common, **r} for r in rows], schema=schema).drop("key_bucket")


def _page(language: str) -> None:
    import streamlit as st

    from apps.common import views
    from tests.apps.test_timeline import sample_rows

    st.session_state.setdefault("lang", language)
    views.timeline(sample_rows(), key="tl")


def run(language: str = "ko") -> AppTest:
    at = AppTest.from_function(_page, args=(language,), default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    return at


def spec(at: AppTest) -> dict[str, Any]:
    (chart,) = at.get("plotly_chart")
    return dict(json.loads(chart.proto.spec))


def listed(at: AppTest) -> list[str]:
    """The list's rows, year by year, as (date, kind, title, place) strings."""
    return [" | ".join(map(str, r)) for frame in at.dataframe for r in frame.value.values.tolist()]


def texts(at: AppTest) -> str:
    parts = [e.value for e in (*at.subheader, *at.caption, *at.markdown)]
    parts += [getattr(e, "value", "") for e in at.get("text")]
    return "\n".join(str(p) for p in parts)


def test_the_list_has_years_as_headings_newest_first() -> None:
    at = run()
    years = [h.value for h in at.subheader]
    assert years == ["2025", "2012"]
    assert [len(frame.value) for frame in at.dataframe] == [7, 1]
    first = listed(at)[0]
    assert first.startswith("2025년 6월 3일") and "보행 속도" in first  # newest first
    assert "2012년 8월 20일" in listed(at)[-1]


def test_the_picture_has_lanes_a_time_axis_zoom_and_medicines_as_spans() -> None:
    figure = spec(at := run())
    layout = figure["layout"]
    assert layout["xaxis"]["type"] == "date"
    assert layout["xaxis"]["rangeslider"]["visible"] is True
    buttons = layout["xaxis"]["rangeselector"]["buttons"]
    assert [(b.get("count"), b["step"]) for b in buttons] == [
        (1, "month"),
        (6, "month"),
        (1, "year"),
        (5, "year"),
        (None, "all"),
    ]
    # Lanes from the top (plotly draws the category array bottom up), then the medicine's row.
    rows = list(reversed(layout["yaxis"]["categoryarray"]))
    assert rows == [
        "진료·입원: 광주종합병원",
        "진료·입원: 빛고을내과의원",
        "진단",
        "영상검사",
        "검진·센터",
        "암로디핀베실산염 5 mg",
    ]
    traces = {trace["name"]: trace for trace in figure["data"]}
    rx = traces["처방"]
    assert rx["type"] == "bar" and rx["orientation"] == "h"
    assert rx["base"] == ["2025-03-04"] and rx["x"] == [30 * 86_400_000]  # 30 days supplied
    assert traces["조제"]["marker"]["pattern"]["shape"] == "/"  # not told by colour alone
    assert traces["영상검사"]["marker"]["symbol"] == ["square-x"]  # beyond the threshold
    symbols = {traces[k]["marker"]["symbol"][0] for k in ("진료", "진단", "측정")}
    assert len(symbols) == 3
    assert all(t["customdata"] for t in figure["data"])  # each item opens by its reference
    assert not at.exception


def test_filter_by_kind_narrows_the_picture_and_the_list() -> None:
    at = run()
    at.multiselect(key="tl_kinds.ko").set_value(["diagnosis"]).run()
    assert "2건" in texts(at)
    assert all(" | 진단 | " in row for row in listed(at))
    assert [t["name"] for t in spec(at)["data"]] == ["진단"]


@pytest.mark.parametrize(
    ("words", "found"),
    [
        ("암로디핀", {"처방", "조제"}),  # a medicine
        ("고혈압", {"진료", "진단"}),  # a diagnosis
        (PHARMACY, {"조제"}),  # an institution
        ("폐렴 종합병원", {"입원"}),  # every word must match
    ],
)
def test_search_by_words_finds_diagnoses_medicines_and_institutions(
    words: str, found: set[str]
) -> None:
    at = run()
    at.text_input(key="tl_search").input(words).run()
    kinds = {row.split(" | ")[1] for row in listed(at)}
    assert kinds == found


def test_choosing_an_item_opens_its_details() -> None:
    at = run()
    assert "KRW" not in texts(at) and "11,100원" not in texts(at)  # nothing open yet
    at.selectbox(key="tl_open.ko").select(REFS["dispensing"]).run()
    shown = texts(at)
    assert "암로디핀베실산염 5 mg" in [h.value for h in at.subheader]
    assert "1회 1 · 하루 1번 · 30일분 (2025년 4월 3일까지)" in shown
    assert f"처방한 곳: {CLINIC}" in shown and PHARMACY in shown
    # An imaging study's details carry its AI result in words and the reference-model label.
    at.selectbox(key="tl_open.ko").select(REFS["imaging"]).run()
    shown = texts(at)
    assert "점수 82/100" in shown and "기준 이상" in shown
    assert "합성 데이터로 학습" in shown


def test_a_choice_in_the_picture_or_the_list_opens_it() -> None:
    event = {"selection": {"points": [{"customdata": [REFS["admission"]], "x": "2025-05-02"}]}}
    assert picked(event) == REFS["admission"]
    assert picked({"selection": {"points": []}}) is None and picked(None) is None
    at = run()
    at.session_state["tl_chart"] = event  # what Streamlit keeps for the chart's selection
    at.run()
    assert at.selectbox(key="tl_open.ko").value == REFS["admission"]
    assert "2025년 5월 2일부터 2025년 5월 6일까지" in texts(at)
    at.session_state["tl_year_2012"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    assert at.selectbox(key="tl_open.ko").value == REFS["old"]
    assert "부진단" in texts(at)


def test_in_english_only_delivered_names_are_korean() -> None:
    at = run("en")
    delivered = (CLINIC, PHARMACY, "광주종합병원")
    rows = listed(at)
    assert any("Amlodipine" in r or "amlodipine" in r for r in rows)
    assert any("Hypertension" in r or "hypertension" in r for r in rows)
    for row in rows:
        kept = row
        for name in delivered:
            kept = kept.replace(name, "")
        assert not HANGUL.search(kept), row
    at.selectbox(key="tl_open.en").select(REFS["measurement"]).run()
    shown = texts(at)
    assert "Gait speed" in shown and "0.92 m/s · Gait analysis" in shown
    assert not HANGUL.search(shown.replace(CLINIC, "")), shown


def _visits(places: dict[str, int]) -> pl.DataFrame:
    """Visits of one citizen: ``count`` visits at each named place, a day apart."""
    rows: list[dict[str, Any]] = []
    for n, (place, count) in enumerate(places.items()):
        for k in range(count):
            rows.append(
                {
                    "citizen_key": KEY,
                    "institution": f"{n:08d}",
                    "institution_name": place,
                    "event_date": date(2025, 1 + n, 1 + k),
                    "end_date": date(2025, 1 + n, 1 + k),
                    "kind": "visit",
                    **CLINIC_VISIT,
                    "source_ref": f"silver.claims:V{n}-{k}",
                }
            )
    schema = table("gold.citizen_timeline").polars_schema()
    return pl.DataFrame(rows, schema=schema).drop("key_bucket")


def _figure_of(rows: pl.DataFrame) -> dict[str, Any]:
    return dict(figure(describe(rows)).to_plotly_json())


def _lanes(figure_spec: dict[str, Any]) -> list[str]:
    return list(reversed(figure_spec["layout"]["yaxis"]["categoryarray"]))


def test_visits_and_admissions_have_a_lane_per_institution_most_visited_first() -> None:
    places = {"가나내과의원": 1, "다라병원": 4, "마바의원": 2, "사아약국": 3, "자차한의원": 1}
    spec = _figure_of(_visits(places))
    care = [lane for lane in _lanes(spec) if lane.startswith("진료·입원")]
    # The three most visited by name, the other two together: never by colour alone.
    assert care == [
        "진료·입원: 다라병원",
        "진료·입원: 사아약국",
        "진료·입원: 마바의원",
        "진료·입원: 그 밖의 기관",
    ]
    (visits,) = spec["data"]
    lane_of = {ref: lane for (ref,), lane in zip(visits["customdata"], visits["y"], strict=True)}
    assert lane_of["silver.claims:V1-0"] == "진료·입원: 다라병원"
    assert lane_of["silver.claims:V0-0"] == "진료·입원: 그 밖의 기관"
    assert lane_of["silver.claims:V4-0"] == "진료·입원: 그 밖의 기관"
    # One more than the named lanes: each its own lane, no "other places" for one of them.
    four = _lanes(_figure_of(_visits({k: v for k, v in places.items() if k != "자차한의원"})))
    assert "진료·입원: 가나내과의원" in four and "진료·입원: 그 밖의 기관" not in four
    # The sample: the clinic's visit and the hospital's admission each in its own lane.
    (visit,) = [t for t in spec_of_sample()["data"] if t["name"] == "진료"]
    (stay,) = [t for t in spec_of_sample()["data"] if t["name"] == "입원"]
    assert visit["y"] == [f"진료·입원: {CLINIC}"] and stay["y"] == ["진료·입원: 광주종합병원"]


def spec_of_sample() -> dict[str, Any]:
    return _figure_of(sample_rows())


def _measurements(per_day: dict[date, int]) -> pl.DataFrame:
    codes = ["speed_m_s", "cadence_spm", "stride_m", "sbp_mmhg"]
    rows = [
        {
            "citizen_key": KEY,
            "event_date": when,
            "kind": "measurement",
            "code": codes[k],
            "device": "gait",
            "value": 1.0 + k,
            "unit": "m/s",
            "source_ref": f"silver.centre_measurements:{when}:{codes[k]}:",
        }
        for when, count in per_day.items()
        for k in range(count)
    ]
    schema = table("gold.citizen_timeline").polars_schema()
    return pl.DataFrame(rows, schema=schema).drop("key_bucket")


def test_centre_measurements_are_one_marker_per_day_that_opens_the_days_measurements() -> None:
    rows = _measurements({date(2025, 6, 3): 4, date(2025, 7, 1): 1})
    (centre,) = _figure_of(rows)["data"]
    assert list(centre["x"]) == [date(2025, 7, 1), date(2025, 6, 3)]  # newest first, one per day
    assert "측정 4건" in centre["hovertext"][1] and "측정 1건" in centre["hovertext"][0]
    # The day's marker opens one measurement, with the other three of that day beside it.
    (first,) = centre["customdata"][1]
    event = {"selection": {"points": [{"customdata": [first]}]}}

    def page() -> None:
        from datetime import date

        import streamlit as st

        from apps.common import views
        from tests.apps.test_timeline import _measurements

        views.timeline(_measurements({date(2025, 6, 3): 4, date(2025, 7, 1): 1}), key="tl")
        st.session_state.setdefault("lang", "ko")

    at = AppTest.from_function(page, default_timeout=30)
    at.session_state["tl_chart"] = event
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="tl_open.ko").value == first
    shown = texts(at)
    assert "같은 날의 측정" in shown
    others = [r for r in rows["source_ref"].to_list()[:4] if r != first]
    assert len(others) == 3 and shown.count(" · 보행 분석") >= 4, shown


def test_lane_names_stand_above_their_items_across_the_plot_in_large_text() -> None:
    from apps.common.theme import CHART_PX

    def page() -> None:
        import streamlit as st

        from apps.common import views
        from apps.common.theme import LARGE_KEY
        from tests.apps.test_timeline import sample_rows

        st.session_state.setdefault("lang", "ko")
        st.session_state.setdefault(LARGE_KEY, True)
        views.timeline(sample_rows(), key="tl")

    at = AppTest.from_function(page, default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    layout = spec(at)["layout"]
    # Not on the axis (plotly centres tick labels on the items, and beside the plot they took a
    # phone's width): one name per lane, from the plot's left edge, its foot above the items.
    assert layout["yaxis"]["showticklabels"] is False
    names = {a["y"]: a for a in layout["annotations"]}
    assert list(names) == list(reversed(layout["yaxis"]["categoryarray"]))
    for name in names.values():
        assert (name["xref"], name["x"], name["xanchor"]) == ("paper", 0, "left")
        assert name["yanchor"] == "bottom" and name["yshift"] > 16 / 2  # over a marker's top
        assert name["font"]["size"] == CHART_PX[True]
        assert len(name["text"]) * CHART_PX[True] <= 340  # one line at a phone's width
    assert names["암로디핀베실산염 5 mg"]["text"] == "암로디핀베실산염 5 mg"


def test_the_picture_opens_on_the_last_two_years_and_the_slider_covers_all() -> None:
    layout = spec_of_sample()["layout"]
    first, last = (date.fromisoformat(d) for d in layout["xaxis"]["range"])
    assert date(2023, 6, 1) < first < date(2024, 1, 1) and last > date(2025, 6, 3)
    assert layout["xaxis"]["rangeslider"]["visible"] is True  # the 2012 diagnosis is there


def test_the_time_axis_writes_dates_in_numbers_at_every_zoom() -> None:
    """Plotly's own date labels name months in English ("Jan 2026"), even on a Korean screen:
    the axis formats every zoom level itself, in numbers only."""
    stops = spec_of_sample()["layout"]["xaxis"]["tickformatstops"]
    formats = [s["value"] for s in stops]
    assert formats == ["%Y.%m.%d", "%Y.%m", "%Y"]
    assert not any(code in f for f in formats for code in ("%b", "%B", "%a", "%A"))
    ranges = [s["dtickrange"] for s in stops]
    assert ranges[0][0] is None and ranges[-1][1] is None  # every zoom is covered


def test_a_long_lane_name_keeps_the_institutions_name_whole() -> None:
    from apps.common.timeline import _fitted

    long_place = "빛고을전남대학교병원부설의원"  # 14 glyphs: with "진료·입원: " over a phone's line
    assert _fitted(f"진료·입원: {long_place}", long_place, 330 / 21) == long_place
    assert _fitted("진료·입원: 365병원", "365병원", 330 / 21) == "진료·입원: 365병원"
    # Only a name no line holds is cut, with an ellipsis.
    cut = _fitted("에스오메프라졸마그네슘삼수화물 20 mg", None, 330 / 21)
    assert cut.endswith("…") and len(cut) == 15
