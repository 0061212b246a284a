"""OMOP: the lakehouse as an OMOP CDM v5.4 database (with the imaging extension), after gold.

One multi-asset builds every ``omop.*`` table from silver, the imaging index and ``ai.findings``
(``pipelines.transform.omop``) and replaces each table whole in one commit, as the gold job does
with its derived tables: the OMOP layer is derived entirely from silver, and its ids are stable
(``lakehouse.omop.ids``), so a rebuild gives every row the id it had. It runs in ``omop_job``
(after the nightly gold refresh) and as the last stage of ``gjh build``.

Each table's metadata says how many source rows were left out because their person is not in
the resident register (never invented).
"""

from collections.abc import Iterator
from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo

import dagster as dg

from lakehouse import delta
from lakehouse import read as lake
from lakehouse.catalog.omop import OMOP
from lakehouse.omop import spec as cdm
from pipelines.defs.gold import TIMEZONE
from pipelines.defs.resources import Lakehouse
from pipelines.defs.specs import spec
from pipelines.transform.omop import Sources, build

GROUP: Final = "omop"
KOREA: Final = ZoneInfo(TIMEZONE)
TABLES: Final = tuple(t.name for t in OMOP)
SOURCES: Final = {
    "citizens": "silver.citizens",
    "institutions": "silver.institutions",
    "claims": "silver.claims",
    "claim_lines": "silver.claim_lines",
    "diagnoses": "silver.diagnoses",
    "prescriptions": "silver.prescriptions",
    "dispensings": "silver.dispensings",
    "members": "silver.centre_members",
    "measurements": "silver.centre_measurements",
    "studies": "silver.imaging_studies",
    "series": "silver.imaging_series",
    "findings": "ai.findings",
}
# Runs after gold (the nightly refresh at 02:00 KST takes minutes): at 03:00 KST.
NIGHTLY_CRON: Final = "0 3 * * *"
UNKNOWN: Final = "rows_unknown_person"


def whole(name: str) -> str:
    """A predicate every row of an omop table matches (a required column is never null): the
    rows one rebuild replaces."""
    required = next(f.name for f in cdm.fields(name.split(".", 1)[1]) if f.required)
    return f"{required} IS NOT NULL"


def as_of(src: Sources) -> date:
    """The last day the sources cover (claims, dispensings, centre, imaging), else the latest
    day in the register."""
    days = [
        src.claims["end_date"].max(),
        src.dispensings["dispensed_on"].max(),
        src.measurements["measured_on"].max(),
        src.studies["study_date"].max(),
        src.citizens["resident_from"].max(),
    ]
    found = [d for d in days if isinstance(d, date)]
    return max(found) if found else datetime.now(KOREA).date()


@dg.multi_asset(
    name="omop_tables",
    specs=[spec(name, GROUP, deps=tuple(SOURCES.values())) for name in TABLES],
    pool="lakehouse",
)
def omop_tables(
    context: dg.AssetExecutionContext, lakehouse: Lakehouse
) -> Iterator[dg.MaterializeResult[None]]:
    """Every OMOP CDM table rebuilt from silver, the imaging index and the AI findings."""
    del lakehouse  # its setup points the lakehouse modules at this deployment's storage
    src = Sources(**{field: lake.frame(name) for field, name in SOURCES.items()})
    if src.citizens.height == 0:
        context.log.info("omop: no citizens in silver yet, nothing to write")
    built = build(src, as_of(src), datetime.now(KOREA).date())
    for name in TABLES:
        frame = built.tables[name]
        delta.replace(name, frame, whole(name))
        unknown = built.unknown_person.get(name, 0)
        context.log.info(f"{name}: {frame.height} rows, {unknown} of unknown persons left out")
        yield dg.MaterializeResult(
            asset_key=spec(name, GROUP).key,
            metadata={"dagster/row_count": frame.height, UNKNOWN: unknown},
        )


omop_job = dg.define_asset_job(
    "omop_job",
    selection=dg.AssetSelection.groups(GROUP),
    description="Rebuild the OMOP CDM v5.4 tables from silver, imaging and the AI findings.",
)

nightly_omop = dg.ScheduleDefinition(
    name="nightly_omop",
    job=omop_job,
    cron_schedule=NIGHTLY_CRON,
    execution_timezone=TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Rebuild the OMOP tables every night at 03:00 KST, after gold.",
)
