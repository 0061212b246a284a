"""The outboxes' flushers in an app's server: started with the server, stopped with it.

Each app's ``serve.py`` passes ``lifespan`` to ``st.App``, so its server process appends every
audit row and every sign-in attempt to the lakehouse's outboxes (on disk at once) and a thread
per outbox moves the rows to ``ops.audit_log`` and ``ops.sign_ins`` about once a second
(``lakehouse.ledger``); a last flush runs when the server stops. AppTest and scripts, which run
no server, flush each row as it is made.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from lakehouse import audit
from lakehouse.accounts import SIGN_IN_LOG


@asynccontextmanager
async def lifespan(app: object) -> AsyncIterator[None]:
    """Flush the access log's and the sign-ins' outboxes from this server process while it
    serves."""
    audit.start_flusher()
    SIGN_IN_LOG.start_flusher()
    try:
        yield
    finally:
        SIGN_IN_LOG.stop_flusher()
        audit.stop_flusher()
