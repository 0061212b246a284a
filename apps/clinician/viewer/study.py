"""The study the viewer shows: read once through the access layer (audited as one read of the
patient) and kept in the session for a few minutes, so turning a slider redraws without another
read; a decision or a new study reads it afresh."""

import time
from typing import NoReturn

import streamlit as st

from lakehouse.access import Access, OpenedStudy

KEPT = "viewer_study"
KEEP_S = 300.0  # a study read is shown from the session for at most this long
FLASH = "viewer_flash"


def opened_study(layer: Access, uid: str) -> OpenedStudy:
    """The study from the session if read here recently, else read (and audited) now."""
    kept = st.session_state.get(KEPT)
    if kept and kept["uid"] == uid and time.monotonic() - kept["at"] < KEEP_S:
        return kept["study"]  # type: ignore[no-any-return]
    study = layer.open_study(uid)
    layer.start_review(uid)
    st.session_state[KEPT] = {"uid": uid, "at": time.monotonic(), "study": study}
    return study


def forget() -> None:
    """Drop the kept study: the next run reads it afresh."""
    st.session_state.pop(KEPT, None)


def saved(message: str) -> NoReturn:
    """After a write: show ``message`` on the next run, which reads the study afresh."""
    st.session_state[FLASH] = message
    forget()
    st.rerun()
