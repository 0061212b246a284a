"""Research copies on request: a Dagster job an operator launches with an approved request.

A research request names its studies, who asked and why, and its approval: the IRB approval or
data-sharing agreement it rests on and who approved it (``check``: a request without one, or
approved by its own requester, is refused before anything is read, and the refusal is in the
access log). The job reads those studies' instances from ``silver.imaging_instances`` and writes
a copy de-identified per DICOM PS3.15's Basic Application Level Confidentiality Profile
(``pipelines.research_copy``) under ``<LAKEHOUSE_URI>/research/<request id>/``, with its
manifest, and the OMOP CDM tables of the studies' persons as Parquet beside it
(``pipelines.research_omop``: ``omop/<table>.parquet``, the tables the request names, all by
default). The request's salt is derived from the pseudonymisation key and the request id, so the
same request gives the same copy and extract and two requests cannot be linked to each other.

The job runs as the system, outside any app's principal, so its disclosure is audited the way
the pipelines audit one (``lakehouse.audit.record_export``, the access log's one path for a
pipeline): every citizen whose studies are copied gets an entry (action ``export:research``),
and every citizen whose OMOP rows are extracted another (``export:research_omop``, with their
tables and row counts), in the same run, each naming the request, the requester, the purpose
and the approval, so the disclosure shows in their access history like any read.
"""

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import dagster as dg
import polars as pl

from lakehouse import audit
from lakehouse import read as lake
from lakehouse.audit import record_export
from lakehouse.config import is_remote, lakehouse_uri
from lakehouse.dicom_store import is_uid
from lakehouse.pseudonym import local_key
from pipelines.defs.resources import Lakehouse
from pipelines.research_copy import research_copy
from pipelines.research_omop import (
    EXTRACT_TABLES,
    audit_detail,
    cohort,
    not_extracted,
    omop_extract,
)

REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$")
# An approval reference (an IRB approval number, a data-sharing agreement's reference): 3-64
# characters, not starting or ending with a space.
APPROVAL: Final = re.compile(r"^\S.{1,62}\S$")
REFUSED: Final = "unapproved"


class ResearchRequest(dg.Config):
    """One research request (launchpad config).

    Attributes:
        request_id: The request's id (3-64 letters, digits, - or _): its folder and its salt.
        study_uids: The studies it asks for.
        requested_by: The researcher's account or address.
        purpose: What the data are for.
        approval: The IRB approval or data-sharing agreement it rests on (its reference).
        approved_by: Who approved the release (not the requester).
        omop_tables: The OMOP tables it asks for (all the extract offers by default; ``[]``
            for the DICOM copy alone).
    """

    request_id: str
    study_uids: list[str]
    requested_by: str
    purpose: str
    approval: str
    approved_by: str
    # A pydantic field: each request gets its own copy of the default.
    omop_tables: list[str] = list(EXTRACT_TABLES)  # noqa: RUF012


class RequestRefusedError(ValueError):
    """The request is not approved, or malformed: nothing was read or written."""


def problems(request: ResearchRequest) -> list[str]:
    """Why a request may not be served (empty when it may)."""
    found: list[str] = []
    if not REQUEST_ID.match(request.request_id):
        found.append(f"request id {request.request_id!r}: 3-64 letters, digits, - or _")
    if not APPROVAL.match(request.approval.strip()):
        found.append("no approval: name the IRB approval or data-sharing agreement (3-64 chars)")
    requester = request.requested_by.strip().lower()
    approver = request.approved_by.strip().lower()
    if not approver:
        found.append("no approver: name who approved the release")
    elif approver == requester:
        found.append("approved by its own requester")
    if not requester or not request.purpose.strip():
        found.append("a request names who asks and why")
    if not request.study_uids:
        found.append("no studies requested")
    elif not all(is_uid(uid) for uid in request.study_uids):
        found.append("a requested study UID is not a DICOM UID")
    unknown = not_extracted(request.omop_tables)
    if unknown:
        found.append(f"OMOP tables not extracted: {', '.join(unknown)}")
    return found


def check(request: ResearchRequest, run: str) -> None:
    """Refuse a request that is not approved or malformed, with every reason, and log the
    refusal (``ops.audit_log``, no subject: nothing of anyone was read)."""
    found = problems(request)
    if not found:
        return
    detail = f"{request.request_id[:64]} for {request.requested_by[:64]}: " + "; ".join(found)
    audit.append(
        [
            audit.row(
                datetime.now(UTC),
                "system",
                "admin",
                run,
                "export:research",
                "research",
                rows=0,
                allowed=False,
                refusal=REFUSED,
                detail=detail,
            )
        ]
    )
    raise RequestRefusedError(f"research request refused: {'; '.join(found)}")


def describe(request: ResearchRequest) -> str:
    """The request as its audit entries name it: who asked, why, on what approval, by whom."""
    return (
        f"{request.request_id} for {request.requested_by}: {request.purpose}; "
        f"approval {request.approval.strip()} by {request.approved_by.strip()}"
    )


def request_salt(request_id: str) -> bytes:
    """The request's 128-bit salt: keyed HMAC of its id (the key never leaves the secrets)."""
    return bytes.fromhex(local_key("research", request_id)[1:])


def destination(request_id: str) -> Path:
    if not REQUEST_ID.match(request_id):
        raise ValueError(f"request id {request_id!r}: 3-64 letters, digits, - or _")
    root = lakehouse_uri()
    if is_remote(root):
        raise ValueError("research copies are written to a local lakehouse only")
    return Path(root) / "research" / request_id


@dg.op(
    description="Check the request's approval, then write a de-identified copy of the requested "
    "studies, their persons' OMOP tables and the manifest, and audit every citizen."
)
def copy_studies(
    context: dg.OpExecutionContext, config: ResearchRequest, lakehouse: Lakehouse
) -> dg.Output[str]:
    del lakehouse  # its setup points the lakehouse modules at this deployment's storage
    run = f"dagster run {context.run_id}"
    check(config, run)
    out = destination(config.request_id)
    instances = lake.frame(
        "silver.imaging_instances", pl.col("study_instance_uid").is_in(config.study_uids)
    )
    missing = sorted(set(config.study_uids) - set(instances["study_instance_uid"].to_list()))
    if missing:
        raise ValueError(f"studies not indexed: {', '.join(missing)}")
    members = cohort(instances) if config.omop_tables else None
    salt = request_salt(config.request_id)
    copy = research_copy(instances, config.request_id, salt, out)
    extract = omop_extract(members, salt, copy, config.omop_tables) if members is not None else None
    detail = describe(config)
    audited = record_export(
        "export:research", instances["citizen_key"].drop_nulls().to_list(), run, detail
    )
    omop_audited = 0
    if extract is not None:
        held = {
            key: (sum(rows.values()), audit_detail(rows))
            for key, rows in extract.by_citizen.items()
        }
        omop_audited = record_export("export:research_omop", list(held), run, detail, held=held)
    context.log.info(
        f"research request {config.request_id} by {config.requested_by} ({config.purpose}, "
        f"approval {config.approval} by {config.approved_by}): {copy.written} instances "
        f"written, {len(copy.excluded)} excluded, "
        f"{extract.persons if extract else 0} persons' OMOP rows, to {out}"
    )
    return dg.Output(
        str(out),
        metadata={
            "written": copy.written,
            "excluded": len(copy.excluded),
            "requested_by": config.requested_by,
            "purpose": config.purpose,
            "approval": config.approval,
            "approved_by": config.approved_by,
            "omop_rows": dg.MetadataValue.json(extract.rows if extract else {}),
            "citizens_audited": audited,
            "citizens_audited_omop": omop_audited,
        },
    )


@dg.job(
    description="A de-identified research copy of studies (DICOM PS3.15 Basic Profile) and "
    "their persons' OMOP CDM tables, for an approved request."
)
def research_copy_job() -> None:
    copy_studies()
