"""The registries: resident register, institutions and the AI-platform enrolment rounds.

They are small and arrive rarely, so each run reads every registry delivery (replacing each
delivery's period exactly). The bronze boundary is where names, birth dates and addresses leave
for the encrypted vault; bronze keeps only the citizen key, sex, birth year-month and area.
"""

from collections.abc import Iterator
from typing import Final

import dagster as dg
import polars as pl

from lakehouse import delta
from lakehouse import read as lake
from lakehouse.linkage import citizen_tokens, has_key
from pipelines.defs import checks
from pipelines.defs.resources import Lakehouse
from pipelines.defs.specs import delivered_headers, key, spec
from pipelines.ingest.bronze import Layout, ingest_csv, write_batch, write_quarantine
from pipelines.ingest.deliveries import DeliveredFile, periods
from pipelines.transform.registry import citizens, identities, institutions

# The layouts the registries send (agreed with the sending systems).
RESIDENT: Final = ("RRN", "NAME", "SEX_CD", "BIRTH_DT", "SGG_CD", "EMD_CD", "ADDR")
LAYOUTS: Final = {
    "registry/citizens": [
        Layout("residents_", "bronze.resident_register", RESIDENT),
        Layout(
            "resident_changes_", "bronze.resident_register", ("EVENT_CD", "EVENT_DT", *RESIDENT)
        ),
    ],
    "registry/institutions": [
        Layout(
            "institutions_",
            "bronze.institutions",
            delivered_headers("bronze.institutions"),
        )
    ],
    "registry/ai_platform": [
        Layout(
            "enrolment_",
            "bronze.ai_enrolment",
            delivered_headers("bronze.ai_enrolment"),
        )
    ],
}
BRONZE: Final = ("bronze.resident_register", "bronze.institutions", "bronze.ai_enrolment")
SILVER: Final = ("silver.citizens", "silver.institutions")


@dg.multi_asset(
    name="bronze_registry",
    specs=[
        *(spec(t, "registry_bronze") for t in BRONZE),
        spec("vault.identities", "registry_bronze"),
        spec("vault.linkage", "registry_bronze"),
    ],
    check_specs=checks.specs((*BRONZE, "vault.identities", "vault.linkage")),
    pool="lakehouse",
)
@checks.evaluated
def bronze_registry(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse
) -> Iterator[dg.MaterializeResult[None]]:
    """Every registry delivery into bronze; identities encrypted into the vault."""
    people: list[pl.DataFrame] = []

    def register(rows: pl.DataFrame, f: DeliveredFile, layout: Layout) -> pl.DataFrame:
        if layout.prefix == "residents_":  # the first-day extract: every row is a resident then
            rows = rows.with_columns(
                pl.lit("BASELINE").alias("EVENT_CD"),
                pl.lit(f.period.replace("-", "")).alias("EVENT_DT"),
            )
        people.append(rows.select("RRN", "NAME", "BIRTH_DT", "ADDR"))
        return rows.with_columns(pl.col("BIRTH_DT").str.slice(0, 6))

    counts: dict[str, int] = {}
    for source, layouts in LAYOUTS.items():
        window = periods(lakehouse.sources, source)
        if not window:
            continue
        prepare = register if source == "registry/citizens" else None
        batch = ingest_csv(lakehouse.sources, source, layouts, window, prepare)
        counts |= write_batch(batch, [layouts[0].table])
    vault = identities(pl.concat(people)) if people else pl.DataFrame()
    if vault.height:
        # Ciphertexts are not reproducible (random nonces): a rerun adds new people only.
        delta.merge("vault.identities", vault, insert_only=True)
    counts["vault.identities"] = vault.height
    # Each citizen's partner linkage token, made here where the number is seen (docs/partners.md).
    links = citizen_tokens(pl.concat(people)["RRN"]) if people and has_key() else None
    if links is not None and links.height:
        delta.merge("vault.linkage", links)
    counts["vault.linkage"] = links.height if links is not None else 0
    context.log.info(f"registry: {counts}")
    for name in (*BRONZE, "vault.identities", "vault.linkage"):
        yield dg.MaterializeResult(
            asset_key=key(name), metadata={"dagster/row_count": counts.get(name, 0)}
        )


@dg.multi_asset(
    name="silver_registry",
    specs=[spec(t, "registry_silver", deps=BRONZE) for t in SILVER],
    check_specs=checks.specs(SILVER),
    pool="lakehouse",
)
@checks.evaluated
def silver_registry(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse
) -> Iterator[dg.MaterializeResult[None]]:
    """Citizens folded from the register's events; institutions with their enrolment."""
    people, quarantined = citizens(lake.frame("bronze.resident_register"))
    if people.height:
        delta.merge("silver.citizens", people)
    places = institutions(lake.frame("bronze.institutions"), lake.frame("bronze.ai_enrolment"))
    if places.height:
        delta.merge("silver.institutions", places)
    window = periods(lakehouse.sources, "registry/citizens")
    if window:
        write_quarantine("silver", "registry/citizens", window, quarantined)
    context.log.info(f"registry silver: {people.height} citizens, {places.height} institutions")
    yield dg.MaterializeResult(
        asset_key=key("silver.citizens"), metadata={"dagster/row_count": people.height}
    )
    yield dg.MaterializeResult(
        asset_key=key("silver.institutions"), metadata={"dagster/row_count": places.height}
    )
