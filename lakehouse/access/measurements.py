"""A citizen's seniors' centre measurements, with their age and sex for the reference ranges.

The centre's measurements are the programme's own data: a citizen sees them from sign-up, with
no record link or consent to the national extracts needed, so this read goes through ``basis``
(the person, or their family carer) and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from lakehouse import queries
from lakehouse.access.gate import Gate


@dataclass(frozen=True)
class Measured:
    """One citizen's centre measurements and what the reference ranges need to judge them.

    Attributes:
        rows: ``silver.centre_measurements`` rows (``queries.CENTRE_COLUMNS``), oldest first.
        sex: M or F (null when the register has no row for the citizen).
        age: Whole years today, from the birth year and month (null likewise).
    """

    rows: pl.DataFrame
    sex: str | None
    age: int | None


class Measurements(Gate):
    """The centre-measurement methods of ``Access``."""

    def centre_measurements(self, subject_key: str) -> Measured:
        """A citizen's centre measurements over time, with their age and sex; for the person
        and their family carer (``basis``), shown from sign-up (the programme's own data)."""
        purpose = self.basis("read:measurements", subject_key)
        rows: pl.DataFrame = self._q(queries.centre_values)(subject_key)
        person: pl.DataFrame = self._q(queries.citizens)((subject_key,))
        sex, age = None, None
        if person.height:
            p = person.row(0, named=True)
            today: date = self.clock().date()
            sex = p["sex"]
            age = today.year - p["birth_year"] - int(p["birth_month"] > today.month)
        self._audit(
            "read:measurements",
            purpose,
            subject=subject_key,
            rows=rows.height,
            emergency=purpose == "emergency",
        )
        return Measured(rows, sex, age)
