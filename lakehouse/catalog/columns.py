"""What the catalogue's tables have in common: value patterns and the columns several layers
declare the same way (the citizen key, DICOM UIDs, the imaging patient key)."""

from __future__ import annotations

from typing import Final

from lakehouse.pseudonym import KEY_PATTERN
from lakehouse.schema import Column, ColumnType, Personal

KCD_PATTERN: Final = r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,2})?$"
INGREDIENT_PATTERN: Final = r"^[0-9]{6}[A-D][A-Z]{2}$"
YKIHO_PATTERN: Final = r"^[0-9]{8}$"
UID_PATTERN: Final = r"^[0-9]+(\.[0-9]+)*$"


def column(
    name: str,
    type: ColumnType,
    description: str,
    *,
    required: bool = False,
    personal: Personal | None = None,
    source: str | None = None,
    pattern: str | None = None,
    low: float | None = None,
    high: float | None = None,
    references: str | None = None,
    codes: str | None = None,
) -> Column:
    """One column, its checks given by keyword (a shorter spelling of ``Column``)."""
    return Column(
        name, type, description, required, personal, source, pattern, low, high, references, codes
    )


def citizen(source: str | None = None, required: bool = True, fk: bool = True) -> Column:
    """The pseudonymous citizen key; ``source`` is the delivered header it was made from
    (bronze), ``fk`` whether it must name a known citizen."""
    return column(
        "citizen_key",
        "text",
        "pseudonymous citizen key: keyed HMAC-SHA256 of the resident registration number",
        required=required,
        personal="pseudonym",
        source=source,
        pattern=KEY_PATTERN,
        references="silver.citizens.citizen_key" if fk else None,
    )


def uid(name: str, description: str, required: bool = True) -> Column:
    """A DICOM UID column (dotted digits)."""
    return column(name, "text", description, required=required, pattern=UID_PATTERN)


PATIENT_KEY: Final = column(
    "patient_key",
    "text",
    "pseudonymous patient (see silver.imaging_instances)",
    personal="pseudonym",
    pattern=r"^[CL][0-9a-f]{32}$",
)
