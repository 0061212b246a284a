"""My medicines now: what I am taking today, which clinic prescribed it and until when, as
cards large enough to read on a phone (or those of someone who made me their family carer)."""

import streamlit as st

from apps.common import carer
from apps.common.i18n import day, number, t
from apps.common.layout import access
from apps.common.medicine_words import drug, place, plain
from lakehouse.insights import rules

layer = access()
st.title(t("citizen.medicines.title"))
whose = carer.whose(layer, "medicines_whose")
now = layer.medicines_now(whose)
st.caption(t("citizen.medicines.as_of", day=day(now.as_of)))
if now.medicines.is_empty():
    st.info(t("citizen.medicines.none"))
else:
    st.subheader(t("citizen.medicines.count", count=number(now.medicines.height)))
names = dict(
    zip(
        now.medicines["prescriber"].to_list() + now.medicines["pharmacy"].to_list(),
        now.medicines["prescriber_name"].to_list() + now.medicines["pharmacy_name"].to_list(),
        strict=True,
    )
)
weekly = rules.weekly()
for row in now.medicines.iter_rows(named=True):
    with st.container(border=True):
        st.markdown(f"#### 💊 {plain(drug(row['ingredient_code']))}")
        st.markdown(t("citizen.medicines.until", day=day(row["until"])))
        prescriber = plain(place(row["prescriber"], names))
        if row["issued_on"] is None:  # filled, but the prescription is not in the extract
            st.markdown(t("citizen.medicines.prescribed_by", place=prescriber))
        else:
            st.markdown(
                t("citizen.medicines.prescribed", place=prescriber, day=day(row["issued_on"]))
            )
        if row["pharmacy"]:
            st.markdown(
                t(
                    "citizen.medicines.dispensed",
                    place=plain(place(row["pharmacy"], names)),
                    day=day(row["start"]),
                )
            )
        dosage = "weekly" if row["ingredient_code"] in weekly else "dosage"
        st.markdown(
            t(
                f"citizen.medicines.{dosage}",
                dose=number(row["dose"], 0 if float(row["dose"]).is_integer() else 1),
                per_day=number(row["per_day"]),
                days=number(row["days"]),
            )
        )
st.info(t("citizen.medicines.ask"), icon=":material/medication:")
