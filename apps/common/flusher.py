"""The access log's flusher in an app's server: started with the server, stopped with it.

Each app's ``serve.py`` passes ``lifespan`` to ``st.App``, so its server process appends every
audit row to the lakehouse's outbox (on disk at once) and a thread of the process moves the rows
to ``ops.audit_log`` about once a second (``lakehouse.audit.start_flusher``); a last flush runs
when the server stops. AppTest and scripts, which run no server, flush each row as it is made.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from lakehouse import audit


@asynccontextmanager
async def lifespan(app: object) -> AsyncIterator[None]:
    """Flush the access log's outbox from this server process while it serves."""
    audit.start_flusher()
    try:
        yield
    finally:
        audit.stop_flusher()
