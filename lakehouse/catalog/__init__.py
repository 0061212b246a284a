"""The table catalogue: the one declaration of every table in the lakehouse.

Names are ``<layer>.<name>``:

* ``bronze``: each delivery as delivered, typed as text, with its lineage (delivery, file, line,
  delivery time, checksum). Resident registration numbers never get here: they become citizen keys
  at this boundary (``lakehouse.pseudonym``), and direct identifiers go encrypted to ``vault``.
* ``silver``: typed, conformed to the code systems, deduplicated, corrected.
* ``gold``: shaped for the apps' lookups.
* ``ai``: what the AI reading services found (``ai.findings``), written back by batch scoring.
* ``quarantine.records``: every rejected record or file, with its reason.
* ``vault.identities``: the only home of names, birth dates and addresses, encrypted.
* ``ops``: what the apps append: the access log, grants, sign-ins, clinicians' decisions and
  remote readings.

One module per part: ``bronze``, ``intake`` (the delivery ledger, the quarantine and the vault),
``ops``, ``silver``, ``imaging`` (the DICOM index and routing), ``ai``, ``gold``, ``omop``
(the OMOP CDM v5.4 view, generated from OHDSI's specification) and ``dq`` (the data-quality
report over it, a gold table); ``columns``
holds the patterns and columns they share. Schemas, quality checks (``lakehouse.quality``) and the
documentation (``gjh catalog --docs``) are all generated from this package.
"""

from __future__ import annotations

from typing import Final

from lakehouse.catalog.ai import AI
from lakehouse.catalog.bronze import BRONZE, LINEAGE
from lakehouse.catalog.columns import (
    INGREDIENT_PATTERN,
    KCD_PATTERN,
    UID_PATTERN,
    YKIHO_PATTERN,
)
from lakehouse.catalog.dq import DQ
from lakehouse.catalog.gold import GOLD
from lakehouse.catalog.imaging import IMAGING
from lakehouse.catalog.intake import INTAKE
from lakehouse.catalog.omop import OMOP
from lakehouse.catalog.ops import APP_LEDGERS, DECISIONS, ROLES_PATTERN, TRIAGE
from lakehouse.catalog.partners import PARTNERS
from lakehouse.catalog.silver import SILVER
from lakehouse.pseudonym import KEY_PATTERN
from lakehouse.schema import Table

__all__ = [
    "AI",
    "APP_LEDGERS",
    "BRONZE",
    "DECISIONS",
    "DQ",
    "GOLD",
    "IMAGING",
    "INGREDIENT_PATTERN",
    "INTAKE",
    "KCD_PATTERN",
    "KEY_PATTERN",
    "LINEAGE",
    "OMOP",
    "PARTNERS",
    "ROLES_PATTERN",
    "SILVER",
    "TABLES",
    "TRIAGE",
    "UID_PATTERN",
    "YKIHO_PATTERN",
    "table",
]

TABLES: Final[dict[str, Table]] = {
    t.name: t
    for t in (*BRONZE, *INTAKE, *APP_LEDGERS, *SILVER, *IMAGING, *AI, *TRIAGE, *GOLD, *OMOP, *DQ)
} | {t.name: t for t in PARTNERS}


def table(name: str) -> Table:
    """The declaration of one table, by ``<layer>.<name>``."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"no table {name!r} in the catalogue") from None
