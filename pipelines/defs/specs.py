"""How a catalogue table becomes a Dagster asset: its key, description, owners and kinds.

Every asset module declares its tables by catalogue name only; the key (``silver.claims`` →
``silver/claims``), the description and the delivered headers all come from the table catalogue,
so the Dagster UI, the docs and the schemas cannot disagree.
"""

from typing import Final

import dagster as dg

from lakehouse.catalog import table as catalog_table

OWNERS: Final = ["team:data-platform"]
KINDS: Final = {"delta", "polars"}


def key(name: str) -> dg.AssetKey:
    """The asset key of a catalogue table: ``<layer>/<name>``."""
    return dg.AssetKey(name.split("."))


def spec(
    name: str,
    group: str,
    partitions: dg.PartitionsDefinition | None = None,
    deps: tuple[str, ...] = (),
) -> dg.AssetSpec:
    """The asset spec of one catalogue table, depending on other tables by catalogue name."""
    return dg.AssetSpec(
        key(name),
        description=catalog_table(name).description,
        group_name=group,
        owners=OWNERS,
        kinds=KINDS,
        partitions_def=partitions,
        deps=[key(d) for d in deps],
    )


def delivered_headers(table: str) -> tuple[str, ...]:
    """The header a source delivers for a bronze table: its columns less lineage (``_…``)."""
    return tuple(c.header for c in catalog_table(table).columns if not c.name.startswith("_"))


def within(column: str, values: list[str]) -> str:
    """A Delta predicate: ``column`` is one of ``values`` (partition keys, dates as text)."""
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({quoted})"
