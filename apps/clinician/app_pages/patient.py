"""Find and open a patient's record.

Finding (``Access.find_patients``, audited): by name and date of birth, matched in the identity
vault, or by resident registration number, hashed as at the bronze boundary; it shows only the
pseudonymous key, age and sex. Choosing a person puts their key in the form below, so it is
never retyped: the record opens for a recent patient of this institution (its own records
only), with the code the patient shared (typed, or the link of their QR code, ``?share=``,
redeemed once the clinician has signed in), under the patient's standing consent, or, with a
stated reason, under emergency access. Each refusal is said once, in the session's language
(``apps.common.refusals``).
"""

from datetime import date

import polars as pl
import streamlit as st

from apps.common import views
from apps.common.i18n import number, t, word
from apps.common.layout import access
from apps.common.refusals import refusal
from lakehouse.access import Access, AccessDeniedError
from lakehouse.pseudonym import is_registration_number

OPENED = "patient_key"  # the key whose record is shown
KEY_INPUT = "patient_key_input"
FOUND = "patient_found"  # the last lookup's people (key, age, sex)
EMERGENCY_OPEN = "patient_emergency_open"  # the emergency form unfolded after a refusal
SHARE_PARAM = "share"  # the query parameter of a patient's share link (their QR code)


def _find(layer: Access) -> None:
    """The lookup forms; what they found is kept for ``_found``."""
    by_name, by_number = st.columns(2)
    with by_name.form("patient_find_name"):
        name = st.text_input(t("clinician.find.name"), max_chars=40, key="patient_find_name_in")
        born = st.date_input(
            t("clinician.find.birth_date"),
            value=None,
            min_value=date(1900, 1, 1),
            max_value=date.today(),
            key="patient_find_birth",
        )
        by_name_asked = st.form_submit_button(t("clinician.find.search"))
    with by_number.form("patient_find_rrn", clear_on_submit=True):
        # Masked like a password and cleared once searched: the number is not left on the
        # screen, nor in the session, for others to read.
        rrn = st.text_input(
            t("clinician.find.rrn"), type="password", max_chars=14, key="patient_find_rrn_in"
        )
        by_number_asked = st.form_submit_button(t("clinician.find.search"))
    try:
        if by_name_asked:
            if not name.strip() or born is None:
                st.error(t("clinician.find.need_name"))
                return
            st.session_state[FOUND] = layer.find_patients(name=name, birth_date=born)
        elif by_number_asked:
            if not is_registration_number(rrn):
                st.error(t("clinician.find.need_rrn"))
                return
            st.session_state[FOUND] = layer.find_patients(registration_number=rrn)
    except AccessDeniedError as refused:
        st.error(refusal(refused))


def _choose(key: str) -> None:
    """Use a found person: their key goes into the form (before it is drawn) and is opened."""
    st.session_state[KEY_INPUT] = key
    st.session_state[OPENED] = key


def _found() -> None:
    """The people the last lookup found, each with a button that opens their record."""
    found = st.session_state.get(FOUND)
    if not isinstance(found, pl.DataFrame):
        return
    if found.is_empty():
        st.info(t("clinician.find.none"))
        return
    st.caption(t("clinician.find.count", count=number(found.height)))
    for key, age, sex in found.select("citizen_key", "age_years", "sex").iter_rows():
        left, right = st.columns([4, 1])
        left.text(f"{key} · {t('clinician.find.age', age=number(age))} · {word('sex', sex)}")
        right.button(
            t("clinician.find.use"), key=f"patient_use_{key}", on_click=_choose, args=(key,)
        )


def _open(layer: Access) -> None:
    """The key and share-code forms, side by side; a refused share code is said beside it."""
    left, right = st.columns(2)
    with left.form("patient_open"):
        key = st.text_input(t("clinician.patient.key"), max_chars=40, key=KEY_INPUT)
        if st.form_submit_button(t("clinician.patient.open"), type="primary"):
            st.session_state[OPENED] = key.strip()
    with right.form("patient_share"):
        code = st.text_input(t("clinician.patient.code"), max_chars=12, key="patient_code")
        redeemed = st.form_submit_button(t("clinician.patient.redeem"))
    if redeemed:
        try:
            st.session_state[OPENED] = layer.redeem_share(code)
        except AccessDeniedError as refused:
            right.error(refusal(refused))


def _redeem_link(layer: Access) -> None:
    """A share code arriving in the link (the patient's QR code): redeemed once, then taken out
    of the address, so the code is not left in the browser's history or redeemed again."""
    code = st.query_params.get(SHARE_PARAM)
    if not code:
        return
    del st.query_params[SHARE_PARAM]
    try:
        st.session_state[OPENED] = layer.redeem_share(code)
    except AccessDeniedError as refused:
        st.error(refusal(refused))


def _basis(layer: Access) -> str | None:
    """Why the record asked for may be read; a refusal is said here once and forgotten (the
    next run does not repeat it under another message), and one for want of a basis unfolds
    the emergency form, the key already in place."""
    subject = st.session_state.get(OPENED)
    if not isinstance(subject, str) or not subject:
        return None
    try:
        basis = layer.basis("read:timeline", subject)
    except AccessDeniedError as refused:
        st.session_state.pop(OPENED)
        st.session_state[EMERGENCY_OPEN] = refused.code == "no_basis"
        st.error(refusal(refused))
        return None
    st.session_state.pop(EMERGENCY_OPEN, None)  # in: the emergency form folds away again
    return basis


def _emergency(layer: Access) -> None:
    """Break the glass for the key in the form above, with a stated reason."""
    expanded = bool(st.session_state.get(EMERGENCY_OPEN))
    with (
        st.expander(t("clinician.patient.emergency"), expanded=expanded),
        st.form("patient_emergency"),
    ):
        reason = st.text_area(t("clinician.patient.reason"), max_chars=500, key="patient_reason")
        broken = st.form_submit_button(t("clinician.patient.break_glass"))
    if not broken:
        return
    subject = str(st.session_state.get(KEY_INPUT, "")).strip()
    try:
        layer.open_emergency(subject, reason)
    except AccessDeniedError as refused:
        st.error(refusal(refused))  # below the form: seen even if the expander is folded
        return
    st.session_state[OPENED] = subject
    st.rerun()


layer = access()
st.title(t("clinician.patient.title"))
st.subheader(t("clinician.find.title"))
_find(layer)
_found()
st.subheader(t("clinician.patient.open_title"))
_redeem_link(layer)
_open(layer)
basis = _basis(layer)
_emergency(layer)
if basis is not None:
    subject = str(st.session_state[OPENED])
    st.caption(t("clinician.patient.basis", basis=t(f"basis.{basis}")))
    if basis in ("share", "institution", "institution_share"):
        st.caption(t(f"access.patient.covers.{basis}"))
    st.text(subject)
    views.timeline(layer.timeline(subject), key="patient")
