"""The emergency summary (FHIR International Patient Summary) and "export everything".

Who may: a citizen for their own record and for a parent who made them their carer (proxy); a
clinician with a basis (a share code, their institution's patient, emergency access: the IPS is
what an emergency doctor needs first). Exporting everything is the citizen's own right only.
Every call is decided by ``basis`` and audited, refusals included; an export's audit row says
how many rows it held and of what.

National-extract tables (claims, diagnoses, prescriptions, dispensings) are read in one place,
``Summary._national_extract``, where the consent rule decides whether they may be shown; the
programme's own data (centre measurements, studies sent through the AI platform, their AI
findings) is read from sign-up.
"""

from __future__ import annotations

import io
import zipfile
from typing import Final

import polars as pl

from lakehouse import identity, queries
from lakehouse import read as lake
from lakehouse.access.medicines import Medicines
from lakehouse.fhir import Record, everything_bundle, ips_bundle, select
from lakehouse.insights import medicines as taking
from lakehouse.sr.codes import DISCLAIMER_EN, DISCLAIMER_KO

CLAIMS: Final = "silver.claims"
DIAGNOSES: Final = "silver.diagnoses"
PRESCRIPTIONS: Final = "silver.prescriptions"
DISPENSINGS: Final = "silver.dispensings"
STUDIES: Final = "silver.imaging_studies"
FINDINGS: Final = "ai.findings"
VAULT: Final = "vault.identities"
README: Final = f"""내 건강기록 전체 내보내기 · Export of my whole health record

everything.json  FHIR R4B Bundle (collection) of the whole record
ips.json         FHIR International Patient Summary (document Bundle)
*.csv            the record's rows, one file per source table (UTF-8 with BOM)

AI 결과는 진단이 아닙니다. {DISCLAIMER_KO}
AI results are not a diagnosis. {DISCLAIMER_EN}
모든 자료는 합성 데이터입니다 · All data is synthetic.
"""


CLAIM_INSTITUTION: Final = "_claim_ykiho"


def in_use(children: pl.DataFrame, claims: pl.DataFrame) -> pl.DataFrame:
    """The rows of the version of each statement in use (silver keeps every delivered version
    of a statement's diagnoses, prescriptions and dispensings; the one in use has the
    statement's ``delivery_id``), with their statement's institution (``CLAIM_INSTITUTION``:
    a diagnosis's institution, as the timeline names it)."""
    heads = claims.select("spec_id", "delivery_id", pl.col("ykiho").alias(CLAIM_INSTITUTION))
    return children.join(heads, on=["spec_id", "delivery_id"])


def _medicines(supplies: pl.DataFrame) -> pl.DataFrame:
    """Medication periods (``lakehouse.insights.medicines``) as the IPS builder takes
    medicines, newest first."""
    return supplies.sort("start", descending=True).select(
        "ingredient_code",
        "product_code",
        "product_name",
        "dose",
        "per_day",
        "days",
        "start",
        "prescriber",
    )


class Summary(Medicines):
    """The summary and export methods of ``Access``; a ``Medicines`` for the one definition
    of what the citizen takes now, and the day it is counted from (``_as_of``)."""

    def _national_extract(self, subject: str, purpose: str) -> dict[str, pl.DataFrame]:
        """The citizen's rows of the national-extract tables (claims, and the versions in use of
        their children) as ``purpose`` may see them (``Gate._record_rows``: the consent rule,
        one institution's records, a share's kinds, or their union), each cut by the
        institution the timeline names for it: the one read of these tables here. The claims
        are read whole only to pick each child's version and a diagnosis's institution."""
        claims: pl.DataFrame = self._q(queries.citizen_rows)(CLAIMS, subject)

        def child(table: str, kind: str, institution: str) -> pl.DataFrame:
            rows = in_use(self._q(queries.citizen_rows)(table, subject), claims)
            cut = self._record_rows(rows, subject, purpose, kind, pl.col(institution))
            return cut.drop(CLAIM_INSTITUTION)

        return {
            "claims.csv": self._record_rows(claims, subject, purpose, "visit", pl.col("ykiho")),
            "diagnoses.csv": child(DIAGNOSES, "diagnosis", CLAIM_INSTITUTION),
            "prescriptions.csv": child(PRESCRIPTIONS, "prescription", "ykiho"),
            "dispensings.csv": child(DISPENSINGS, "dispensing", "pharmacy_ykiho"),
        }

    def _tables(self, subject: str, purpose: str) -> dict[str, pl.DataFrame]:
        """The citizen's rows ``purpose`` may see, by the CSV file each becomes in an export:
        the national extract's (the statements' versions in use) and the programme's own
        (centre measurements, studies, their AI findings)."""
        found = self._national_extract(subject, purpose)
        # The programme's own data, cut as the timeline's measurement and imaging rows are (the
        # centre is no clinic's own record; a study is its sender's).
        measured: pl.DataFrame = self._q(queries.centre_values)(subject)
        studies: pl.DataFrame = self._q(queries.citizen_rows)(STUDIES, subject)
        studies = self._record_rows(studies, subject, purpose, "imaging", pl.col("institution"))
        found["centre_measurements.csv"] = self._record_rows(
            measured, subject, purpose, "measurement", pl.lit(None, pl.Utf8)
        )
        found["imaging_studies.csv"] = studies
        found["ai_findings.csv"] = self._q(queries.citizen_rows)(FINDINGS, subject).filter(
            pl.col("study_instance_uid").is_in(studies["study_instance_uid"].implode())
        )
        return found

    def _person(self, subject: str, named: bool) -> tuple[dict[str, object], str | None]:
        person: pl.DataFrame = self._q(queries.citizens)((subject,))
        if person.is_empty():
            raise self._deny("read:summary", "no such citizen", subject, "no_record")
        name = None
        if named:
            found = lake.frame(VAULT, pl.col("citizen_key") == subject)
            name = identity.decrypt(found["name_enc"][0]) if found.height else None
        return person.row(0, named=True), name

    def _record(
        self,
        tables: dict[str, pl.DataFrame],
        subject: str,
        purpose: str,
        everything: bool = False,
    ) -> Record:
        """The citizen's record as the builder takes it (from ``_tables``): recent (the
        summary) or all of it, with the day its medicines are counted from (``_as_of``); the
        name for the citizen themselves only."""
        today, as_of = self.clock().date(), self._as_of()
        diagnoses, prescribed = tables["diagnoses.csv"], tables["prescriptions.csv"]
        dispensed = tables["dispensings.csv"]
        measured, studies = tables["centre_measurements.csv"], tables["imaging_studies.csv"]
        person, name = self._person(subject, named=purpose == "self")
        if everything:
            medicines = _medicines(taking.periods(prescribed, dispensed))
            problems = select.problems(diagnoses, today, days=None)
            studies = studies.sort("study_date", descending=True, nulls_last=True)
        else:
            medicines = _medicines(taking.current(prescribed, dispensed, as_of))
            problems = select.problems(diagnoses, today)
            measured = select.measurements(measured, today)
            studies = select.studies(studies, today)
        names = self._q(queries.institution_names)(tuple(medicines["prescriber"].unique()))
        medicines = medicines.with_columns(
            pl.col("prescriber")
            .replace_strict(names, default=None, return_dtype=pl.Utf8)
            .alias("prescriber_name")
        )
        chosen = tables["ai_findings.csv"].filter(
            pl.col("study_instance_uid").is_in(studies["study_instance_uid"].implode())
        )
        return Record(person, name, problems, medicines, measured, studies, chosen, as_of)

    def _audited(self, action: str, subject: str, purpose: str, rows: int, detail: str) -> None:
        self._audit(
            action,
            purpose,
            subject=subject,
            rows=rows,
            emergency=purpose == "emergency",
            detail=detail,
        )

    def emergency_summary(self, subject_key: str) -> Record:
        """What the emergency summary screen shows, exactly what the IPS Bundle holds: problems
        coded in the last year, the medicines taken now (``Medicines``: on the last day the national
        extracts reach when that is before today, ``Record.as_of``), the latest value of each centre
        measure within a year, the newest studies and their AI findings. The name only for the
        citizen themselves."""
        purpose = self.basis("read:summary", subject_key)
        record = self._record(self._tables(subject_key, purpose), subject_key, purpose)
        rows = sum(
            f.height
            for f in (record.problems, record.medicines, record.measurements, record.studies)
        )
        self._audited("read:summary", subject_key, purpose, rows, _held(record))
        return record

    def ips_bundle(self, subject_key: str) -> bytes:
        """The emergency summary as a FHIR IPS document Bundle (JSON, UTF-8)."""
        purpose = self.basis("export:ips", subject_key)
        record = self._record(self._tables(subject_key, purpose), subject_key, purpose)
        bundle = ips_bundle(record, self.clock())
        entries = len(bundle.entry or [])
        self._audited("export:ips", subject_key, purpose, entries, f"IPS: {_held(record)}")
        return bundle.model_dump_json(indent=1).encode("utf-8")

    def export_all(self, subject_key: str) -> bytes:
        """All of my record in one zip: the whole record as a FHIR Bundle, the IPS, and each
        source table's rows as CSV. The citizen's own record only (not a carer's or a
        clinician's); audited with the rows and files it held."""
        self._require("export:all", "citizen")
        purpose = self.basis("export:all", subject_key)
        if purpose != "self":
            raise self._deny(
                "export:all", "only the citizen exports their whole record", subject_key
            )
        now = self.clock()
        tables = self._tables(subject_key, purpose)
        everything = everything_bundle(
            self._record(tables, subject_key, purpose, everything=True), now
        )
        summary = ips_bundle(self._record(tables, subject_key, purpose), now)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("README.txt", README)
            archive.writestr("everything.json", everything.model_dump_json(indent=1))
            archive.writestr("ips.json", summary.model_dump_json(indent=1))
            for name, frame in tables.items():
                # With a byte-order mark: spreadsheet programs then read the Korean as UTF-8.
                archive.writestr(name, frame.write_csv(include_bom=True))
        rows = sum(f.height for f in tables.values())
        held = ", ".join(f"{name} {frame.height}" for name, frame in tables.items())
        detail = f"zip: everything.json {len(everything.entry or [])} entries, ips.json, {held}"
        self._audited("export:all", subject_key, purpose, rows, detail)
        return buffer.getvalue()


def _held(record: Record) -> str:
    """What a summary held, for its audit row."""
    return (
        f"{record.problems.height} problems, {record.medicines.height} medicines, "
        f"{record.measurements.height} measurements, {record.studies.height} studies"
    )
