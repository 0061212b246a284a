"""A citizen's record: the timeline, the name, and who viewed it."""

from __future__ import annotations

import polars as pl

from lakehouse import identity, queries
from lakehouse import read as lake
from lakehouse.access.gate import Gate
from lakehouse.audit import AUDIT


class Records(Gate):
    """The record methods of ``Access``."""

    def timeline(self, subject_key: str) -> pl.DataFrame:
        """A citizen's lifetime timeline (one partition read), newest first."""
        purpose = self.basis("read:timeline", subject_key)
        rows: pl.DataFrame = self._q(queries.timeline)(subject_key)
        self._audit(
            "read:timeline",
            purpose,
            subject=subject_key,
            rows=rows.height,
            emergency=purpose == "emergency",
        )
        return rows

    def name(self, subject_key: str) -> str:
        """The citizen's own name, decrypted from the vault: for the person themselves (and
        their proxy) only; clinicians see the pseudonymous key, age and sex."""
        purpose = self.basis("read:name", subject_key)
        if purpose not in ("self", "proxy"):
            raise self._deny(
                "read:name", "names are shown to the person and their proxy only", subject_key
            )
        found = lake.frame("vault.identities", pl.col("citizen_key") == subject_key)
        self._audit("read:name", purpose, subject=subject_key, rows=found.height)
        return identity.decrypt(found["name_enc"][0]) if found.height else ""

    def who_viewed_me(self) -> pl.DataFrame:
        """Who read the citizen's record (other than the citizen), newest first: account, role,
        institution, when, what, on what basis and whether it was an emergency access."""
        self._require("read:access_history", "citizen")
        subject = str(self.principal.citizen_key)
        rows = (
            lake.scan(AUDIT)
            .filter(
                (pl.col("subject_key") == subject)
                & (pl.col("account") != self.principal.account)
                & (pl.col("outcome") == "allowed")
            )
            .select(
                "at", "account", "role", "institution", "action", "purpose", "emergency", "rows"
            )
            .sort("at", descending=True)
            .collect()
        )
        self._audit("read:access_history", "self", subject=subject, rows=rows.height)
        return rows
