"""The clinicians' triage: the policy that orders the worklist, and the worklist itself.

The policy is the programme's (``lakehouse/reference/triage.toml``): each AI service's urgency
and target turnaround, how long waiting counts, and the reason codes a decision may give.
Everything here is a pure function of frames the access layer has already read and allowed, so
the ordering is tested without a lakehouse and the access layer keeps every decision about who
sees what.

A study's priority is its most pressing finding's::

    urgency(service) x AI points + wait_points x min(waited / target(service), wait_cap)

The wait term lets a routine study rise as it waits (none starves); its cap keeps a long-waiting
routine study below a fresh urgent one. Waiting stops at the study's first decision.

Every service the registry lists (``models.runtime.services``), whatever its status, needs its
urgency and target here, because its findings stay on worklists after it is paused or retired:
reading a policy that lacks one fails, naming the file and the service, rather than ranking its
studies by a default nobody chose.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Final

import polars as pl

from lakehouse.reference import ROOT
from models.runtime.services import STATUSES as SERVICE_STATUSES
from models.runtime.services import require

STATUSES: Final = ("new", "in_review", "accepted", "rejected", "amended")
OPEN: Final = frozenset({"new", "in_review"})
DECIDED: Final = ("accepted", "rejected", "amended")
POLICY: Final = ROOT / "triage.toml"


@dataclass(frozen=True)
class Policy:
    """The triage policy as the programme set it."""

    urgency: dict[str, float]
    target_hours: dict[str, float]
    wait_points: float
    wait_cap: float
    failed_points: float
    measured_beyond: float
    measured_within: float
    reasons: dict[str, tuple[str, ...]]

    def check(self, decision: str, reason_code: str) -> None:
        """Refuse a decision or reason code the policy does not know (``ValueError``)."""
        if decision not in self.reasons:
            raise ValueError(f"a decision is one of {sorted(self.reasons)}")
        if reason_code not in self.reasons[decision]:
            raise ValueError(f"a reason for {decision} is one of {list(self.reasons[decision])}")


@cache
def policy() -> Policy:
    """The policy in ``lakehouse/reference/triage.toml`` (read once per process).

    Raises:
        RegistryError: A service the registry lists has no ``[service.<name>]`` policy here.
    """
    doc = tomllib.loads(POLICY.read_text(encoding="utf-8"))
    services = doc["service"]
    require(
        POLICY, "triage policy ([service.<name>] urgency, target_hours)", services, SERVICE_STATUSES
    )
    return Policy(
        urgency={s: float(v["urgency"]) for s, v in services.items()},
        target_hours={s: float(v["target_hours"]) for s, v in services.items()},
        wait_points=float(doc["wait_points"]),
        wait_cap=float(doc["wait_cap"]),
        failed_points=float(doc["failed_points"]),
        measured_beyond=float(doc["measured_beyond"]),
        measured_within=float(doc["measured_within"]),
        reasons={d: tuple(codes) for d, codes in doc["reasons"].items()},
    )


def latest_findings(findings: pl.DataFrame) -> pl.DataFrame:
    """Each study's findings from the newest model version that scored it (a rescored study's
    older rows stay in ``ai.findings`` for the record, not on the worklist)."""
    if findings.is_empty():
        return findings
    newest = pl.col("scored_at") == pl.col("scored_at").max().over(
        "study_instance_uid", "service", "finding_code"
    )
    return findings.filter(newest)


def verification(events: pl.DataFrame) -> pl.DataFrame:
    """Each finding's latest decision (``tracking_uid``, ``decision``, ``decided_at``,
    ``decided_by``) from the append-only events; opening for review is not a decision."""
    decided = events.filter(pl.col("decision") != "review")
    return (
        decided.sort("at", "event_id")
        .group_by("tracking_uid", maintain_order=True)
        .agg(
            pl.col("decision").last(),
            pl.col("at").last().alias("decided_at"),
            pl.col("account").last().alias("decided_by"),
        )
    )


def _study_events(events: pl.DataFrame) -> pl.DataFrame:
    """Per study: its status, when it was first decided, and every clinician's latest say."""
    if events.is_empty():
        return pl.DataFrame(
            schema={
                "study_instance_uid": pl.Utf8,
                "status": pl.Utf8,
                "first_decided_at": pl.Datetime("us", "UTC"),
                "decisions": pl.Utf8,
                "conflict": pl.Boolean,
            }
        )
    ordered = events.sort("at", "event_id")
    decided = ordered.filter(pl.col("decision") != "review")
    per_account = decided.group_by("study_instance_uid", "account", maintain_order=True).agg(
        pl.col("decision").last()
    )
    says = per_account.group_by("study_instance_uid").agg(
        pl.format("{}: {}", "account", "decision").sort().str.join(", ").alias("decisions"),
        (pl.col("decision").n_unique() > 1).alias("conflict"),
    )
    status = ordered.group_by("study_instance_uid", maintain_order=True).agg(
        pl.col("decision")
        .filter(pl.col("decision") != "review")
        .last()
        .fill_null("in_review")
        .alias("status"),
        pl.col("at").filter(pl.col("decision") != "review").min().alias("first_decided_at"),
    )
    return status.join(says, on="study_instance_uid", how="left")


def ai_points(p: Policy) -> pl.Expr:
    """A finding's AI points, 0-100 (see the module docstring)."""
    return (
        pl.when(pl.col("ai_status") == "failed")
        .then(pl.lit(p.failed_points))
        .when(pl.col("score").is_not_null())
        .then(pl.col("score") * 100)
        .when(pl.col("positive").is_null())
        .then(pl.lit(p.failed_points))
        .when(pl.col("positive"))
        .then(pl.lit(p.measured_beyond))
        .otherwise(pl.lit(p.measured_within))
    )


def worklist(
    findings: pl.DataFrame,
    studies: pl.DataFrame,
    events: pl.DataFrame,
    now: datetime,
    p: Policy | None = None,
) -> pl.DataFrame:
    """One row per study, most pressing first: open studies (new, in review) by priority, then
    decided ones, newest decision first.

    Args:
        findings: ``ai.findings`` rows of the studies (every version; the newest is used).
        studies: ``silver.imaging_studies`` rows of the same studies.
        events: ``ops.triage_events`` of the same studies.
        now: The time waiting is measured to.
    """
    p = p or policy()
    latest = latest_findings(findings)
    unranked = set(latest["service"].to_list()) - (p.urgency.keys() & p.target_hours.keys())
    if unranked:
        raise ValueError(
            f"{POLICY}: no triage policy for the service(s) {', '.join(sorted(unranked))} of "
            "these findings"
        )
    per_study = _study_events(events)
    acquired = pl.coalesce("study_datetime", "first_received_at")
    urgency = pl.col("service").replace_strict(p.urgency, return_dtype=pl.Float64)
    target = pl.col("service").replace_strict(p.target_hours, return_dtype=pl.Float64)
    waited_until = pl.coalesce("first_decided_at", pl.lit(now, dtype=pl.Datetime("us", "UTC")))
    rows = (
        latest.rename({"status": "ai_status"})
        .join(
            studies.select(
                "study_instance_uid",
                "patient_sex",
                "patient_age_months",
                "institution_name",
                "modalities",
                "study_description",
                "study_datetime",
                "first_received_at",
            ),
            on="study_instance_uid",
            how="left",
        )
        .join(per_study, on="study_instance_uid", how="left")
        .with_columns(
            acquired.alias("acquired_at"),
            target.alias("target_hours"),
            ((waited_until - acquired).dt.total_seconds() / 3600).alias("waited_hours"),
            ai_points(p).alias("ai_points"),
            urgency.alias("urgency"),
        )
        .with_columns(
            (
                pl.col("urgency") * pl.col("ai_points")
                + p.wait_points
                * (pl.col("waited_hours").clip(lower_bound=0) / pl.col("target_hours")).clip(
                    upper_bound=p.wait_cap
                )
            ).alias("priority")
        )
    )
    top = pl.col("priority") == pl.col("priority").max().over("study_instance_uid")
    study_rows = (
        rows.sort("study_instance_uid", "priority", "service", descending=[False, True, False])
        .group_by("study_instance_uid", maintain_order=True)
        .agg(
            pl.col("service").filter(top).first(),
            pl.col("finding_code").filter(top).first(),
            pl.col("score").filter(top).first(),
            pl.col("value").filter(top).first(),
            pl.col("unit").filter(top).first(),
            pl.col("positive").filter(top).first(),
            pl.col("ai_status").filter(top).first(),
            pl.col("priority").max().round(1),
            pl.col("waited_hours").filter(top).first().round(1),
            pl.col("target_hours").filter(top).first(),
            pl.col("service").unique().sort().str.join("|").alias("services"),
            pl.len().alias("findings"),
            pl.col("scored_at").max(),
            pl.col("patient_key").first(),
            pl.col("institution").first(),
            *(
                pl.col(c).first()
                for c in (
                    "patient_sex",
                    "patient_age_months",
                    "institution_name",
                    "modalities",
                    "study_description",
                    "acquired_at",
                    "status",
                    "first_decided_at",
                    "decisions",
                    "conflict",
                )
            ),
        )
        .with_columns(
            pl.col("status").fill_null("new"),
            pl.col("conflict").fill_null(False),
            (pl.col("score") * 100).round().cast(pl.Int64).alias("score_100"),
            (pl.col("patient_age_months") // 12).alias("age_years"),
            (pl.col("waited_hours") > pl.col("target_hours")).alias("overdue"),
        )
    )
    return study_rows.sort(
        pl.col("status").is_in(list(OPEN)),
        pl.when(pl.col("status").is_in(list(OPEN)))
        .then(pl.col("priority"))
        .otherwise(pl.col("first_decided_at").dt.epoch("s").cast(pl.Float64)),
        pl.col("acquired_at"),
        descending=[True, True, False],
        nulls_last=True,
    )


def narrow(
    rows: pl.DataFrame,
    services: Sequence[str] = (),
    modalities: Sequence[str] = (),
    statuses: Sequence[str] = (),
    since: date | None = None,
    until: date | None = None,
    institutions: Sequence[str] = (),
) -> pl.DataFrame:
    """The worklist's rows that pass every filter given (an empty filter passes all): any of
    the services or modalities, the statuses, the sending institutions, and acquisition days
    counted in Korea's time (a study at 08:00 in Gwangju is the previous day in UTC)."""
    where = pl.lit(True)
    if services:
        where &= (
            pl.col("services").str.split("|").list.set_intersection(list(services)).list.len() > 0
        )
    if modalities:
        where &= (
            pl.col("modalities").str.split("|").list.set_intersection(list(modalities)).list.len()
            > 0
        )
    if statuses:
        where &= pl.col("status").is_in(list(statuses))
    day = pl.col("acquired_at").dt.convert_time_zone("Asia/Seoul").dt.date()
    if since:
        where &= day >= since
    if until:
        where &= day <= until
    if institutions:
        where &= pl.col("institution").is_in(list(institutions))
    return rows.filter(where)


def status_counts(rows: pl.DataFrame) -> dict[str, int]:
    """How many worklist studies are in each status (every status, zero included)."""
    found = dict(rows.group_by("status").len().iter_rows()) if rows.height else {}
    return {s: int(found.get(s, 0)) for s in STATUSES}
