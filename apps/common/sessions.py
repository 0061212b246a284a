"""The server's record of local sign-in sessions: what a session cookie may open, and for how long.

A token is a random session id with its signature (HMAC-SHA256 with the server's key, over the
app's name and the id); only a token the key signed is looked up at all, so a made-up or
altered one is told apart from one whose session ended, and recorded as forged.

A browser holds only a random session id (signed, in an HttpOnly cookie, see
``apps/common/session_cookie.py``); the account, when it signed in and when it was last seen
live here, so that signing out or expiring ends the session for every copy of the cookie.

The store is held in the app's process, in memory. One process serves all of an app's
Streamlit sessions (every tab and every person), so that is where every run of the app and the
route that sets the cookie meet; a lock keeps the records right when several sessions run at
once. An app restart therefore signs everyone out, as it drops their Streamlit sessions too;
nothing that could open a session is ever written to disk.

The ticket is how a signed-in Streamlit run hands its session to the cookie route: a one-time,
short-lived value that the page posts back, so the session id itself never appears in the
page, where a script could read it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import dataclass
from enum import Enum
from typing import Final

from lakehouse.config import secrets_dir, write_secret

MAX_AGE_S: Final = 12 * 3600  # a signed-in session lasts a working day at most
TICKET_S: Final = 60.0  # the page posts its ticket right after the run that made it
KEY_FILE: Final = "session.key"


def _key() -> bytes:
    """The server key that signs session ids: ``GJH_SESSION_KEY``, else one kept in the
    secrets directory (made on first use)."""
    value = os.environ.get("GJH_SESSION_KEY", "")
    if not value:
        path = write_secret(secrets_dir() / KEY_FILE, secrets.token_hex(32))
        value = path.read_text(encoding="ascii").strip()
    return value.encode("ascii")


def _sign(app: str, session: str) -> str:
    return hmac.new(_key(), f"{app}\0{session}".encode(), hashlib.sha256).hexdigest()


def token(app: str, session: str) -> str:
    """A session id of ``app`` with its signature: what the session state and the cookie hold."""
    return f"{session}.{_sign(app, session)}"


def session_of(app: str, token: object) -> str | None:
    """The session id of a token signed for ``app``; None for anything else (tampered, made
    up, another app's, not even text)."""
    if not isinstance(token, str) or token.count(".") != 1:
        return None
    session, signature = token.split(".")
    signed = hmac.compare_digest(signature.encode(), _sign(app, session).encode())
    return session if session and signed else None


@dataclass
class Record:
    """One signed-in session.

    Attributes:
        account: The account's name; the principal is rebuilt from the account file each run.
        issued: When the person signed in (epoch seconds).
        seen: When a run of any of the session's tabs last asked for it.
    """

    account: str
    issued: float
    seen: float


class Ended(Enum):
    """Why a session id no longer opens anything."""

    GONE = "gone"  # never existed here, signed out, or dropped after its maximum age
    IDLE = "idle"  # unused for longer than the idle limit (the person is told so)
    OLD = "old"  # older than the maximum age


class Store:
    """Sessions and tickets of one app process, safe to use from several threads at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, Record] = {}
        self._tickets: dict[str, tuple[str, float]] = {}

    def open(self, account: str, now: float, max_age_s: float) -> str:
        """A new session of ``account``; returns its id. Sessions past ``max_age_s`` are
        dropped here, so the store holds at most a working day of sign-ins."""
        session = secrets.token_urlsafe(32)
        with self._lock:
            for old in [k for k, r in self._records.items() if now - r.issued > max_age_s]:
                del self._records[old]
            self._records[session] = Record(account, now, now)
        return session

    def touch(self, session: str, now: float, idle_s: float, max_age_s: float) -> Record | Ended:
        """The session's record, marked seen now; or why it ended (an ended one is removed)."""
        with self._lock:
            record = self._records.get(session)
            if record is None:
                return Ended.GONE
            if now - record.issued > max_age_s:
                del self._records[session]
                return Ended.OLD
            if now - record.seen > idle_s:
                del self._records[session]
                return Ended.IDLE
            record.seen = now
            return Record(record.account, record.issued, record.seen)

    def close(self, session: str) -> None:
        """End a session (sign-out): its id opens nothing any more, wherever it was copied."""
        with self._lock:
            self._records.pop(session, None)

    def holds(self, session: str) -> bool:
        """Whether ``session`` is open (not signed out, nor found ended)."""
        with self._lock:
            return session in self._records

    def ticket(self, value: str, now: float) -> str:
        """A one-time ticket for ``value`` (the signed cookie), redeemable for ``TICKET_S``."""
        ticket = secrets.token_urlsafe(32)
        with self._lock:
            for old in [k for k, (_, at) in self._tickets.items() if now - at > TICKET_S]:
                del self._tickets[old]
            self._tickets[ticket] = (value, now)
        return ticket

    def redeem(self, ticket: str, now: float) -> str | None:
        """The value a ticket was made for, once; None for an unknown, used or stale ticket."""
        with self._lock:
            value, at = self._tickets.pop(ticket, ("", 0.0))
        return value if value and now - at <= TICKET_S else None


STORE: Final = Store()
