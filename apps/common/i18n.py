"""The one message catalogue: Korean first, English second, and Korean formats.

Every string a screen shows comes from ``messages.toml`` through ``t`` (a key missing in either
language fails the tests, not the screen). The language is the session's choice, defaulting to
Korean whatever the browser says: the service is Korean first. Numbers use thousands separators;
dates read ``2025년 3월 4일`` in Korean and ``4 Mar 2025`` in English.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import polars as pl

Lang = Literal["ko", "en"]
LANGS: Final[tuple[Lang, ...]] = ("ko", "en")
DEFAULT: Final[Lang] = "ko"
CATALOGUE: Final = Path(__file__).with_name("messages.toml")
STATE_KEY: Final = "lang"
SEOUL: Final = ZoneInfo("Asia/Seoul")
NOTHING: Final = "–"  # what a missing value shows, in either language
_MONTHS_EN: Final = [
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
]


@cache
def messages() -> dict[str, dict[str, str]]:
    """Every message, by dotted key, with its ``ko`` and ``en`` text."""
    doc = tomllib.loads(CATALOGUE.read_text(encoding="utf-8"))
    flat: dict[str, dict[str, str]] = {}

    def walk(node: dict[str, object], prefix: str) -> None:
        if set(node) <= set(LANGS) and node:
            flat[prefix] = {k: str(v) for k, v in node.items()}
            return
        for name, child in node.items():
            if not isinstance(child, dict):
                raise ValueError(f"{prefix}.{name}: expected a table of ko/en texts")
            walk(child, f"{prefix}.{name}" if prefix else name)

    walk(doc, "")
    return flat


def lang() -> Lang:
    """The session's language (Korean until the person switches)."""
    import streamlit as st

    chosen = st.session_state.get(STATE_KEY, DEFAULT)
    return chosen if chosen in LANGS else DEFAULT


def t(key: str, language: Lang | None = None, **values: object) -> str:
    """The message ``key`` in the session's language, with ``{name}`` fields filled."""
    entry = messages().get(key)
    if entry is None:
        raise KeyError(f"no message {key!r} in {CATALOGUE.name}")
    text = entry[language or lang()]
    return text.format(**values) if values else text


def word(group: str, code: str, language: Lang | None = None) -> str:
    """The catalogue's word for a code of ``group`` (an audit action, a sex), in the session's
    language; a code the catalogue does not know yet shows as itself, so a new code is seen
    rather than failing the page."""
    entry = messages().get(f"{group}.{code}")
    return code if entry is None else entry[language or lang()]


def keyed(name: str) -> str:
    """The key of a widget whose options are shown in the session's language (a
    ``format_func`` that reads the catalogue): one key per language. Streamlit keeps the shown
    words as such a widget's value, so under one key a switch of language would keep the other
    language's words, shown as they are and matching no option."""
    return f"{name}.{lang()}"


def number(value: float | None, digits: int = 0) -> str:
    """``1,234`` (the same in both languages); a dash for nothing."""
    if value is None:
        return NOTHING
    return f"{value:,.{digits}f}"


def day(value: date | datetime | None, language: Lang | None = None) -> str:
    """A date as people read it: ``2025년 3월 4일`` or ``4 Mar 2025``."""
    if value is None:
        return NOTHING
    if (language or lang()) == "ko":
        return f"{value.year}년 {value.month}월 {value.day}일"
    return f"{value.day} {_MONTHS_EN[value.month - 1]} {value.year}"


def moment(value: datetime | None, language: Lang | None = None) -> str:
    """A date and time (minutes) in Korea's time (stored times are UTC); a naive time is
    shown as it is."""
    if value is None:
        return NOTHING
    if value.tzinfo is not None:
        value = value.astimezone(SEOUL)
    return f"{day(value, language)} {value:%H:%M}"


# Formatting a frame's column never hands a Python function to Polars: Polars runs such a
# callback on its own worker threads, outside the Streamlit session, so the session's language
# is not found there (it falls back to Korean), Streamlit logs "missing ScriptRunContext" for
# every row, and a script thread waiting on Polars while holding the GIL can deadlock with them.
# The expressions below format in Polars; ``labelled`` builds its lookup here, in the script.


def days(column: str, language: Lang | None = None) -> pl.Expr:
    """``day`` for a whole column of dates at once."""
    fmt = "%Y년 %-m월 %-d일" if (language or lang()) == "ko" else "%-d %b %Y"
    return pl.col(column).dt.strftime(fmt).fill_null(NOTHING)


def moments(column: str, language: Lang | None = None) -> pl.Expr:
    """``moment`` for a whole column at once (a worklist has thousands of times): Korea's
    time, to the minute."""
    fmt = "%Y년 %-m월 %-d일 %H:%M" if (language or lang()) == "ko" else "%-d %b %Y %H:%M"
    return pl.col(column).dt.convert_time_zone("Asia/Seoul").dt.strftime(fmt).fill_null(NOTHING)


def labelled(rows: pl.DataFrame, column: str, label: Callable[[Any], str]) -> pl.Expr:
    """The column's values replaced by ``label(value)`` (a message, a district's name): the
    lookup is built from the distinct values in ``rows``, so Polars only looks it up."""
    values = rows.get_column(column).drop_nulls().unique().to_list()
    return pl.col(column).replace_strict({v: label(v) for v in values}, return_dtype=pl.Utf8)
