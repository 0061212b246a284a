"""A citizen's record: finding the patient, the timeline, the name, and who viewed it."""

from __future__ import annotations

from datetime import date
from typing import Final

import polars as pl

from lakehouse import identity, pseudonym, queries
from lakehouse import read as lake
from lakehouse.access.gate import Gate
from lakehouse.audit import scan as audit_log

VAULT: Final = "vault.identities"
FOUND_MAX: Final = 20  # people one lookup may name; more means the search says too little
FOUND: Final[dict[str, pl.DataType]] = {
    "citizen_key": pl.Utf8(),
    "age_years": pl.Int64(),
    "sex": pl.Utf8(),
}


class Records(Gate):
    """The record methods of ``Access``."""

    def find_patients(
        self, name: str = "", birth_date: date | None = None, registration_number: str = ""
    ) -> pl.DataFrame:
        """The citizens with this name and birth date, or this resident registration number,
        as a clinician may see them before any access is granted: the pseudonymous key, age
        (whole years today, from the birth month) and sex; at most ``FOUND_MAX``, by key.

        A registration number is hashed the way the bronze boundary hashes it (the citizen
        key); a name and birth date are matched in the identity vault (``identity.matching``).
        Opening the record still needs a basis (``basis``): a patient of the institution, a
        share code, or emergency access with a reason.

        Audited as what the access log must say (account, time, origin, whose data, what was
        done): one row per person found (``lookup:patient``), or one row naming nobody when
        none was, with how many matched and how the search was made. The searched name,
        birth date or number never reach the log; a keyed fingerprint of the search does, so a
        review can see the same person searched for again and again.

        Raises:
            ValueError: Neither a name with a birth date nor a registration number's shape.
            AccessDeniedError: Not a clinician (audited).
        """
        self._require("lookup:patient", "clinician")
        if registration_number.strip():
            if not pseudonym.is_registration_number(registration_number):
                raise ValueError("a registration number has 13 digits")
            digits = pseudonym.normalise(registration_number)
            how, searched = "registration number", digits
            people: pl.DataFrame = self._q(queries.citizens)((pseudonym.citizen_key(digits),))
        elif name.strip() and birth_date is not None:
            how = "name and birth date"
            searched = f"{identity.normalised_name(name)}\0{birth_date:%Y%m%d}"
            born: pl.DataFrame = self._q(queries.citizens_born)(birth_date.year, birth_date.month)
            vault = lake.frame(VAULT, pl.col("citizen_key").is_in(born["citizen_key"].implode()))
            keys = identity.matching(vault, name, birth_date)
            people = born.filter(pl.col("citizen_key").is_in(keys))
        else:
            raise ValueError("search by a name and a birth date, or a registration number")
        today = self.clock().date()
        found = (
            people.sort("citizen_key")
            .head(FOUND_MAX)
            .select(
                "citizen_key",
                (
                    today.year
                    - pl.col("birth_year")
                    - (pl.col("birth_month") > today.month).cast(pl.Int64)
                ).alias("age_years"),
                "sex",
            )
            .cast(FOUND)  # type: ignore[arg-type]
        )
        detail = (
            f"by {how}: {people.height} matched; "
            f"search {pseudonym.local_key('patient-lookup', searched)}"
        )
        shown = found["citizen_key"].to_list()
        self._log(
            [
                self._entry(
                    "lookup:patient",
                    "identification",
                    subject=s,
                    rows=int(s is not None),
                    detail=detail,
                )
                for s in shown or [None]
            ]
        )
        return found

    def timeline(self, subject_key: str) -> pl.DataFrame:
        """A citizen's lifetime timeline (one partition read), newest first, as the basis shows
        it (``Gate._visible``): the national extracts' records only once the citizen's record
        link stands (for them, their carer and what they share); a clinician's own
        institution's records only, under the institution basis; the chosen kinds under a
        share code."""
        purpose = self.basis("read:timeline", subject_key)
        rows = self._timeline_rows(subject_key, purpose)
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
        institution (code and ``institution_name``), when, what, on what basis and whether it
        was an emergency access."""
        self._require("read:access_history", "citizen")
        subject = str(self.principal.citizen_key)
        rows = (
            audit_log()
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
        codes = tuple(sorted(rows["institution"].drop_nulls().unique().to_list()))
        names: dict[str, str] = self._q(queries.institution_names)(codes) if codes else {}
        rows = rows.with_columns(
            pl.col("institution")
            .replace_strict(names, default=None, return_dtype=pl.Utf8)
            .alias("institution_name")
        )
        self._audit("read:access_history", "self", subject=subject, rows=rows.height)
        return rows
