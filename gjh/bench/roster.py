"""Who a crowd is (``gjh.bench.crowd``, ``tests/apps/test_load.py``): clinicians of the busiest
clinic and the citizens with the longest timelines, as local accounts made on the spot from the
lakehouse the environment names (``LAKEHOUSE_URI``)."""

from __future__ import annotations

import polars as pl

from lakehouse import accounts
from lakehouse import read as lake_read


def busiest_clinic(findings: pl.DataFrame) -> str:
    """The institution that sent the most AI-scored studies (of ``ai.findings``' rows)."""
    counts = findings.group_by("institution").len().sort("len", "institution", descending=True)
    return str(counts["institution"][0])


def crowd_roster(clinicians: int, citizens: int, password: str) -> list[accounts.Account]:
    """Accounts for a crowd: ``clinic.<n>``, clinicians of the clinic that sent the most
    AI-scored studies, and ``citizen.<n>``, the citizens with the longest timelines (longest
    first) among those whose record link stands, all signing in with ``password``; when fewer
    such citizens exist than asked for (a small city links a handful), the accounts take them
    in turn, several sessions on one record. A citizen sees the national extracts' records
    (most of a timeline) only once their record link stands (consent given, link completed,
    not withdrawn: ``Gate._national_visible``); one without it may see an empty timeline, whose
    page has no chart for a visitor to reach.

    Read from the lakehouse the environment names: the bench's stage process runs on its lake,
    a test makes the roster inside its lake's ``active()``."""
    clinic = busiest_clinic(lake_read.frame("ai.findings"))
    linked = lake_read.frame(
        "gold.citizen_consent",
        pl.col("consented") & pl.col("linked") & ~pl.col("withdrawn") & ~pl.col("deleted"),
    )["citizen_key"]
    # Counted while scanned, one column: the city's whole timeline read as a frame is 22 GiB.
    longest = (
        lake_read.scan("gold.citizen_timeline")
        .select("citizen_key")
        .filter(pl.col("citizen_key").is_in(linked.implode()))
        .group_by("citizen_key")
        .len()
        .sort("len", "citizen_key", descending=True)
        .head(citizens)
        .collect(engine="streaming")["citizen_key"]
        .to_list()
    )
    longest = [longest[n % len(longest)] for n in range(citizens)] if longest else []
    hashed = accounts.hash_password(password)
    return [
        *(
            accounts.Account(f"clinic.{n}", "clinician", institution=clinic, password_hash=hashed)
            for n in range(clinicians)
        ),
        *(
            accounts.Account(f"citizen.{n}", "citizen", citizen_key=key, password_hash=hashed)
            for n, key in enumerate(longest)
        ),
    ]
