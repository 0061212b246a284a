"""Sign-in for every app: OpenID Connect when configured, local accounts otherwise.

Production configures one or more identity providers in Streamlit's secrets (``[auth]``, see
``docs/sign-in.md``). The sign-in page then offers each provider's button (``st.login``); the
provider sends the person back with a signed ID token, and the account file maps its issuer and
subject to a role and an institution or citizen key. A provider account the file does not list,
or lists as disabled, is refused and recorded in ``ops.sign_ins``. Without a provider the
embedded local accounts sign in with a password (``lakehouse.accounts``: argon2id, lockout).

A local session keeps only the account name, when it signed in and when it was last seen,
signed with a server key (HMAC-SHA256). The principal is rebuilt from the account file on every
run, so nothing a browser or a tampered session state could put there (a role, a citizen key)
is ever trusted, and a session idle for ``GJH_SESSION_MINUTES`` (default 15) must sign in again.
A provider sign-in lives in Streamlit's identity cookie (signed with ``cookie_secret``) and
lasts a working day from the provider's ID token at most.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, NoReturn

import streamlit as st

from lakehouse import accounts
from lakehouse.access import Principal
from lakehouse.config import secrets_dir, write_secret

STATE: Final = "auth"
EXPIRED: Final = "auth_expired"
PROVIDER_RECORDED: Final = "auth_provider_recorded"
KEY_FILE: Final = "session.key"
MAX_AGE_S: Final = 12 * 3600  # a signed-in session lasts a working day at most


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


def start(account: accounts.Account) -> None:
    now = time.time()
    st.session_state[STATE] = {
        "account": account.name,
        "issued": now,
        "seen": now,
        "sig": _sign(account.name, now),
    }


def forget() -> None:
    """Drop this session's local sign-in. A provider sign-in stays until the person signs out
    (``sign_out``), so that the sign-in page can tell them why it is refused here."""
    st.session_state.pop(STATE, None)


def sign_out() -> NoReturn:
    """End the local sign-in and the provider's, and this run with them. ``st.logout`` clears
    Streamlit's identity cookie and, when the provider publishes an ``end_session_endpoint``,
    ends the person's session there too before coming back to the app; its redirect is sent
    when the run stops (a rerun would drop it and leave the cookie behind)."""
    forget()
    if _at_provider():
        st.logout()
        st.stop()
    st.rerun()


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
        st.session_state.pop(STATE, None)
        return None
    return found.principal(origin(app))
