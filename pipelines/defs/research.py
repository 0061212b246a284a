"""Research copies on request: a Dagster job an operator launches with the request's details.

A research request names its studies, who asked and why (IRB approval or data-sharing
agreement). The job reads those studies' instances from ``silver.imaging_instances`` and writes
a copy de-identified per DICOM PS3.15's Basic Application Level Confidentiality Profile
(``pipelines.research_copy``) under ``<LAKEHOUSE_URI>/research/<request id>/``, with its
manifest. The request's salt is derived from the pseudonymisation key and the request id, so the
same request gives the same copy and two requests cannot be linked to each other. Every citizen
whose studies are copied gets an entry in ``ops.audit_log`` (action ``export:research``), so the
disclosure shows in their access history like any read.
"""

import re
from pathlib import Path
from typing import Final

import dagster as dg
import polars as pl

from lakehouse import read as lake
from lakehouse.audit import record_export
from lakehouse.config import is_remote, lakehouse_uri
from lakehouse.pseudonym import local_key
from pipelines.defs.resources import Lakehouse
from pipelines.research_copy import research_copy

REQUEST_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$")


class ResearchRequest(dg.Config):
    """One research request (launchpad config)."""

    request_id: str
    study_uids: list[str]
    requested_by: str
    purpose: str


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


@dg.op(description="Write a de-identified copy of the requested studies and its manifest.")
def copy_studies(
    context: dg.OpExecutionContext, config: ResearchRequest, lakehouse: Lakehouse
) -> dg.Output[str]:
    del lakehouse  # its setup points the lakehouse modules at this deployment's storage
    out = destination(config.request_id)
    instances = lake.frame(
        "silver.imaging_instances", pl.col("study_instance_uid").is_in(config.study_uids)
    )
    missing = sorted(set(config.study_uids) - set(instances["study_instance_uid"].to_list()))
    if missing:
        raise ValueError(f"studies not indexed: {', '.join(missing)}")
    copy = research_copy(instances, config.request_id, request_salt(config.request_id), out)
    audited = record_export(
        "export:research",
        instances["citizen_key"].drop_nulls().to_list(),
        f"dagster run {context.run_id}",
        f"{config.request_id} for {config.requested_by}: {config.purpose}",
    )
    context.log.info(
        f"research request {config.request_id} by {config.requested_by} ({config.purpose}): "
        f"{copy.written} instances written, {len(copy.excluded)} excluded, to {out}"
    )
    return dg.Output(
        str(out),
        metadata={
            "written": copy.written,
            "excluded": len(copy.excluded),
            "requested_by": config.requested_by,
            "purpose": config.purpose,
            "citizens_audited": audited,
        },
    )


@dg.job(description="A de-identified research copy of studies (DICOM PS3.15 Basic Profile).")
def research_copy_job() -> None:
    copy_studies()
