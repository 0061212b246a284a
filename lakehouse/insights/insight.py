"""What an insight is: a rule's finding, its records, what to do, and where the rule comes from.

Language-free by design: codes and dates only, named by the apps from the message catalogue and
the code lists, so a Korean and an English screen say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

RecordKind = Literal["prescription", "dispensing", "diagnosis"]
Rule = Literal["same_ingredient", "same_class", "combination", "follow_up", "screening"]
Advice = Literal["ask_pharmacist", "ask_doctor", "book_screening"]


@dataclass(frozen=True)
class Record:
    """One record an insight came from.

    Attributes:
        kind: A prescription (issued by ``institution``), a dispensing (at the pharmacy
            ``institution``, prescribed by ``prescriber``) or a diagnosis on a claim statement.
        source_ref: The silver row, ``<table>:<key values joined by :>``.
        day: The day issued, dispensed or seen.
        institution: Where (HIRA institution code).
        code: The ingredient (main-ingredient code) or the diagnosis (KCD with the dot).
        until: For a medicine, the last day its supply covers.
        prescriber: For a dispensing, the institution that prescribed it.
    """

    kind: RecordKind
    source_ref: str
    day: date
    institution: str
    code: str
    until: date | None = None
    prescriber: str | None = None


@dataclass(frozen=True)
class Insight:
    """One finding of one rule, for the citizen.

    Attributes:
        rule: Which rule found it.
        topic: What it is about: the ingredient code, the class, combination, condition or
            screening programme id of the rule file.
        advice: What the citizen may do about it (never that something is wrong).
        records: The exact records it came from, oldest first.
        start: The first day of the overlap, gap, or the screening's due period.
        end: The last day of it.
        source_ko: The rule's source, as the rule file cites it, in Korean.
        source_en: The same in English.
        url: Where to read the source.
        severity: For a combination, ``contraindicated`` or ``avoid``; for a screening
            programme whose risk group the claims cannot show (heavy smoking), ``ask``; else
            empty.
    """

    rule: Rule
    topic: str
    advice: Advice
    records: tuple[Record, ...]
    start: date
    end: date
    source_ko: str
    source_en: str
    url: str = ""
    severity: str = ""


def event_record(row: dict[str, Any]) -> Record:
    """The record of one timeline event (``gold.citizen_timeline``'s kind, code, event_date,
    institution and source_ref)."""
    return Record(
        kind=row["kind"],
        source_ref=row["source_ref"],
        day=row["event_date"],
        institution=row["institution"] or "",
        code=row["code"],
    )
