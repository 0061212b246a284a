"""A citizen's medicines now and the insights about them, through the gate.

Both read the national extracts (prescriptions and dispensings from the claims, and the
diagnoses on the citizen's timeline) through one method, ``_national``, the one place the
consent rule decides whether those records may be shown (before the citizen's record link, and
after a withdrawal, they may not). The screening reminders need only age and sex from the
residents' register.

"Now" for medicines is today, or the last day the national extracts reach when that is
earlier: claims arrive months after care, and the app says which day it counted from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, NamedTuple

import polars as pl

from lakehouse import queries
from lakehouse.access.gate import Gate
from lakehouse.insights import dur, follow_up, medicines, rules, screening
from lakehouse.insights.insight import Insight
from lakehouse.reference import codes

MAX_SUPPLY_DAYS: Final = 366  # silver.prescriptions.days and dispensings.days: at most a year
EVENT_KINDS: Final = ("diagnosis", "prescription", "dispensing")


class National(NamedTuple):
    """One citizen's national-extract records the insights read."""

    prescriptions: pl.DataFrame
    dispensings: pl.DataFrame
    events: pl.DataFrame  # timeline rows: kind, code, event_date, institution, source_ref


@dataclass(frozen=True)
class MedicinesNow:
    """What a citizen is taking on ``as_of``: ``medicines.current``'s periods with the drug's
    Korean and English names and strength, and the prescriber's and pharmacy's names."""

    as_of: date
    medicines: pl.DataFrame


@dataclass(frozen=True)
class Insights:
    """The insights about one citizen on ``as_of``, and the names of every institution their
    records name (by HIRA code)."""

    as_of: date
    items: tuple[Insight, ...]
    institutions: dict[str, str]


class Medicines(Gate):
    """The medicine and insight methods of ``Access``."""

    def _as_of(self) -> date:
        today = self.clock().date()
        end: date | None = self._q(queries.medicines_extract_end)()
        return min(today, end) if end else today

    def _national(self, subject: str, as_of: date, purpose: str) -> National:
        """The national-extract records of ``subject`` the medicines and insights need: the
        prescriptions and dispensings of the claim months that can hold a supply running in
        the DUR look-back before ``as_of``, and the timeline's diagnoses and medicines. The one
        read of national records in this module, cut to what ``purpose`` shows (the consent
        rule, one institution's records, a share's kinds: ``Gate._record_rows``)."""
        window = rules.dur().lookback_days + MAX_SUPPLY_DAYS
        first, last = f"{as_of - timedelta(days=window):%Y-%m}", f"{as_of:%Y-%m}"
        timeline = self._timeline_rows(subject, purpose)
        prescribed: pl.DataFrame = self._q(queries.prescriptions_in_use)(subject, first, last)
        dispensed: pl.DataFrame = self._q(queries.dispensings_in_use)(subject, first, last)
        return National(
            self._record_rows(prescribed, subject, purpose, "prescription", pl.col("ykiho")),
            self._record_rows(dispensed, subject, purpose, "dispensing", pl.col("pharmacy_ykiho")),
            timeline.filter(pl.col("kind").is_in(EVENT_KINDS)).select(
                "kind", "code", "event_date", "institution", "source_ref"
            ),
        )

    def _names(self, institutions: set[str]) -> dict[str, str]:
        names: dict[str, str] = self._q(queries.institution_names)(tuple(sorted(institutions)))
        return names

    def medicines_now(self, subject_key: str) -> MedicinesNow:
        """What the citizen is taking now (``medicines.current``), with names, the one ending
        soonest first."""
        purpose = self.basis("read:medicines", subject_key)
        as_of = self._as_of()
        national = self._national(subject_key, as_of, purpose)
        taking = medicines.current(national.prescriptions, national.dispensings, as_of)
        names = self._names(
            set(taking["prescriber"].to_list()) | set(taking["pharmacy"].drop_nulls().to_list())
        )
        drugs = codes("drugs").select(
            pl.col("gnl_nm_cd").alias("ingredient_code"), "name_ko", "name_en", "strength"
        )
        rows = taking.join(drugs, on="ingredient_code", how="left").with_columns(
            pl.col("prescriber").replace_strict(names, default=None).alias("prescriber_name"),
            pl.col("pharmacy").replace_strict(names, default=None).alias("pharmacy_name"),
        )
        self._audit(
            "read:medicines",
            purpose,
            subject=subject_key,
            rows=rows.height,
            emergency=purpose == "emergency",
        )
        return MedicinesNow(as_of, rows)

    def insights(self, subject_key: str) -> Insights:
        """Every insight about the citizen: medicines across clinics (DUR-style), follow-up
        gaps and screening reminders, each naming its records and source."""
        purpose = self.basis("read:insights", subject_key)
        as_of = self._as_of()
        national = self._national(subject_key, as_of, purpose)
        periods = medicines.periods(national.prescriptions, national.dispensings)
        items = dur.checks(periods, as_of) + follow_up.gaps(national.events, as_of)
        person: pl.DataFrame = self._q(queries.citizens)((subject_key,))
        if person.height:
            items += screening.reminders(
                person["sex"][0], person["birth_year"][0], national.events, self.clock().date()
            )
        named = {r.institution for i in items for r in i.records}
        named |= {r.prescriber for i in items for r in i.records if r.prescriber}
        self._audit(
            "read:insights",
            purpose,
            subject=subject_key,
            rows=len(items),
            emergency=purpose == "emergency",
        )
        return Insights(as_of, tuple(items), self._names(named - {""}))
