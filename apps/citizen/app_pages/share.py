"""Share my record with a clinician (a code and a QR code, for the kinds of records I choose,
30 to 60 minutes), give a standing consent to an institution, name a family carer or answer a
request to be one, and see and revoke every grant over my record, emergency accesses included.

What can be revoked comes first, so a phone reaches the revoke button without scrolling past the
forms. The QR code is drawn here (``segno``, no network) and holds a link to the clinician app's
patient page with the code (``?share=``), which the clinician app redeems after sign-in.
"""

import io
from datetime import UTC, datetime
from urllib.parse import urlencode

import segno
import streamlit as st

from apps.common.i18n import keyed, moment, t
from apps.common.layout import access
from lakehouse import accounts, config
from lakehouse.access import Access, Grant
from lakehouse.access.gate import SHARE_SCOPES
from lakehouse.access.grants import SHARE_MIN_MINUTES, SHARE_MINUTES

CODE = "share_code"  # the code just made: (code, grant), shown until revoked or ended
EVERYTHING = "all"
MINUTES = (SHARE_MIN_MINUTES, 45, SHARE_MINUTES)


def share_link(code: str) -> str:
    """The clinician app's patient page with the code: what the QR code holds."""
    return f"{config.clinician_url()}/patient?{urlencode({'share': code})}"


def _qr(link: str) -> bytes:
    """The link as a QR code (PNG, black on white, a quiet zone of 4 modules)."""
    buffer = io.BytesIO()
    segno.make(link, error="m").save(buffer, kind="png", scale=8, border=4)
    return buffer.getvalue()


def _scope_words(grant: Grant) -> str:
    groups = grant.scope or (EVERYTHING,)
    return ", ".join(t(f"access.scope.{g}") for g in groups)


def _who(grant: Grant, names: dict[str, str]) -> str:
    if grant.kind == "consent":
        return names.get(str(grant.institution), str(grant.institution))
    return grant.grantee or t("access.share.not_used")


def _current(layer: Access, now: datetime) -> None:
    """The code just made, its QR code and link, and the revoke button right beside it."""
    made = st.session_state.get(CODE)
    if made is None:
        return
    code, grant = made
    if not grant.active(now):
        st.session_state.pop(CODE)
        return
    with st.container(border=True):
        st.subheader(t("access.share.your_code"), anchor=False)
        st.header(code, anchor=False)  # large, to read aloud; letters and digits only
        st.text(
            t(
                "access.share.code_line",
                until=moment(grant.expires_at),
                scope=_scope_words(grant),
            )
        )
        if st.button(
            t("access.share.revoke_now"),
            key="share_revoke_current",
            type="primary",
            icon=":material/block:",
            width="stretch",
        ):
            layer.revoke(grant.grant_id)
            st.session_state.pop(CODE)
            st.success(t("citizen.share.revoked"))
            st.rerun()
        link = share_link(code)
        st.image(
            _qr(link), caption=t("access.share.qr_caption"), width=280, alt=t("access.share.qr_alt")
        )
        st.text(link)


def _active(layer: Access, grants: list[Grant], now: datetime, names: dict[str, str]) -> None:
    """Every grant that allows access now, each with its revoke button."""
    active = [g for g in grants if g.active(now) or (g.pending and not g.revoked)]
    st.subheader(t("access.share.active"))
    if not active:
        st.info(t("citizen.share.none"))
    for grant in active:
        left, right = st.columns([4, 1], vertical_alignment="center")
        state = "pending" if grant.pending else "active"
        left.text(
            t(
                "access.share.active_line",
                kind=t(f"citizen.share.kind.{grant.kind}"),
                who=_who(grant, names),
                until=t("citizen.share.until", when=moment(grant.expires_at))
                if grant.expires_at
                else t("citizen.share.no_end"),
                state=t(f"citizen.share.state.{state}"),
            )
        )
        if grant.kind == "share":
            left.caption(_scope_words(grant))
        if grant.kind == "emergency" and grant.reason:
            left.text(f"{t('column.detail_reason')}: {grant.reason}")  # a clinician's words
        if grant.kind != "emergency" and right.button(
            t("citizen.share.revoke"), key=f"revoke_{grant.grant_id}", icon=":material/block:"
        ):
            layer.revoke(grant.grant_id)
            st.session_state.pop(CODE, None)
            st.rerun()


def _create(layer: Access) -> None:
    """The share form: what to share and for how long."""
    st.subheader(t("access.share.create_title"))
    st.write(t("citizen.share.explain"))
    with st.form("share_create"):
        chosen = st.pills(
            t("access.share.what"),
            [EVERYTHING, *SHARE_SCOPES],
            selection_mode="multi",
            default=[EVERYTHING],
            format_func=lambda g: t(f"access.scope.{g}"),
            key=keyed("share_scope"),
        )
        minutes = st.radio(
            t("citizen.share.minutes"),
            MINUTES,
            index=len(MINUTES) - 1,
            format_func=lambda m: t("access.share.minutes_option", minutes=m),
            horizontal=True,
            key="share_minutes",
        )
        if st.form_submit_button(t("citizen.share.create"), type="primary"):
            if not chosen:
                st.error(t("access.share.choose"))
                return
            scope = None if EVERYTHING in chosen else tuple(chosen)
            st.session_state[CODE] = layer.create_share(int(minutes), scope)
            st.rerun()


def _invitations(layer: Access) -> None:
    """Requests to be someone's family carer, each to accept."""
    waiting = layer.invitations()
    if not waiting:
        return
    st.subheader(t("access.carer.invited_title"))
    for grant in waiting:
        left, right = st.columns([4, 1], vertical_alignment="center")
        left.text(t("access.carer.invited", who=grant.actor, when=moment(grant.created_at)))
        if right.button(t("access.carer.accept"), key=f"accept_{grant.grant_id}", type="primary"):
            layer.accept_proxy(grant.grant_id)
            st.success(t("access.carer.accepted"))
            st.rerun()


def _consent(layer: Access) -> None:
    """A standing consent for one institution's clinicians to read my whole record."""
    st.subheader(t("access.consent.title"))
    st.write(t("access.consent.explain"))
    places = layer.care_institutions()
    names = dict(places.select("ykiho", "name").iter_rows())
    with st.form("share_consent"):
        chosen = st.selectbox(
            t("access.consent.institution"),
            places["ykiho"].to_list(),
            index=None,
            format_func=lambda code: f"{names[code]} ({code})",
            placeholder=t("access.consent.search"),
            key="share_consent_institution",
        )
        if st.form_submit_button(t("access.consent.give")) and chosen:
            layer.grant_consent(chosen)
            st.success(t("access.consent.given", institution=names[chosen]))


def _carer(layer: Access) -> None:
    """Ask another citizen account to be my family carer (pending until they accept)."""
    st.subheader(t("citizen.share.proxy_title"))
    with st.form("share_proxy"):
        carer = st.text_input(t("citizen.share.proxy_account"), max_chars=64, key="share_carer")
        if st.form_submit_button(t("citizen.share.proxy_grant")) and carer.strip():
            # Only a citizen account that exists can be a carer; anything else is refused
            # without echoing what was typed.
            known = accounts.load().get(carer.strip())
            if known is None or known.role != "citizen" or known.name == layer.principal.account:
                st.error(t("citizen.share.proxy_unknown"))
            else:
                layer.grant_proxy(known.name)
                st.success(t("citizen.share.proxy_done", account=known.name))


def _history(grants: list[Grant], now: datetime, names: dict[str, str]) -> None:
    """Grants that ended (expired or revoked), folded away."""
    ended = [g for g in grants if not g.active(now) and not (g.pending and not g.revoked)]
    if not ended:
        return
    with st.expander(t("access.share.ended", count=len(ended))):
        for grant in ended:
            st.text(
                t(
                    "citizen.share.grant_line",
                    kind=t(f"citizen.share.kind.{grant.kind}"),
                    who=_who(grant, names),
                    created=moment(grant.created_at),
                    until=t("citizen.share.until", when=moment(grant.expires_at))
                    if grant.expires_at
                    else t("citizen.share.no_end"),
                    state=t("citizen.share.state.ended"),
                )
            )


layer = access()
st.title(t("citizen.share.title"))
now = datetime.now(UTC)
_current(layer, now)
grants = layer.my_grants()
consented = {str(g.institution) for g in grants if g.kind == "consent"}
names = dict(layer.care_institutions().select("ykiho", "name").iter_rows()) if consented else {}
_active(layer, grants, now, names)
_invitations(layer)
_create(layer)
_consent(layer)
_carer(layer)
_history(grants, now, names)
