"""The record-link history extract: the national claims and pharmacy history of linked citizens.

A citizen who registers a joint certificate (공동인증서) in the app and grants the record-link
consent links their past hospital and pharmacy records through HIRA (``synth.programme``). The
city then receives, once, those citizens' claims and pharmacy statements from
``CityConfig.history_from`` up to the window, in the layout of the monthly research extract and
one delivery per month of history (``synth.claims_writer``), so the pipelines load it with the
rules of every other month. Nobody else gets a history: the monthly extracts start with the
window, as the programme did.

The history is generated with the window by the same care model, in one pass per person, so a
chronic condition keeps its home clinic, its regimen and its follow-up rhythm from its onset
through the window (a hypertensive patient of 2012 still fills the same prescription in 2025).
Simplifications, stated: a linked citizen is taken to have lived in Gwangju, using its
institutions, throughout the history, and to have been alive and insured from birth or
``history_from``.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from synth.config import CityConfig
from synth.programme import plan_users


def linked(people: pl.DataFrame, cfg: CityConfig) -> pl.Series:
    """The registration numbers of the citizens who grant the record-link consent in the window
    (every app user who ticks it at sign-up: the extract covers whoever linked)."""
    users = plan_users(people, cfg)
    chosen = np.flatnonzero(users.consent["hira_record_link"])
    return pl.Series("rrn", [users.rrn[i] for i in chosen.tolist()], dtype=pl.Utf8)


def with_history(people: pl.DataFrame, cfg: CityConfig) -> pl.DataFrame:
    """The population as the care model sees it: linked citizens present from ``history_from``
    (or birth, when later); everyone else from their first day in the window."""
    if cfg.history_from is None:
        return people
    since = pl.max_horizontal(pl.col("birth_date"), pl.lit(cfg.history_from))
    return people.with_columns(
        pl.when(pl.col("rrn").is_in(linked(people, cfg).implode()))
        .then(pl.min_horizontal(since, pl.col("present_from")))
        .otherwise(pl.col("present_from"))
        .alias("present_from")
    )
