"""My medicines now and the insights, through the access layer on the built demo city: what is
current is what the rule says of the citizen's whole record, names replace codes, the day
counted is the extract's end, every read is audited, another citizen's are refused (audited),
and the national records come through one method the consent rule can close."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import polars as pl
import pytest

from lakehouse.access import Access, AccessDeniedError, Principal
from lakehouse.insights import medicines
from tests.lakehouse.insights.lake import candidates, with_duplicate
from tests.pipelines.conftest import Lake

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def lake(platform_lake: Lake) -> Iterator[Lake]:
    with platform_lake.active():
        yield platform_lake


@pytest.fixture(scope="module")
def alice(lake: Lake) -> str:
    return with_duplicate(lake)


def citizen(key: str, account: str = "alice", now: datetime | None = None) -> Access:
    principal = Principal(account, "citizen", citizen_key=key, origin="test")
    return Access(principal, clock=(lambda: now) if now else lambda: datetime.now(UTC))


def in_use(lake: Lake, table: str, key: str) -> pl.DataFrame:
    heads = lake.frame("silver.claims").select("spec_id", "delivery_id")
    return lake.frame(table, pl.col("citizen_key") == key).join(
        heads, on=["spec_id", "delivery_id"]
    )


def audit(lake: Lake, account: str, action: str) -> pl.DataFrame:
    return lake.frame(
        "ops.audit_log", (pl.col("account") == account) & (pl.col("action") == action)
    ).sort("at")


def test_what_is_current_is_the_rule_over_the_whole_record_with_names(
    lake: Lake, alice: str
) -> None:
    now = citizen(alice).medicines_now(alice)
    end = lake.frame("silver.dispensings")["dispensed_on"].max()
    assert now.as_of == end  # the extract ends before today
    truth = medicines.current(
        in_use(lake, "silver.prescriptions", alice),
        in_use(lake, "silver.dispensings", alice),
        now.as_of,
    )
    assert now.medicines.height == truth.height > 0
    assert sorted(now.medicines["source_ref"].to_list()) == sorted(truth["source_ref"].to_list())
    register = lake.frame("silver.institutions")
    names = dict(zip(register["ykiho"].to_list(), register["name"].to_list(), strict=True))
    for row in now.medicines.iter_rows(named=True):
        assert row["prescriber_name"] == names[row["prescriber"]]
        assert row["name_ko"] and row["name_en"] and row["strength"]
        assert row["start"] <= now.as_of <= row["until"]
    last = audit(lake, "alice", "read:medicines").row(-1, named=True)
    assert (last["subject_key"], last["purpose"], last["outcome"]) == (alice, "self", "allowed")
    assert last["rows"] == now.medicines.height


def test_before_the_extract_ends_today_is_the_day_counted(lake: Lake, alice: str) -> None:
    midyear = datetime(2025, 7, 1, 3, tzinfo=UTC)
    now = citizen(alice, now=midyear).medicines_now(alice)
    assert now.as_of == date(2025, 7, 1)
    assert all(r["start"] <= now.as_of <= r["until"] for r in now.medicines.iter_rows(named=True))


def test_insights_name_records_that_exist_with_their_days_and_places(
    lake: Lake, alice: str
) -> None:
    found = citizen(alice).insights(alice)
    duplicates = [i for i in found.items if i.rule == "same_ingredient"]
    assert duplicates
    tables = {
        "silver.prescriptions": ("issued_on", "ykiho"),
        "silver.dispensings": ("dispensed_on", "pharmacy_ykiho"),
    }
    for item in duplicates:
        assert len({r.prescriber or r.institution for r in item.records}) >= 2
        for record in item.records:
            table, spec, delivery, line = record.source_ref.split(":")
            day, place = tables[table]
            row = lake.frame(
                table,
                (pl.col("spec_id") == spec)
                & (pl.col("delivery_id") == delivery)
                & (pl.col("line_no") == int(line)),
            ).row(0, named=True)
            assert (row[day], row[place], row["citizen_key"]) == (
                record.day,
                record.institution,
                alice,
            )
            assert record.institution in found.institutions
    assert "read:insights" in audit(lake, "alice", "read:insights")["action"].to_list()


@pytest.mark.security
def test_another_citizens_medicines_and_insights_are_refused_and_audited(
    lake: Lake, alice: str
) -> None:
    bob = next(k for k in candidates(lake) if k != alice)
    for read in (Access.medicines_now, Access.insights):
        with pytest.raises(AccessDeniedError):
            read(citizen(bob, "bob"), alice)
    refused = lake.frame(
        "ops.audit_log", (pl.col("account") == "bob") & (pl.col("outcome") != "allowed")
    )
    assert {"read:medicines", "read:insights"} <= set(refused["action"].to_list())
    assert set(refused["subject_key"].to_list()) == {alice}


def test_the_demo_city_shows_overlaps_across_clinics(lake: Lake) -> None:
    """Among the linked citizens most likely to have them (only theirs show the national
    extracts), several do: the demo has real cases to show. The city-wide rates are the
    generator's test (``tests/synth/test_overlaps.py``); that the consent rule hides them
    before the record link is ``tests/lakehouse/test_access_rules.py``'s."""
    keys = candidates(lake, limit=20)
    rules = [
        {i.rule for i in citizen(k, "demo").insights(k).items if i.rule != "screening"}
        for k in keys
    ]
    assert sum("same_ingredient" in r for r in rules) >= 3
