"""The national claims system's layout and fee rules, as the extracts and the generator use them.

HIRA's research extracts name their tables T200 (statements), T300 (treatment lines), T400
(diagnoses) and T530 (prescriptions issued); pharmacy claims are statements of their own. The rules
below (fee add-on by institution class, patient share) decide the amounts on every statement.
"""

from __future__ import annotations

from typing import Final

import polars as pl

T200_COLUMNS: Final = [
    "SPEC_ID_SNO",
    "JID",
    "YID",
    "SEX_TP_CD",
    "PAT_AGE",
    "INSUP_TP_CD",
    "FOM_TP_CD",
    "CL_CD",
    "DGSBJT_CD",
    "MSICK_CD",
    "SSICK_CD",
    "RECU_FR_DD",
    "RECU_TO_DD",
    "VST_DDCNT",
    "PRSC_ISSU_NO",
    "DMD_TRAMT",
    "DMD_SBRDN_AMT",
    "DMD_CHRG_AMT",
]
T300_COLUMNS: Final = [
    "SPEC_ID_SNO",
    "LN_NO",
    "DIV_TY_CD",
    "DIV_CD",
    "DIV_NM",
    "FQ1_MDCT_QTY",
    "DY1_MDCT_QTY",
    "TOT_USE_QTY_OR_EXEC_FQ",
    "UNPRC",
    "AMT",
]
T400_COLUMNS: Final = ["SPEC_ID_SNO", "SICK_SNO", "SICK_CD", "SICK_TY_CD"]
T530_COLUMNS: Final = [
    "SPEC_ID_SNO",
    "LN_NO",
    "GNL_NM_CD",
    "DIV_CD",
    "DIV_NM",
    "FQ1_MDCT_QTY",
    "DY1_MDCT_QTY",
    "TOT_INJC_DDCNT_EXEC_FQ",
    "UNPRC",
    "AMT",
]
PHARM_T200_COLUMNS: Final = [
    "SPEC_ID_SNO",
    "JID",
    "YID",
    "SEX_TP_CD",
    "PAT_AGE",
    "INSUP_TP_CD",
    "FOM_TP_CD",
    "CL_CD",
    "MSICK_CD",
    "RECU_FR_DD",
    "PRSC_YID",
    "PRSC_ISSU_NO",
    "DMD_TRAMT",
    "DMD_SBRDN_AMT",
    "DMD_CHRG_AMT",
]
PHARM_T300_COLUMNS: Final = [
    "SPEC_ID_SNO",
    "LN_NO",
    "DIV_TY_CD",
    "DIV_CD",
    "GNL_NM_CD",
    "DIV_NM",
    "FQ1_MDCT_QTY",
    "DY1_MDCT_QTY",
    "TOT_USE_QTY_OR_EXEC_FQ",
    "UNPRC",
    "AMT",
]
TABLES: Final = {
    "T200": T200_COLUMNS,
    "T300": T300_COLUMNS,
    "T400": T400_COLUMNS,
    "T530": T530_COLUMNS,
    "PHARM_T200": PHARM_T200_COLUMNS,
    "PHARM_T300": PHARM_T300_COLUMNS,
}

# Fee-schedule add-on by institution class (종별가산율), approximate.
CLASS_ADD_ON: Final = {
    "01": 0.30,
    "11": 0.25,
    "21": 0.20,
    "28": 0.20,
    "31": 0.15,
    "41": 0.20,
    "51": 0.15,
    "71": 0.0,
    "81": 0.0,
    "92": 0.20,
    "93": 0.15,
}
# Patient share of outpatient care by class (National Health Insurance Act enforcement decree:
# 30% clinics, 40% hospitals, 50% general hospitals, 60% tertiary), inpatient 20%.
OUTPATIENT_SHARE: Final = {"01": 0.6, "11": 0.5, "21": 0.4, "28": 0.4, "41": 0.4, "92": 0.4}
INPATIENT_SHARE: Final = 0.2
CLINIC_SHARE: Final = 0.3
# People 65 and over pay a flat 1,500 KRW at clinics when the total is at most 15,000 KRW, and 1,000
# KRW at pharmacies up to 10,000 KRW; Medical Aid beneficiaries pay a small flat fee.
ELDERLY_FLAT: Final = (15000, 1500)
ELDERLY_PHARMACY_FLAT: Final = (10000, 1000)
AID_FLAT: Final = {"clinic": 1000, "hospital": 1500, "tertiary": 2000, "pharmacy": 500}
HOSPITAL_CLASSES: Final = ("01", "11", "21", "28", "41", "92")
LINE_TYPE: Final = {
    "consultation": "01",
    "inpatient": "02",
    "injection": "04",
    "physiotherapy": "05",
    "lab": "06",
    "imaging": "07",
    "dental": "08",
    "korean_medicine": "09",
    "pharmacy_fee": "03",
    "drug": "10",
}


def patient_share(
    total: pl.Expr, cl: pl.Expr, inpatient: pl.Expr, age: pl.Expr, insurance: pl.Expr
) -> pl.Expr:
    """The patient's share: by class and kind of care, flat for people 65+ at clinics with a
    small total and for Medical Aid beneficiaries; rounded down to 100 KRW."""
    rate = (
        pl.when(inpatient)
        .then(INPATIENT_SHARE)
        .otherwise(
            cl.replace_strict(OUTPATIENT_SHARE, default=CLINIC_SHARE, return_dtype=pl.Float64)
        )
    )
    aid_flat = (
        pl.when(cl == "01")
        .then(AID_FLAT["tertiary"])
        .when(cl.is_in(HOSPITAL_CLASSES))
        .then(AID_FLAT["hospital"])
        .otherwise(AID_FLAT["clinic"])
    )
    share = (
        pl.when(insurance == "5")
        .then(pl.when(inpatient).then(0).otherwise(aid_flat))
        .when(~inpatient & (age >= 65) & ~cl.is_in(HOSPITAL_CLASSES) & (total <= ELDERLY_FLAT[0]))
        .then(ELDERLY_FLAT[1])
        .otherwise((total * rate / 100).floor() * 100)
    )
    return pl.min_horizontal(share, total).cast(pl.Int64)


def unit_price(code: pl.Expr, cl: pl.Expr, prices: dict[str, float]) -> pl.Expr:
    """The fee of a procedure at an institution: the schedule's price plus the class add-on."""
    add_on = cl.replace_strict(CLASS_ADD_ON, default=0.0, return_dtype=pl.Float64)
    price = code.replace_strict(prices, default=None, return_dtype=pl.Float64)
    return (price * (1 + add_on)).round(0).cast(pl.Int64)
