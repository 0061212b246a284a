"""Sign-in for every app: OpenID Connect when configured, local accounts otherwise.

Production configures an identity provider in ``.streamlit/secrets.toml`` (``[auth]``, see
``docs/sign-in.md``); ``st.login`` signs the person in and the account file maps the provider's
subject (or e-mail) to a role and an institution or citizen key. Without a provider the embedded
local accounts sign in with a password (``lakehouse.accounts``: argon2id, lockout).

The session keeps only the account name, when it signed in and when it was last seen, signed
with a server key (HMAC-SHA256). The principal is rebuilt from the account file on every run,
so nothing a browser or a tampered session state could put there (a role, a citizen key)
is ever trusted, and a session idle for ``GJH_SESSION_MINUTES`` (default 15) must sign in again.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from typing import Final

import streamlit as st

from lakehouse import accounts
from lakehouse.access import Principal
from lakehouse.config import secrets_dir, write_secret

STATE: Final = "auth"
EXPIRED: Final = "auth_expired"
KEY_FILE: Final = "session.key"


def idle_limit_s() -> float:
    return float(os.environ.get("GJH_SESSION_MINUTES", "15")) * 60


def _key() -> bytes:
    value = os.environ.get("GJH_SESSION_KEY", "")
    if not value:
        path = write_secret(secrets_dir() / KEY_FILE, secrets.token_hex(32))
        value = path.read_text(encoding="ascii").strip()
    return value.encode("ascii")


def _sign(account: str, issued: float) -> str:
    return hmac.new(_key(), f"{account}\0{issued!r}".encode(), hashlib.sha256).hexdigest()


def origin(app: str) -> str:
    """Where a request comes from, for the audit log: the app and the client's address."""
    return f"{app} {st.context.ip_address or 'unknown'}"


def _oidc() -> bool:
    try:
        return "auth" in st.secrets
    except FileNotFoundError:
        return False


def start(account: accounts.Account) -> None:
    now = time.time()
    st.session_state[STATE] = {
        "account": account.name,
        "issued": now,
        "seen": now,
        "sig": _sign(account.name, now),
    }


def sign_out() -> None:
    st.session_state.pop(STATE, None)
    if _oidc() and st.user.is_logged_in:
        st.logout()


MAX_AGE_S: Final = 12 * 3600  # a signed-in session lasts a working day at most


def _account_of_token(app: str) -> str | None:
    """The account name of a valid session token; a malformed, forged, stale or idle token
    is dropped (idle: the person is told their session expired; forged: recorded in
    ``ops.sign_ins``)."""
    token = st.session_state.get(STATE)
    if token is None:
        return None
    if not isinstance(token, dict):
        st.session_state.pop(STATE, None)
        accounts.record_forged_session(str(token), origin(app))
        return None
    name, issued, seen = token.get("account"), token.get("issued"), token.get("seen")
    valid = (
        isinstance(name, str)
        and isinstance(issued, float)
        and isinstance(seen, float)
        and hmac.compare_digest(str(token.get("sig", "")), _sign(name, issued))
    )
    now = time.time()
    if not valid:
        st.session_state.pop(STATE, None)
        accounts.record_forged_session(str(name), origin(app))
        return None
    if now - float(issued) > MAX_AGE_S:  # type: ignore[arg-type]
        st.session_state.pop(STATE, None)
        return None
    if now - float(seen) > idle_limit_s():  # type: ignore[arg-type]
        st.session_state.pop(STATE, None)
        st.session_state[EXPIRED] = True
        return None
    token["seen"] = now
    return str(name)


def principal(app: str) -> Principal | None:
    """The signed-in principal, rebuilt from the account file; None when nobody is signed in,
    the session was tampered with, the account is gone or disabled, or it sat idle too long."""
    if _oidc() and st.user.is_logged_in:
        subject = str(st.user.get("email") or st.user.get("sub") or "")
        found = accounts.by_subject(subject)
    else:
        name = _account_of_token(app)
        found = accounts.load().get(name) if name else None
    if found is None or found.disabled:
        st.session_state.pop(STATE, None)
        return None
    return found.principal(origin(app))
