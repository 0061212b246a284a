"""The arguments of one synthetic city, and what follows from them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta, timezone
from typing import Final

from synth.calendar import FIRST_YEAR, LAST_YEAR

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
    """

    citizens: int
    start: date
    days: int
    seed: int
    inject_faults: bool = False
    workers: int = 1

    def __post_init__(self) -> None:
        if self.citizens < 100:
            raise ValueError("--citizens must be at least 100")
        if self.days < 1:
            raise ValueError("--days must be at least 1")
        # The Korean holiday calendar the generator carries bounds the window.
        last = self.end - timedelta(days=1)
        if self.start.year < FIRST_YEAR or last.year > LAST_YEAR:
            raise ValueError(
                f"the window must lie within {FIRST_YEAR}-01-01..{LAST_YEAR}-12-31, "
                "the years whose public holidays synth/calendar.py knows"
            )

    @property
    def end(self) -> date:
        """The first day after the window (exclusive)."""
        return self.start + timedelta(days=self.days)

    @property
    def scale(self) -> float:
        """This city's size as a fraction of the real Gwangju."""
        return self.citizens / FULL_CITY

    @property
    def years(self) -> float:
        return self.days / 365.25

    def months(self) -> list[tuple[int, int]]:
        """The calendar months the window touches, as (year, month)."""
        out: list[tuple[int, int]] = []
        y, m = self.start.year, self.start.month
        last = self.end - timedelta(days=1)
        while (y, m) <= (last.year, last.month):
            out.append((y, m))
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out
