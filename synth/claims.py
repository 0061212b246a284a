"""From visits to the claims the city receives: HIRA research-extract tables and pharmacy claims.

For a slice of the population, ``ClaimsBuilder.build`` turns visits into the rows of

* ``T200`` statements (one per visit or admission), ``T300`` treatment lines, ``T400`` diagnoses
  and ``T530`` prescriptions issued, with HIRA's column names;
* pharmacy statements ``PHARM_T200`` and ``PHARM_T300`` (``synth.pharmacy``), which follow the
  prescriptions;
* corrected statements re-delivered in a later month (``synth.corrections``), and the imaging
  orders of the AI-platform institutions.

The layout and fee rules of the claims system live in ``synth.hira``.

Every frame carries a ``_month`` column: the delivery (YYYYMM) it belongs to. The patient column
``JID`` carries the resident registration number, as the city receives it before
pseudonymisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

import numpy as np
import polars as pl

from synth import reference as ref
from synth.config import CityConfig
from synth.corrections import redeliver
from synth.hira import (
    HOSPITAL_CLASSES,
    LINE_TYPE,
    T300_COLUMNS,
    T400_COLUMNS,
    TABLES,
    patient_share,
    unit_price,
)
from synth.imaging.orders import ImagingOrder
from synth.institutions import Enrolment, exam_capable
from synth.pharmacy import dispense
from synth.population import age_years

# Extra lines by visit reason: (reason or kcd prefix, EDI code, probability). A modelling choice.
PROCEDURES: Final = (
    ("back_pain", "MM010", 0.7),
    ("back_pain", "MM105", 0.5),
    ("osteoarthritis", "MM010", 0.7),
    ("osteoarthritis", "MM105", 0.5),
    ("vertebral_fracture", "MM010", 0.6),
    ("diabetes", "B2570", 0.5),
    ("dyslipidaemia", "B2611", 0.25),
    ("hypertension", "B0010", 0.1),
    ("pneumonia", "B0010", 0.6),
    ("dental:K053", "U2232", 0.6),
    ("dental:K021", "U1010", 0.6),
    ("dental:K040", "U1010", 0.4),
)
INJECTION_RATE: Final = 0.12  # acute adult visits with an intramuscular injection
# Share of an enrolled institution's imaging that it sends to the platform: studies it wants an AI
# reading or a remote reading for, or that the patient wants in the citizen app. A modelling choice
# (no published figure); it keeps uploads near 40 studies per 1,000 residents a year.
UPLOAD_SHARE: Final = 0.3


@dataclass
class ClaimsChunk:
    """What one slice of the population produced, ready for the delivery writers."""

    tables: dict[str, pl.DataFrame]
    orders: list[ImagingOrder] = field(default_factory=list)
    corrections: pl.DataFrame = field(default_factory=pl.DataFrame)


class ClaimsBuilder:
    """Builds claims for slices of the population; prepared once per process."""

    def __init__(
        self, cfg: CityConfig, institutions: pl.DataFrame, enrolments: list[Enrolment]
    ) -> None:
        self.cfg = cfg
        # Visit days count from the first day of the history, if any (``synth.history``).
        self.start = np.datetime64(cfg.origin, "D")
        self.inst = institutions.with_row_index("inst").with_columns(pl.col("inst").cast(pl.Int32))
        self.pharmacies = institutions.filter(pl.col("cl_cd") == "81")
        self.edi = ref.floats(ref.codes("edi_procedures"), "price")
        self.prices: dict[str, float] = dict(self.edi.select("edi_code", "price").iter_rows())
        self.drugs = ref.floats(ref.codes("drugs"), "unit_price")
        self.regimens = ref.floats(ref.param("regimens"), "per_dose").with_columns(
            pl.col("per_day", "every_days").cast(pl.Int32)
        )
        self.exams = ref.floats(ref.param("imaging_exams"), "abnormal_rate").with_columns(
            pl.col("age_min", "age_max").cast(pl.Int32)
        )
        self.triggers = ref.floats(ref.param("imaging_triggers"), "probability")
        self.capable = exam_capable(institutions)
        enrolled = pl.DataFrame(
            {
                "YID": [e.ykiho for e in enrolments],
                "selected": [e.selected for e in enrolments],
            },
            schema={"YID": pl.Utf8, "selected": pl.Date},
        )
        self.enrolled = enrolled

    # -- statements ---------------------------------------------------------------------------

    def build(
        self,
        rng: np.random.Generator,
        chunk: int,
        people: pl.DataFrame,
        visits: pl.DataFrame,
        force_exam: pl.Series | None = None,
    ) -> ClaimsChunk:
        """All claims of one slice.

        Args:
            rng: The slice's own stream.
            chunk: The slice number; it is part of every statement id, so ids never collide.
            people: The slice's people (population schema).
            visits: Their visits (``synth.care`` schema).
            force_exam: Optional exam per visit that must be billed and ordered (used to make
                sure even a small city has studies for every AI service).
        """
        if not visits.height:
            return ClaimsChunk(
                {
                    name: pl.DataFrame(schema=dict.fromkeys(cols, pl.Utf8))
                    for name, cols in TABLES.items()
                }
            )
        v = (
            visits.with_row_index("seq")
            .join(
                people.select("pid", "rrn", "name", "sex", "birth_date", "insurance", "present_to"),
                on="pid",
                how="left",
                maintain_order="left",
            )
            .join(
                self.inst.select(
                    "inst",
                    pl.col("ykiho").alias("YID"),
                    "cl_cd",
                    pl.col("name").alias("inst_name"),
                    "district_code",
                ),
                on="inst",
                how="left",
                maintain_order="left",
            )
            .with_columns(
                (pl.lit(self.start).cast(pl.Date) + pl.duration(days="day")).alias("date"),
                pl.lit(force_exam).alias("force_exam")
                if force_exam is not None
                else pl.lit(None, pl.Utf8).alias("force_exam"),
            )
            .with_columns(
                pl.col("date").dt.strftime("%Y%m").alias("_month"),
                pl.col("date").dt.strftime("%Y%m%d").alias("RECU_FR_DD"),
                (pl.col("date") + pl.duration(days=pl.col("los") - 1))
                .dt.strftime("%Y%m%d")
                .alias("RECU_TO_DD"),
                pl.format(
                    "{}{}{}",
                    pl.col("date").dt.strftime("%Y%m"),
                    pl.lit(f"{chunk:03d}"),
                    pl.col("seq").cast(pl.Utf8).str.zfill(7),
                ).alias("SPEC_ID_SNO"),
            )
        )
        age = age_years(
            v["birth_date"].to_numpy().astype("datetime64[D]"),
            v["date"].to_numpy().astype("datetime64[D]"),
        )
        v = v.with_columns(pl.Series("PAT_AGE", age, dtype=pl.Int32))

        t400 = self._diagnoses(v)
        lines, orders = self._lines(rng, v)
        t530 = self._prescriptions(v)
        v = self._issue_numbers(v, t530, chunk)
        t200 = self._statements(v, lines, t400)
        ph200, ph300 = dispense(rng, v, t530, chunk, self.pharmacies, self.edi)
        tables = {
            "T200": t200,
            "T300": lines,
            "T400": t400,
            "T530": t530,
            "PHARM_T200": ph200,
            "PHARM_T300": ph300,
        }
        months = [f"{y}{m:02d}" for y, m in self.cfg.months()]
        corrections, tables = redeliver(rng, tables, months, self.prices)
        return ClaimsChunk(tables, self._orders(rng, v, orders), corrections)

    def _diagnoses(self, v: pl.DataFrame) -> pl.DataFrame:
        """T400: the main diagnosis first, then the sub-diagnoses, without repeats."""
        return (
            v.select(
                "seq",
                "SPEC_ID_SNO",
                "_month",
                pl.concat_list(pl.col("kcd"), pl.col("subs").str.split("|"))
                .list.eval(pl.element().filter(pl.element() != ""))
                .list.unique(maintain_order=True)
                .alias("SICK_CD"),
            )
            .explode("SICK_CD")
            .with_columns(
                (pl.int_range(pl.len()).over("SPEC_ID_SNO") + 1).alias("SICK_SNO"),
            )
            .with_columns(
                pl.when(pl.col("SICK_SNO") == 1)
                .then(pl.lit("1"))
                .otherwise(pl.lit("2"))
                .alias("SICK_TY_CD"),
                pl.col("SICK_SNO").cast(pl.Utf8),
            )
            .select(*T400_COLUMNS, "_month", "seq")
        )

    def _lines(
        self, rng: np.random.Generator, v: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """T300 lines of every statement, and the imaging exams billed (for orders)."""
        n = v.height
        hospital = v["cl_cd"].is_in(HOSPITAL_CLASSES).to_numpy()
        first = v["first"].to_numpy()
        inpatient = (v["kind"] == "inpatient").to_numpy()
        consult = np.where(
            hospital, np.where(first, "AA157", "AA257"), np.where(first, "AA154", "AA254")
        )
        parts = [
            pl.DataFrame(
                {
                    "seq": v["seq"],
                    "DIV_CD": consult,
                    "qty": np.ones(n, dtype=np.int64),
                    "kind": "consultation",
                }
            )
        ]
        if inpatient.any():
            idx = np.flatnonzero(inpatient)
            parts.append(
                pl.DataFrame(
                    {
                        "seq": v["seq"].to_numpy()[idx],
                        "DIV_CD": "AB220",
                        "qty": v["los"].to_numpy()[idx].astype(np.int64),
                        "kind": "inpatient",
                    }
                )
            )
        reason = v["reason"].to_numpy()
        kcd = v["kcd"].to_numpy()
        for key, code, p in PROCEDURES:
            if ":" in key:
                r, prefix = key.split(":")
                sel = (reason == r) & (kcd == prefix)
            else:
                sel = reason == key
            sel &= rng.random(n) < p
            if sel.any():
                parts.append(
                    pl.DataFrame(
                        {
                            "seq": v["seq"].filter(pl.Series(sel)),
                            "DIV_CD": code,
                            "qty": 1,
                            "kind": "procedure",
                        }
                    )
                )
        km = (v["dept"] == "80").to_numpy()
        if km.any():
            parts.append(
                pl.DataFrame(
                    {
                        "seq": v["seq"].filter(pl.Series(km)),
                        "DIV_CD": "40010",
                        "qty": 1,
                        "kind": "korean_medicine",
                    }
                )
            )
        adult_acute = (
            (v["kind"] == "acute").to_numpy()
            & (v["PAT_AGE"].to_numpy() >= 15)
            & ~km
            & (v["dept"] != "49").to_numpy()
        )
        inj = adult_acute & (rng.random(n) < INJECTION_RATE)
        if inj.any():
            parts.append(
                pl.DataFrame(
                    {
                        "seq": v["seq"].filter(pl.Series(inj)),
                        "DIV_CD": "KK010",
                        "qty": 1,
                        "kind": "injection",
                    }
                )
            )

        exams = self._exams(rng, v)
        if exams.height:
            parts.append(
                exams.select(
                    "seq",
                    pl.col("edi_code").alias("DIV_CD"),
                    pl.lit(1).alias("qty"),
                    pl.lit("imaging").alias("kind"),
                )
            )
        lines = (
            pl.concat(
                [
                    p.with_columns(pl.col("seq").cast(pl.UInt32), pl.col("qty").cast(pl.Int64))
                    for p in parts
                ]
            )
            .join(v.select("seq", "SPEC_ID_SNO", "cl_cd", "_month"), on="seq", how="left")
            .join(
                self.edi.select(
                    pl.col("edi_code").alias("DIV_CD"),
                    pl.col("name_ko").alias("DIV_NM"),
                    "category",
                ),
                on="DIV_CD",
                how="left",
            )
            .sort("seq", "kind", "DIV_CD")
            .with_columns(
                (pl.int_range(pl.len()).over("seq") + 1).cast(pl.Utf8).alias("LN_NO"),
                pl.col("category").replace_strict(LINE_TYPE, default="05").alias("DIV_TY_CD"),
                unit_price(pl.col("DIV_CD"), pl.col("cl_cd"), self.prices).alias("UNPRC"),
                pl.lit("1").alias("FQ1_MDCT_QTY"),
                pl.lit("1").alias("DY1_MDCT_QTY"),
                pl.col("qty").cast(pl.Utf8).alias("TOT_USE_QTY_OR_EXEC_FQ"),
            )
            .with_columns((pl.col("UNPRC") * pl.col("qty")).alias("AMT"))
            .select(*T300_COLUMNS, "_month", "seq")
        )
        return lines, exams

    def _exams(self, rng: np.random.Generator, v: pl.DataFrame) -> pl.DataFrame:
        """Imaging exams billed: triggered by the visit's reason, where the institution can perform
        the exam and the patient is eligible (sex, age), plus any forced exams."""
        # An episode is imaged at its first visit; chronic follow-ups may be imaged at any visit.
        cand = (
            v.filter(pl.col("first") | (pl.col("kind") == "chronic"))
            .select("seq", "reason", "YID", "sex", "PAT_AGE", "force_exam")
            .join(self.triggers, on="reason", how="inner")
        )
        cand = cand.filter(pl.Series(rng.random(cand.height) < cand["probability"].to_numpy()))
        forced = v.filter(pl.col("force_exam").is_not_null()).select(
            "seq",
            "reason",
            "YID",
            "sex",
            "PAT_AGE",
            "force_exam",
            pl.col("force_exam").alias("exam"),
            pl.lit(1.0).alias("probability"),
        )
        cand = pl.concat([cand.select(forced.columns), forced]).unique(
            ["seq", "exam"], keep="first", maintain_order=True
        )
        return (
            cand.join(self.capable.rename({"ykiho": "YID"}), on=["YID", "exam"], how="semi")
            .join(
                self.exams.select(
                    "exam", "edi_code", pl.col("sex").alias("exam_sex"), "age_min", "age_max"
                ),
                on="exam",
            )
            .filter(
                (
                    (pl.col("exam_sex") == "")
                    | pl.col("exam_sex").is_null()
                    | (pl.col("exam_sex") == pl.col("sex"))
                )
                & pl.col("PAT_AGE").is_between(pl.col("age_min"), pl.col("age_max"))
            )
            .select("seq", "exam", "edi_code")
            .sort("seq", "exam")
        )

    def _prescriptions(self, v: pl.DataFrame) -> pl.DataFrame:
        """T530: each regimen's drugs for the visit's prescription days."""
        rx = (
            v.filter(pl.col("regimens") != "")
            .select(
                "seq",
                "SPEC_ID_SNO",
                "_month",
                "rx_days",
                pl.col("regimens").str.split("|").alias("regimen"),
            )
            .explode("regimen")
            .join(self.regimens, on="regimen", how="inner")
            .unique(["seq", "gnl_nm_cd"], keep="first", maintain_order=True)
            .join(
                self.drugs.select(
                    pl.col("gnl_nm_cd"),
                    pl.col("product_cd"),
                    pl.col("product_name_ko"),
                    pl.col("unit_price"),
                ),
                on="gnl_nm_cd",
                how="left",
            )
            .sort("seq", "regimen", "gnl_nm_cd")
            .with_columns(
                (pl.int_range(pl.len()).over("seq") + 1).cast(pl.Utf8).alias("LN_NO"),
                # A weekly tablet is billed by its number of doses, not days.
                (pl.col("rx_days") // pl.col("every_days")).clip(lower_bound=1).alias("days"),
            )
            .with_columns(
                pl.col("unit_price").round(0).cast(pl.Int64).alias("UNPRC"),
                (pl.col("unit_price") * pl.col("per_dose") * pl.col("per_day") * pl.col("days"))
                .round(0)
                .cast(pl.Int64)
                .alias("AMT"),
            )
            .select(
                "SPEC_ID_SNO",
                "LN_NO",
                pl.col("gnl_nm_cd").alias("GNL_NM_CD"),
                pl.col("product_cd").alias("DIV_CD"),
                pl.col("product_name_ko").alias("DIV_NM"),
                pl.col("per_dose").round(2).cast(pl.Utf8).alias("FQ1_MDCT_QTY"),
                pl.col("per_day").cast(pl.Utf8).alias("DY1_MDCT_QTY"),
                pl.col("days").cast(pl.Utf8).alias("TOT_INJC_DDCNT_EXEC_FQ"),
                "UNPRC",
                "AMT",
                "_month",
                "seq",
            )
        )
        return rx

    def _issue_numbers(self, v: pl.DataFrame, t530: pl.DataFrame, chunk: int) -> pl.DataFrame:
        """Prescription issue numbers: date + 5 digits, unique per institution and day.

        The digits are the slice number (two digits) and a serial within the slice, so slices
        generated in parallel never collide; slices are sized so there are at most 100.
        """
        has_rx = v["seq"].is_in(t530["seq"].unique().implode())
        return v.with_columns(has_rx.alias("has_rx")).with_columns(
            pl.when("has_rx")
            .then(
                pl.format(
                    "{}{}{}",
                    "RECU_FR_DD",
                    pl.lit(f"{chunk % 100:02d}"),
                    (pl.col("seq").rank("ordinal").over("YID", "RECU_FR_DD", "has_rx") % 1000)
                    .cast(pl.Utf8)
                    .str.zfill(3),
                )
            )
            .otherwise(pl.lit(""))
            .alias("PRSC_ISSU_NO")
        )

    def _statements(self, v: pl.DataFrame, lines: pl.DataFrame, t400: pl.DataFrame) -> pl.DataFrame:
        totals = lines.group_by("seq").agg(pl.col("AMT").sum().alias("DMD_TRAMT"))
        second = t400.filter(pl.col("SICK_SNO") == "2").select(
            "SPEC_ID_SNO", pl.col("SICK_CD").alias("SSICK_CD")
        )
        fom = (
            pl.when(pl.col("kind") == "inpatient")
            .then(pl.lit("021"))
            .when(pl.col("cl_cd").is_in(["41", "51"]))
            .then(pl.lit("051"))
            .when(pl.col("cl_cd").is_in(["92", "93"]))
            .then(pl.lit("131"))
            .when(pl.col("cl_cd") == "71")
            .then(pl.lit("071"))
            .otherwise(pl.lit("031"))
        )
        out = (
            v.join(totals, on="seq", how="left")
            .join(second, on="SPEC_ID_SNO", how="left")
            .with_columns(
                pl.col("DMD_TRAMT").fill_null(0),
                pl.when(pl.col("sex") == "M")
                .then(pl.lit("1"))
                .otherwise(pl.lit("2"))
                .alias("SEX_TP_CD"),
                fom.alias("FOM_TP_CD"),
                pl.when(pl.col("dept") == "PHC")
                .then(pl.lit("00"))
                .otherwise(pl.col("dept"))
                .alias("DGSBJT_CD"),
            )
            .with_columns(
                patient_share(
                    pl.col("DMD_TRAMT"),
                    pl.col("cl_cd"),
                    pl.col("kind") == "inpatient",
                    pl.col("PAT_AGE"),
                    pl.col("insurance"),
                ).alias("DMD_SBRDN_AMT"),
            )
            .with_columns((pl.col("DMD_TRAMT") - pl.col("DMD_SBRDN_AMT")).alias("DMD_CHRG_AMT"))
            .select(
                "SPEC_ID_SNO",
                pl.col("rrn").alias("JID"),
                "YID",
                "SEX_TP_CD",
                pl.col("PAT_AGE").cast(pl.Utf8),
                pl.col("insurance").alias("INSUP_TP_CD"),
                "FOM_TP_CD",
                pl.col("cl_cd").alias("CL_CD"),
                "DGSBJT_CD",
                pl.col("kcd").alias("MSICK_CD"),
                pl.col("SSICK_CD").fill_null(""),
                "RECU_FR_DD",
                "RECU_TO_DD",
                pl.col("los").cast(pl.Utf8).alias("VST_DDCNT"),
                "PRSC_ISSU_NO",
                "DMD_TRAMT",
                "DMD_SBRDN_AMT",
                "DMD_CHRG_AMT",
                "_month",
                "seq",
            )
        )
        return out

    # -- pharmacy ---------------------------------------------------------------------------

    # -- imaging ----------------------------------------------------------------------------

    def _orders(
        self, rng: np.random.Generator, v: pl.DataFrame, exams: pl.DataFrame
    ) -> list[ImagingOrder]:
        """Imaging orders: exams billed at AI-platform institutions after their enrolment, of
        which the institution uploads ``UPLOAD_SHARE``; forced exams are always uploaded."""
        rows = (
            exams.join(
                v.select(
                    "seq",
                    "SPEC_ID_SNO",
                    "YID",
                    "inst_name",
                    "rrn",
                    "name",
                    "sex",
                    "birth_date",
                    "date",
                ),
                on="seq",
            )
            .join(self.enrolled, on="YID", how="inner")
            # The platform receives studies from its enrolment on, never from the history.
            .filter((pl.col("date") >= pl.col("selected")) & (pl.col("date") >= self.cfg.start))
            .join(v.select("seq", "force_exam"), on="seq", how="left")
            .join(self.exams.select("exam", "abnormal_rate"), on="exam")
            .sort("seq", "exam")
            .with_columns(
                # Accession numbers are DICOM SH (16 characters at most): the statement id without
                # its century, and the exam's serial on the statement.
                pl.format(
                    "{}{}",
                    pl.col("SPEC_ID_SNO").str.slice(2),
                    (pl.int_range(pl.len()).over("seq") + 1).cast(pl.Utf8).str.zfill(2),
                ).alias("accession")
            )
        )
        if not rows.height:
            return []
        sent = (rng.random(rows.height) < UPLOAD_SHARE) | (
            rows["force_exam"] == rows["exam"]
        ).fill_null(False).to_numpy()
        rows = rows.filter(pl.Series(sent))
        abnormal = rng.random(rows.height) < rows["abnormal_rate"].to_numpy()
        minute = rng.integers(9 * 60, 18 * 60, rows.height)
        out = []
        for i, r in enumerate(rows.iter_rows(named=True)):
            when = datetime.combine(r["date"], datetime.min.time()) + timedelta(
                minutes=int(minute[i])
            )
            out.append(
                ImagingOrder(
                    accession=r["accession"],
                    exam=r["exam"],
                    patient_id=r["rrn"],
                    patient_name=r["name"],
                    sex=r["sex"],
                    birth_date=r["birth_date"],
                    institution_code=r["YID"],
                    institution_name=r["inst_name"],
                    study_datetime=when,
                    abnormal=bool(abnormal[i]),
                    visit_key=r["SPEC_ID_SNO"],
                )
            )
        return out
