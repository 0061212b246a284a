"""Home: a greeting, on a first visit a plain explanation of what the app is (and that its AI
is a reference model trained on synthetic data, not a diagnosis), and one large tile per core
flow (``apps.citizen.flows``), so that each is one tap away on a phone."""

import streamlit as st

from apps.citizen.flows import FLOWS
from apps.common import theme
from apps.common.i18n import t
from apps.common.layout import access

WELCOMED = "home_welcomed"  # the first visit's explanation was read, in this session
# Tiles: the whole width, tall, large words; a border so each reads as one button.
TILES_CSS = f"""<style>
.st-key-home_tiles [data-testid="stPageLink"] a {{
  min-height: 4rem; padding: 0.75rem 1rem; border: 2px solid {theme.PRIMARY};
  border-radius: 0.75rem; background: {theme.BACKGROUND};
}}
.st-key-home_tiles [data-testid="stPageLink"] a p {{ font-size: 1.25rem; font-weight: 600; }}
</style>"""


def explain() -> None:
    """What the app is, that its AI is no diagnosis, and where the menu is."""
    for key in ("welcome", "welcome_ai", "welcome_menu"):
        st.write(t(f"citizen.home.{key}"))


layer = access()
name = layer.name(str(layer.principal.citizen_key))
st.title(t("citizen.home.hello", name=name) if name else t("citizen.home.title"))
if not st.session_state.get(WELCOMED, False):
    with st.container(border=True):
        st.subheader(t("citizen.home.welcome_title"))
        explain()
        if st.button(t("citizen.home.welcome_done"), type="primary", key="home_welcome_done"):
            st.session_state[WELCOMED] = True
            st.rerun()
else:
    with st.expander(t("citizen.home.welcome_title")):
        explain()
st.html(TILES_CSS)
st.subheader(t("citizen.home.what"))
with st.container(key="home_tiles"):
    for flow in FLOWS:
        st.page_link(flow.page, label=t(flow.title), icon=flow.icon, width="stretch")
