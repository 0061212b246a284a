"""Sign-in attempts go through their own outbox (``accounts.SIGN_IN_LOG``, ``lakehouse.ledger``),
as the access log does: an attempt is on disk when ``sign_in`` returns and in ``ops.sign_ins``
once the app's flusher moved it, and the lockout counts the attempts still waiting."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from lakehouse import accounts, delta
from lakehouse import read as lake_read
from lakehouse.config import environment


@pytest.mark.integration
def test_attempts_wait_in_the_outbox_still_lock_the_account_and_arrive_once(
    tmp_path: Path,
) -> None:
    with environment(
        LAKEHOUSE_URI=str(tmp_path / "lakehouse"),
        GJH_SECRETS_DIR=str(tmp_path / "secrets"),
        GJH_ACCOUNTS=str(tmp_path / "accounts.json"),
        GJH_OUTBOX_DIR=str(tmp_path / "outbox"),
    ):
        right = "correct horse battery"
        accounts.save(
            {
                "dr.kim": accounts.Account(
                    "dr.kim",
                    "clinician",
                    institution="12345678",
                    password_hash=accounts.hash_password(right),
                )
            }
        )
        log = accounts.SIGN_IN_LOG
        log.start_flusher(every=3600)  # an app's flusher, which does not run during the test
        try:
            for _ in range(accounts.LOCK_AFTER - 1):
                with pytest.raises(accounts.SignInError, match="wrong_password"):
                    accounts.sign_in("dr.kim", "guess", "test")
            with pytest.raises(accounts.SignInError, match="locked"):  # the fifth failure
                accounts.sign_in("dr.kim", "guess", "test")
            with pytest.raises(accounts.SignInError, match="locked"):  # even the right one
                accounts.sign_in("dr.kim", right, "test")
            # Nothing is in the table yet: the lockout counted the attempts still waiting.
            assert not delta.exists(accounts.SIGN_INS)
            assert log.outbox().count() == accounts.LOCK_AFTER + 1
            assert log.scan().collect().height == accounts.LOCK_AFTER + 1
        finally:
            log.stop_flusher()  # a last flush, as when the app's server stops
        assert log.outbox().count() == 0
        table = lake_read.frame(accounts.SIGN_INS).sort("at")
        assert table["outcome"].to_list() == ["wrong_password"] * accounts.LOCK_AFTER + ["locked"]
        assert table["event_id"].n_unique() == table.height
        assert log.scan().collect().height == table.height  # each row once
        # Without a flusher (scripts, the pipelines), an attempt is in the table at once.
        with pytest.raises(accounts.SignInError, match="unknown_account"):
            accounts.sign_in("nobody", "x", "test")
        unknown = lake_read.frame(accounts.SIGN_INS, pl.col("account") == "nobody")
        assert unknown["outcome"].to_list() == ["unknown_account"]
