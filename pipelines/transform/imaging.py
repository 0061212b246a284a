"""Instances to series and studies, and which studies are complete.

Pure Polars: ``silver.imaging_instances`` rows in, ``silver.imaging_series`` and
``silver.imaging_studies`` rows out. A series or study is always rebuilt from all of its
instances, so a study that arrives in several parts ends up exactly as if it had come whole.

A study is complete (Orthanc's "stable study") once no instance has arrived for the quiet
period; only complete studies are routed. An instance arriving after a study was routed reopens
it: its decisions are withdrawn and it is routed again once quiet.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from lakehouse.catalog import table

SERIES_ATTRIBUTES = (
    "modality",
    "series_number",
    "series_description",
    "body_part",
    "view_position",
    "laterality",
    "image_type",
    "presentation_intent",
    "pixel_spacing_mm",
    "sampling_frequency_hz",
    "waveform_channels",
    "sop_class_uid",
    "rows",
    "columns",
)
STUDY_ATTRIBUTES = (
    "citizen_key",
    "patient_key",
    "patient_sex",
    "patient_age_months",
    "institution",
    "institution_name",
    "accession_number",
    "study_description",
)


def _received() -> list[pl.Expr]:
    return [
        pl.col("received_at").min().alias("first_received_at"),
        pl.col("received_at").max().alias("last_received_at"),
    ]


def series_of(instances: pl.DataFrame) -> pl.DataFrame:
    """One row per series: its first instance's attributes (by instance number), whether any
    instance carries burned-in annotation, and its instance and frame counts."""
    ordered = instances.sort("series_instance_uid", "instance_number", "sop_instance_uid")
    burned = pl.col("burned_in_annotation")
    out = ordered.group_by("series_instance_uid", maintain_order=True).agg(
        pl.col("study_instance_uid").first(),
        *(pl.col(c).drop_nulls().first().alias(c) for c in SERIES_ATTRIBUTES),
        pl.when(burned.any())
        .then(True)
        .when(burned.is_not_null().any())
        .then(False)
        .otherwise(None)
        .alias("burned_in_annotation"),
        pl.len().alias("instances"),
        pl.col("number_of_frames").fill_null(1).sum().alias("frames"),
        *_received(),
    )
    return table("silver.imaging_series").conform(out)


def studies_of(instances: pl.DataFrame, conflicted: set[str]) -> pl.DataFrame:
    """One row per study, from its instances; ``conflicted`` names the studies for which an
    instance naming another patient was quarantined (they stay flagged)."""

    def joined(column: str, name: str) -> pl.Expr:
        return pl.col(column).drop_nulls().unique().sort().str.join("|").alias(name)

    ordered = instances.sort("study_instance_uid", "received_at", "sop_instance_uid")
    out = (
        ordered.group_by("study_instance_uid", maintain_order=True)
        .agg(
            *(pl.col(c).drop_nulls().first().alias(c) for c in STUDY_ATTRIBUTES),
            pl.col("study_datetime").min(),
            joined("modality", "modalities"),
            joined("body_part", "body_parts"),
            pl.col("series_instance_uid").n_unique().alias("series_count"),
            pl.len().alias("instance_count"),
            *_received(),
        )
        .with_columns(
            pl.col("study_datetime")
            .dt.convert_time_zone("Asia/Seoul")
            .dt.date()
            .alias("study_date"),
            pl.col("body_parts").replace("", None),
            pl.col("study_instance_uid").is_in(list(conflicted)).alias("patient_conflict"),
        )
    )
    return table("silver.imaging_studies").conform(out)


def to_route(
    studies: pl.DataFrame, routing: pl.DataFrame, now: datetime, quiet: timedelta
) -> tuple[list[str], list[str]]:
    """(studies to route now, studies to reopen).

    To route: complete and not yet decided for their latest instance. To reopen: decided, but
    an instance arrived since and the study is not yet quiet again (their decisions are
    withdrawn until it is).
    """
    decided = routing.group_by("study_instance_uid").agg(pl.col("received_until").max())
    joined = studies.select("study_instance_uid", "last_received_at").join(
        decided, on="study_instance_uid", how="left"
    )
    quiet_now = joined["last_received_at"] <= now - quiet
    fresh = joined["received_until"].is_null() | (
        joined["received_until"] < joined["last_received_at"]
    )
    route = joined.filter(quiet_now & fresh)["study_instance_uid"].to_list()
    reopen = joined.filter(
        ~quiet_now
        & joined["received_until"].is_not_null()
        & (joined["received_until"] < joined["last_received_at"])
    )["study_instance_uid"].to_list()
    return route, reopen
