"""The arguments of one synthetic city, and what follows from them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta, timezone
from typing import Final

# Gwangju's registered population, the scale every published count below refers to
# (domain notes: about 1.43 M citizens).
FULL_CITY: Final = 1_430_000
# Every timestamp in the deliveries is Korea Standard Time, as the sources write them.
KST: Final = timezone(timedelta(hours=9), "KST")


@dataclass(frozen=True)
class CityConfig:
    """What ``gjh synth`` was asked for.

    Attributes:
        citizens: Residents registered on ``start``; births and moves add to them later.
        start: First day of the simulated window.
        days: Length of the window in days.
        seed: The seed; the same arguments give byte-identical output.
        inject_faults: Whether to add realistic bad input (see ``synth.faults``).
        workers: Worker processes; the output does not depend on it.
        history_from: First day of the record-link history extract (``synth.history``): the
            claims and pharmacy history, before ``start``, of the citizens who link their
            records in the app. None delivers no history.
    """

    citizens: int
    start: date
    days: int
    seed: int
    inject_faults: bool = False
    workers: int = 1
    history_from: date | None = None

    def __post_init__(self) -> None:
        if self.citizens < 100:
            raise ValueError("--citizens must be at least 100")
        if self.days < 1:
            raise ValueError("--days must be at least 1")
        if self.history_from is not None and self.history_from >= self.start:
            raise ValueError("--history-from must be before --start")

    @property
    def end(self) -> date:
        """The first day after the window (exclusive)."""
        return self.start + timedelta(days=self.days)

    @property
    def origin(self) -> date:
        """The first day anything is generated for: the history's first day, or ``start``."""
        return self.history_from or self.start

    @property
    def scale(self) -> float:
        """This city's size as a fraction of the real Gwangju."""
        return self.citizens / FULL_CITY

    @property
    def years(self) -> float:
        return self.days / 365.25

    def months(self) -> list[tuple[int, int]]:
        """The calendar months the window touches, as (year, month)."""
        return _months(self.start, self.end)

    def history_months(self) -> list[tuple[int, int]]:
        """The calendar months of the history extract before the window's first month."""
        if self.history_from is None:
            return []
        first = (self.start.year, self.start.month)
        return [ym for ym in _months(self.history_from, self.start) if ym < first]


def _months(first: date, end: date) -> list[tuple[int, int]]:
    """The calendar months from ``first`` to the day before ``end``, as (year, month)."""
    out: list[tuple[int, int]] = []
    y, m = first.year, first.month
    last = end - timedelta(days=1)
    while (y, m) <= (last.year, last.month):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out
