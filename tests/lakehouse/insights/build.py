"""Hand-built records for the insight rules' tests: prescriptions and dispensings as the
access layer reads them (``lakehouse.queries.prescriptions_in_use``/``dispensings_in_use``),
and timeline events."""

from __future__ import annotations

from datetime import date
from typing import Final

import polars as pl

from lakehouse.insights import medicines

AMLODIPINE: Final = "107601ATB"
DRUG: Final[dict[str, pl.DataType]] = {
    "ingredient_code": pl.Utf8(),
    "product_code": pl.Utf8(),
    "name": pl.Utf8(),
    "dose": pl.Float64(),
    "per_day": pl.Int64(),
    "days": pl.Int64(),
}
PRESCRIPTION: Final[dict[str, pl.DataType]] = {
    "spec_id": pl.Utf8(),
    "delivery_id": pl.Utf8(),
    "line_no": pl.Int64(),
    "ykiho": pl.Utf8(),
    "prescription_no": pl.Utf8(),
    "issued_on": pl.Date(),
    **DRUG,
}
DISPENSING: Final[dict[str, pl.DataType]] = {
    "spec_id": pl.Utf8(),
    "delivery_id": pl.Utf8(),
    "line_no": pl.Int64(),
    "pharmacy_ykiho": pl.Utf8(),
    "dispensed_on": pl.Date(),
    "prescriber_ykiho": pl.Utf8(),
    "prescription_no": pl.Utf8(),
    **DRUG,
}
EVENT: Final[dict[str, pl.DataType]] = {
    "kind": pl.Utf8(),
    "code": pl.Utf8(),
    "event_date": pl.Date(),
    "institution": pl.Utf8(),
    "source_ref": pl.Utf8(),
}


def prescription(
    spec: str, ykiho: str, no: str, issued: date, code: str = AMLODIPINE, days: int = 30
) -> tuple[object, ...]:
    """One prescription line (line 1 of statement ``spec``, delivery d1)."""
    return (spec, "d1", 1, ykiho, no, issued, code, None, "product", 1.0, 1, days)


def dispensing(
    spec: str,
    pharmacy: str,
    prescriber: str,
    no: str,
    on: date,
    code: str = AMLODIPINE,
    days: int = 30,
) -> tuple[object, ...]:
    """One dispensing line (line 1 of pharmacy statement ``spec``, delivery d1)."""
    return (spec, "d1", 1, pharmacy, on, prescriber, no, code, None, "product", 1.0, 1, days)


def frames(
    issued: list[tuple[object, ...]], dispensed: list[tuple[object, ...]]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The two frames the medicine rules read."""
    return (
        pl.DataFrame(issued, schema=PRESCRIPTION, orient="row"),
        pl.DataFrame(dispensed, schema=DISPENSING, orient="row"),
    )


def supply(start: date, days: int, ykiho: str, code: str = AMLODIPINE) -> tuple[object, ...]:
    """A prescription never filled: a period from ``start`` for ``days`` days, prescribed at
    ``ykiho``, its statement id named for them all."""
    return prescription(f"{ykiho}-{code}-{start:%Y%m%d}", ykiho, f"{start:%m%d}", start, code, days)


def periods(*supplies: tuple[object, ...]) -> pl.DataFrame:
    """The medication periods of these prescriptions (``supply``)."""
    return medicines.periods(*frames(list(supplies), []))


def events(*rows: tuple[str, str, date, str]) -> pl.DataFrame:
    """Timeline events: (kind, code, day, institution); the source_ref numbers them."""
    return pl.DataFrame(
        [(k, c, d, i, f"silver.test:{n}") for n, (k, c, d, i) in enumerate(rows)],
        schema=EVENT,
        orient="row",
    )
