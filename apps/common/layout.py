"""The frame of every app: page setup, the sign-in gate, the role's navigation, the sidebar
(language, large text, sign-out), the synthetic-data notice and the error page.

On a phone (below ``NARROW_PX``) the sidebar is a menu behind a button: the button says so in
words, choosing a page closes the menu, and large text scales the whole page (``theme``).

An app's router (``apps/<app>/streamlit_app.py``) calls ``run`` with its role and pages; pages
call ``access()`` for the access layer as the signed-in principal. A page for another role is
never offered, and were it reached anyway, the access layer refuses its reads: hiding a page is
not access control.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import plotly.graph_objects as go
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from apps.common import auth, cache, theme
from apps.common.i18n import LANGS, STATE_KEY, t
from lakehouse import accounts
from lakehouse.access import Access, AccessDeniedError, Principal, Role

log = logging.getLogger("gjh.apps")
APP_KEY: Final = "app"
NARROW_PX: Final = 768  # Streamlit's "md" breakpoint: below it the sidebar opens over the page
# On a phone, body text at the root size (Streamlit draws it at 0.875 rem, 14.9 px); captions
# in a grey of 4.5:1 or more; the menu button's visible label.
PHONE_CSS: Final = f"""
@media (max-width: {NARROW_PX}px) {{
  [data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li,
  [data-testid="stCaptionContainer"], [data-testid="stWidgetLabel"] p {{ font-size: 1rem; }}
}}
[data-testid="stCaptionContainer"] {{ color: {theme.MUTED}; }}
[data-testid="stExpandSidebarButton"] {{ gap: 0.35rem; padding: 0.25rem 0.5rem; }}
.gjh-menu-label {{ font-size: 1rem; font-weight: 600; color: {theme.TEXT}; white-space: nowrap; }}
"""
# Large text: a larger root size, which every size Streamlit gives in rem follows (titles,
# labels, buttons); tables, drawn on a canvas in pixels from the server's theme, are zoomed by
# the same factor within the page's width; the sidebar's labels wrap instead of being cut off.
ZOOM: Final = round(theme.PAGE_PX[True] / theme.PAGE_PX[False], 3)
LARGE_CSS: Final = f"""
html {{ font-size: {theme.PAGE_PX[True]}px !important; }}
[data-testid="stDataFrame"] {{ zoom: {ZOOM}; width: 100% !important; }}
[data-testid="stDataFrameResizable"] {{ width: 100% !important; max-width: 100% !important; }}
[data-testid="stSidebar"] label, [data-testid="stSidebar"] label p,
[data-testid="stSidebarNavLink"] span {{
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
}}
"""
# The menu's label and its closing on a phone (see the script's header).
MENU_JS: Final = Path(__file__).with_name("menu.js").read_text(encoding="utf-8")
# The sign-in page's chart that is never shown (``warm_charts``).
WARM_KEY: Final = "gjh_charts_warm"


def _preferences() -> None:
    """Language and large text, on every page, before and after sign-in; the page's sizes
    and the menu's label for a phone."""
    st.session_state.setdefault(STATE_KEY, "ko")
    st.session_state.setdefault(theme.LARGE_KEY, False)
    with st.sidebar:
        st.radio(
            "언어 / Language",
            LANGS,
            format_func=lambda code: {"ko": "한국어", "en": "English"}[code],
            key=STATE_KEY,
            horizontal=True,
        )
        st.toggle(t("layout.large_text"), key=theme.LARGE_KEY)
        words = {"open": t("layout.menu"), "close": t("layout.menu_close"), "narrow": NARROW_PX}
        style = PHONE_CSS + (LARGE_CSS if theme.large() else "")
        st.html(
            f"<style>{style}</style><script>"
            f"{MENU_JS.replace('__WORDS__', json.dumps(words, ensure_ascii=False))}</script>",
            unsafe_allow_javascript=True,
        )


def _sign_in(app: str, role: Role) -> None:
    """The sign-in page: a refused provider sign-in says why; otherwise each configured
    provider's button, then the local accounts' form (folded away when a provider is there)."""
    st.title(t(f"app.{app}.title"))
    st.caption(t("layout.synthetic_notice"))
    if st.session_state.pop(auth.EXPIRED, False):
        st.info(t("auth.expired"))
    if auth.provider_identity() is not None:
        _provider_refusal(app, role)
        return
    providers = auth.providers()
    for provider in providers:
        label = provider.label or t("auth.provider.default")
        if st.button(
            t("auth.provider.sign_in", provider=label),
            key=f"sign_in_{provider.name}",
            type="primary",
            icon=":material/login:",
        ):
            st.login(provider.name)
    if providers:
        with st.expander(t("auth.provider.password")):
            _password_form(app, role)
    else:
        _password_form(app, role)


def warm_charts(specimen: go.Figure) -> None:
    """A chart that is never displayed, so that the browser fetches and runs plotly.js now,
    while the person types, rather than after sign-in: Streamlit loads its 4.7 MB chart module
    only when a page first draws a chart, and on a phone that took about 1 s between the
    click and the first chart, more than the whole rest of the page (docs/benchmarks.md, the
    timeline page). ``specimen`` is a figure like the first one people see after sign-in,
    made of no one's data: drawing it has the browser compile the drawing code that figure
    takes (its traces, axes and controls), which shortened the real figure's first draw by
    about a sixth. It takes no room and no taps, and a screen reader skips it
    (``display: none``)."""
    with st.container(key=WARM_KEY):
        st.html(f"<style>.st-key-{WARM_KEY} {{ display: none; }}</style>")
        st.plotly_chart(
            specimen, key=f"{WARM_KEY}_chart", theme=None, config={"displayModeBar": False}
        )


def _provider_refusal(app: str, role: Role) -> None:
    """Signed in at a provider, but not admitted to this app: why, and the way out (signing
    out there too, so that another account can be chosen)."""
    account = auth.provider_account()
    if account is None:
        st.error(t("auth.provider.unknown"))
    elif account.disabled:
        st.error(t("auth.refused.disabled"))
    else:
        st.error(t("auth.wrong_app", role=t(f"role.{account.role}")))
    who = st.user.get("email") or st.user.get("sub")
    st.text(t("auth.provider.who", who=str(who)))  # plain text: claims are never markup
    if st.button(t("auth.provider.sign_out"), key="provider_sign_out", type="primary"):
        auth.sign_out(app)


def _password_form(app: str, role: Role) -> None:
    with st.form("sign_in"):
        name = st.text_input(t("auth.username"), key="sign_in_name")
        password = st.text_input(t("auth.password"), type="password", key="sign_in_password")
        submitted = st.form_submit_button(t("auth.sign_in"), type="primary")
    if not submitted:
        return
    try:
        account = accounts.sign_in(name.strip(), password, auth.origin(app))
    except accounts.SignInError as error:
        st.error(t(f"auth.refused.{error.reason}"))
        return
    try:
        Access(account.principal(auth.origin(app))).enter(app, role)
    except AccessDeniedError:
        st.error(t("auth.wrong_app", role=t(f"role.{account.role}")))
        return
    auth.start(app, account)
    st.rerun()


def current() -> Principal:
    """The signed-in principal of this run (the router has checked there is one)."""
    found = auth.principal(str(st.session_state.get(APP_KEY, "unknown")))
    if found is None:
        raise AccessDeniedError("not signed in")
    return found


def access() -> Access:
    """The access layer, as the signed-in principal, reading through the apps' caches."""
    return Access(current(), readers=cache.READERS)


def guarded(page: Callable[[], None]) -> None:
    """Run a page; a refusal or a fault shows a clear message, never a traceback."""
    try:
        page()
    except AccessDeniedError:
        st.error(t("error.denied"))
    except Exception:
        incident = uuid.uuid4().hex[:8]
        log.exception("page failed (incident %s)", incident)
        st.error(t("error.unexpected", incident=incident))


def _gate(
    app: str, role: Role, pages: Sequence[st.Page], charts: Callable[[], go.Figure] | None
) -> list[st.Page]:
    """The sign-in form at every path of the role's pages: a link to a page (a study in the
    viewer, ``?study=...``) asks for sign-in and then opens what it named. With ``charts``
    the browser loads the chart library behind the form (``warm_charts``)."""

    def sign_in() -> None:
        _sign_in(app, role)
        if charts is not None:
            warm_charts(charts())

    return [
        st.Page(
            sign_in,
            title=t("auth.sign_in"),
            url_path=None if page._default else page.url_path,
            default=page._default,
        )
        for page in pages
    ]


def run(
    app: str,
    role: Role,
    pages: Sequence[st.Page],
    icon: str = "🏥",
    charts: Callable[[], go.Figure] | None = None,
) -> None:
    """The router: sign-in gate, then the role's pages. Outside a Streamlit run (the script
    imported bare, as a process spawned from a test that ran the app re-imports its parent's
    main module) there is nothing to route, and nothing is done. ``charts`` makes a specimen
    of the first chart people see after sign-in, which the sign-in page draws out of sight
    (``warm_charts``).

    The tab's icon is an emoji, which Streamlit draws as an inline SVG: a Material icon there
    is fetched from fonts.gstatic.com, a request to Google from every page of an offline
    city deployment (tests/apps/test_official_flow.py checks that no page leaves the server)."""
    if get_script_run_ctx() is None:
        return
    st.set_page_config(page_title=t(f"app.{app}.title"), page_icon=icon, layout="wide")
    st.session_state[APP_KEY] = app
    _preferences()
    who = auth.principal(app)
    if who is not None and who.role != role:
        auth.forget(app)
        who = None
    with st.sidebar:
        auth.sync_cookie()
    if who is None:
        st.navigation(_gate(app, role, pages, charts), position="hidden").run()
        return
    with st.sidebar:
        st.caption(
            t(
                "layout.signed_in_as",
                name=who.display_name or who.account,
                role=t(f"role.{who.role}"),
            )
        )
        if st.button(t("auth.sign_out"), key="sign_out"):
            auth.sign_out(app)
    st.warning(t("layout.synthetic_notice"), icon=":material/info:")
    page = st.navigation(list(pages))
    guarded(page.run)
