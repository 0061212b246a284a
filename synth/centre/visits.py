"""One open day at the centre: who comes, when, and which devices they use.

Each day draws from its own named stream, so a day's visits never depend on the days generated
before it; the exporter can ask for the same day twice (once to count rows for the fault plan,
once to write) and get the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

import numpy as np
import polars as pl

from synth.centre.members import DEVICES, epoch_day
from synth.centre.physiology import IntArray
from synth.rng import stream

# Opening hours (assumption: weekdays 09:00-18:00, Saturdays 09:00-13:00), in seconds of the day.
OPEN: Final = 9 * 3600
CLOSE_WEEKDAY: Final = 18 * 3600
CLOSE_SATURDAY: Final = 13 * 3600
LAST_SESSION_MARGIN: Final = 10 * 60
# Arrival peaks: most members come in the morning, some after lunch (synthetic choice).
MORNING_SHARE: Final = 0.65
MORNING: Final = (10.25 * 3600, 50 * 60)  # mean, sd
AFTERNOON: Final = (14.5 * 3600, 60 * 60)
SESSION_SPREAD: Final = 80 * 60  # a device session starts within 80 minutes of arrival


@dataclass(frozen=True)
class Roster:
    """The members' visiting habits as arrays, in member-number order."""

    member_no: tuple[str, ...]
    active_from: IntArray
    active_to: IntArray
    visit_p: np.ndarray
    device_p: np.ndarray  # (members, devices), in DEVICES order

    @classmethod
    def from_members(cls, members: pl.DataFrame) -> Roster:
        """Take the arrays out of ``select_members``' frame."""
        return cls(
            member_no=tuple(members["member_no"].to_list()),
            active_from=members["active_from"].to_numpy().astype(np.int64),
            active_to=members["active_to"].to_numpy().astype(np.int64),
            visit_p=members["visit_p"].to_numpy(),
            device_p=np.column_stack([members[f"p_{d}"].to_numpy() for d in DEVICES]),
        )


@dataclass(frozen=True)
class Sessions:
    """One device's sessions on one day, in time order."""

    member: IntArray  # member index
    second: IntArray  # seconds after midnight (KST)


@dataclass(frozen=True)
class DayVisits:
    """Who visited on one open day and the sessions per device."""

    visitors: IntArray
    sessions: dict[str, Sessions]


def day_visits(roster: Roster, day: date, seed: int) -> DayVisits:
    """Draw one open day's visits.

    A member visits with probability ``visit_p`` while active (registered, resident and alive).
    Every visit uses each device with the member's own propensity, and at least the check-up
    station, so every visit leaves a trace in some export.
    """
    rng = stream(seed, "centre", "visits", day.isoformat())
    d = epoch_day(day)
    n = len(roster.member_no)
    active = (roster.active_from <= d) & (d < roster.active_to)
    visitors = np.flatnonzero(active & (rng.random(n) < roster.visit_p))
    k = len(visitors)
    close = CLOSE_SATURDAY if day.weekday() == 5 else CLOSE_WEEKDAY
    morning = rng.random(k) < MORNING_SHARE
    if day.weekday() == 5:
        morning[:] = True
    arrival = np.where(morning, rng.normal(*MORNING, k), rng.normal(*AFTERNOON, k))
    last = close - LAST_SESSION_MARGIN
    arrival = np.clip(arrival, OPEN, last)
    uses = rng.random((k, len(DEVICES))) < roster.device_p[visitors]
    uses[:, 0] |= ~uses.any(axis=1)
    offsets = rng.uniform(0, SESSION_SPREAD, (k, len(DEVICES)))
    sessions: dict[str, Sessions] = {}
    for j, device in enumerate(DEVICES):
        who = visitors[uses[:, j]]
        second = np.clip(arrival[uses[:, j]] + offsets[uses[:, j], j], OPEN, last).astype(np.int64)
        order = np.lexsort((who, second))
        sessions[device] = Sessions(member=who[order], second=second[order])
    return DayVisits(visitors=visitors, sessions=sessions)
