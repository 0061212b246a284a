"""Sign-in for every app: OpenID Connect when configured, local accounts otherwise.

Production configures one or more identity providers in Streamlit's secrets (``[auth]``, see
``docs/sign-in.md``). The sign-in page then offers each provider's button (``st.login``); the
provider sends the person back with a signed ID token, and the account file maps its issuer and
subject to a role and an institution or citizen key. A provider account the file does not list,
or lists as disabled, is refused and recorded in ``ops.sign_ins``. Without a provider the
embedded local accounts sign in with a password (``lakehouse.accounts``: argon2id, lockout).

A local session is a random id in the server's store (``apps/common/sessions.py``: the
account, when it signed in, when it was last seen), signed with a server key (HMAC-SHA256). The
session state holds the signed id; so does an HttpOnly cookie (``apps/common/session_cookie.py``),
which carries the sign-in over a reload or into a new tab. The principal is rebuilt from the
account file on every run, so nothing a browser could put in a cookie or a tampered session
state (a role, a citizen key) is ever trusted; a forged token is refused and recorded. A session
idle for ``GJH_SESSION_MINUTES`` (default 15) or older than 12 hours must sign in again, and
signing out ends it in the store, so that no tab or copied cookie opens it any more.
A provider sign-in lives in Streamlit's identity cookie (signed with ``cookie_secret``) and
lasts a working day from the provider's ID token at most.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, NoReturn

import streamlit as st

from apps.common import session_cookie, sessions
from apps.common.sessions import MAX_AGE_S
from lakehouse import accounts
from lakehouse.access import Principal

STATE: Final = "auth"  # the signed session id of this session's local sign-in
EXPIRED: Final = "auth_expired"
PROVIDER_RECORDED: Final = "auth_provider_recorded"
COOKIE_TICKET: Final = "auth_cookie_ticket"  # the page is to set the cookie with it
COOKIE_DROP: Final = "auth_cookie_drop"  # the page is to clear the cookie
COOKIE_REFUSED: Final = "auth_cookie_refused"  # the token refused in this session


def idle_limit_s() -> float:
    return float(os.environ.get("GJH_SESSION_MINUTES", "15")) * 60


def origin(app: str) -> str:
    """Where a request comes from, for the audit log: the app and the client's address."""
    return f"{app} {st.context.ip_address or 'unknown'}"


@dataclass(frozen=True)
class Provider:
    """One identity provider configured in Streamlit's ``[auth]`` secrets.

    Attributes:
        name: What ``st.login`` takes: ``default`` for the keys directly under ``[auth]``, else
            the name of its ``[auth.<name>]`` table.
        label: Its ``display_name`` there (``""``: the sign-in page says "your organisation").
    """

    name: str
    label: str


def providers() -> list[Provider]:
    """The configured identity providers, the unnamed default first; none without ``[auth]``
    (then only the local accounts' form is offered)."""
    try:
        section = st.secrets.get("auth")
    except FileNotFoundError:
        return []
    if not isinstance(section, Mapping):
        return []
    found = []
    if "client_id" in section:
        found.append(Provider("default", str(section.get("display_name", ""))))
    found += [
        Provider(str(name), str(table.get("display_name", "")))
        for name, table in section.items()
        if isinstance(table, Mapping) and "client_id" in table
    ]
    return found


def _at_provider() -> bool:
    """Whether Streamlit's identity cookie says someone signed in at a provider (``get``, not
    the attribute: ``st.user`` lists ``is_logged_in`` only once a provider is configured in
    the secrets file it reads, which a test's in-memory secrets are not)."""
    return bool(providers()) and st.user.get("is_logged_in") is True


def provider_identity() -> tuple[str, str] | None:
    """The issuer and subject of the person signed in at a provider in this browser, from
    Streamlit's signed identity cookie (the ID token's claims); None when nobody is, or the
    token was issued more than ``MAX_AGE_S`` ago (then the person must sign in again there)."""
    if not _at_provider():
        return None
    issuer, subject, issued = st.user.get("iss"), st.user.get("sub"), st.user.get("iat")
    if not (isinstance(issuer, str) and isinstance(subject, str) and issuer and subject):
        return None
    if not isinstance(issued, int | float) or time.time() - float(issued) > MAX_AGE_S:
        st.session_state[EXPIRED] = True
        return None
    return issuer, subject


def provider_account() -> accounts.Account | None:
    """The account the provider sign-in in this browser maps to, disabled or not (None: no
    provider sign-in, or one the account file does not list)."""
    identity = provider_identity()
    return accounts.by_subject(*identity) if identity else None


def start(app: str, account: accounts.Account) -> None:
    """Open a session of ``account`` in the server's store, keep its signed id in this
    session's state, and leave a one-time ticket for the page to set the cookie with
    (``sync_cookie``)."""
    now = time.time()
    token = sessions.token(app, sessions.STORE.open(account.name, now, MAX_AGE_S))
    st.session_state[STATE] = token
    st.session_state[COOKIE_TICKET] = sessions.STORE.ticket(token, now)


def _refuse(token: object) -> None:
    """Stop using ``token`` in this session: it is dropped from the session state, not taken
    from the cookie again (``st.context.cookies`` keeps what the connection opened with), and
    the page clears the browser's cookie unless that opens a live session."""
    st.session_state.pop(STATE, None)
    st.session_state[COOKIE_REFUSED] = token
    st.session_state[COOKIE_DROP] = True


def forget(app: str) -> None:
    """End this session's local sign-in, on the server too: its id opens nothing any more,
    in this tab, in the others, or from a copied cookie. A provider sign-in stays until the
    person signs out (``sign_out``), so that the sign-in page can tell them why it is refused
    here."""
    token = st.session_state.get(STATE)
    if token is None:
        return
    session = sessions.session_of(app, token)
    if session is not None:
        sessions.STORE.close(session)
    _refuse(token)


def sign_out(app: str) -> NoReturn:
    """End the local sign-in and the provider's, and this run with them. ``st.logout`` clears
    Streamlit's identity cookie and, when the provider publishes an ``end_session_endpoint``,
    ends the person's session there too before coming back to the app; its redirect is sent
    when the run stops (a rerun would drop it and leave the cookie behind)."""
    forget(app)
    if _at_provider():
        st.logout()
        st.stop()
    st.rerun()


def _presented(app: str) -> object:
    """The session token of this run: the session state's, else the cookie the browser sent
    when this session connected (a reload, a new tab), unless that was refused already."""
    token = st.session_state.get(STATE)
    if token is not None:
        return token
    cookie = st.context.cookies.get(session_cookie.cookie_name(app))
    # Not text: no browser sent it (AppTest's stand-in for a connection answers anything).
    refused = not isinstance(cookie, str) or cookie == st.session_state.get(COOKIE_REFUSED)
    return None if refused else cookie


def _account_of_token(app: str) -> str | None:
    """The account name of a valid session token; a malformed or forged token, or one whose
    session ended (signed out, idle, too old), is refused (idle: the person is told their
    session expired; forged: recorded in ``ops.sign_ins``)."""
    token = _presented(app)
    if token is None:
        return None
    session = sessions.session_of(app, token)
    if session is None:
        _refuse(token)
        accounts.record_forged_session(str(token), origin(app))
        return None
    found = sessions.STORE.touch(session, time.time(), idle_limit_s(), MAX_AGE_S)
    if isinstance(found, sessions.Ended):
        _refuse(token)
        if found is sessions.Ended.IDLE:
            st.session_state[EXPIRED] = True
        return None
    st.session_state[STATE] = token  # a cookie's session is this tab's from now on
    return found.account


def sync_cookie() -> None:
    """Let the page set the cookie after a sign-in, or clear it after a sign-out or a refusal,
    once (see ``apps/common/session_cookie.py``; the call is a script in an invisible element,
    which the next run removes)."""
    ticket = st.session_state.pop(COOKIE_TICKET, None)
    drop = st.session_state.pop(COOKIE_DROP, False)
    if isinstance(ticket, str):
        st.html(session_cookie.keep_script(ticket), unsafe_allow_javascript=True)
    elif drop:
        st.html(session_cookie.drop_script(), unsafe_allow_javascript=True)


def _provider_sign_in(app: str, issuer: str, subject: str) -> accounts.Account | None:
    """The account of a provider sign-in, recorded in ``ops.sign_ins`` once per session (every
    run asks for the principal; the first one is the sign-in)."""
    recorded = st.session_state.get(PROVIDER_RECORDED)
    if recorded != (issuer, subject):
        st.session_state[PROVIDER_RECORDED] = (issuer, subject)
        with contextlib.suppress(accounts.SignInError):
            accounts.provider_sign_in(issuer, subject, origin(app))
    return accounts.by_subject(issuer, subject)


def principal(app: str) -> Principal | None:
    """The signed-in principal, rebuilt from the account file; None when nobody is signed in,
    the session was tampered with, the account is gone or disabled, it sat idle too long, or
    the provider's account is not in the account file."""
    name = _account_of_token(app)
    if name:
        found = accounts.load().get(name)
    elif (identity := provider_identity()) is not None:
        found = _provider_sign_in(app, *identity)
    else:
        found = None
    if found is None or found.disabled:
        forget(app)
        return None
    return found.principal(origin(app))
