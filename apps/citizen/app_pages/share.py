"""Share my record with a clinician (a one-time code), name a family carer, and see and revoke
every grant over my record, emergency accesses included."""

from datetime import UTC, datetime

import streamlit as st

from apps.common.i18n import moment, t
from apps.common.layout import access
from lakehouse import accounts

layer = access()
st.title(t("citizen.share.title"))
st.write(t("citizen.share.explain"))
with st.form("share_create"):
    minutes = st.select_slider(t("citizen.share.minutes"), [15, 30, 60, 120, 240], value=60)
    if st.form_submit_button(t("citizen.share.create"), type="primary"):
        code, grant = layer.create_share(int(minutes))
        st.session_state["share_code"] = (code, grant.expires_at)
if "share_code" in st.session_state:
    code, until = st.session_state["share_code"]
    st.success(t("citizen.share.code", code=code, until=moment(until)))

st.subheader(t("citizen.share.proxy_title"))
with st.form("share_proxy"):
    carer = st.text_input(t("citizen.share.proxy_account"), max_chars=64, key="share_carer")
    if st.form_submit_button(t("citizen.share.proxy_grant")) and carer.strip():
        # Only a citizen account that exists can be a carer; anything else is refused without
        # echoing what was typed.
        known = accounts.load().get(carer.strip())
        if known is None or known.role != "citizen" or known.name == layer.principal.account:
            st.error(t("citizen.share.proxy_unknown"))
        else:
            layer.grant_proxy(known.name)
            st.success(t("citizen.share.proxy_done", account=known.name))

st.subheader(t("citizen.share.grants"))
grants = layer.my_grants()
if not grants:
    st.info(t("citizen.share.none"))
now = datetime.now(UTC)
for grant in grants:
    line = t(
        "citizen.share.grant_line",
        kind=t(f"citizen.share.kind.{grant.kind}"),
        who=grant.grantee or "–",
        created=moment(grant.created_at),
        until=t("citizen.share.until", when=moment(grant.expires_at))
        if grant.expires_at
        else t("citizen.share.no_end"),
        state=t(f"citizen.share.state.{'active' if grant.active(now) else 'ended'}"),
    )
    left, right = st.columns([5, 1])
    left.text(line)  # text, not markdown: an account name is shown as typed
    revocable = grant.active(now) and grant.kind != "emergency"
    if revocable and right.button(t("citizen.share.revoke"), key=f"revoke_{grant.grant_id}"):
        layer.revoke(grant.grant_id)
        st.session_state.pop("share_code", None)
        st.rerun()
    if grant.kind == "emergency" and grant.reason:
        left.text(f"{t('column.detail_reason')}: {grant.reason}")  # a clinician's words, as text
