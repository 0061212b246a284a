"""Serves the clinician app (``streamlit run apps/clinician/serve.py``, as ``gjh serve`` does): its
router, with the route that keeps a sign-in across reloads (``apps/common/session_cookie.py``).
"""

import streamlit as st

from apps.common.flusher import lifespan
from apps.common.session_cookie import routes

app = st.App("streamlit_app.py", routes=routes("clinician"), lifespan=lifespan)
