"""Local accounts: the embedded default sign-in, and the map from any sign-in to a principal.

Production signs people in through the city's or a hospital's OpenID Connect provider
(Streamlit's ``st.login``); the account file then maps the provider's issuer and subject (the
ID token's ``iss`` and ``sub``, the only claims OpenID Connect promises are stable and never
reassigned) to a role, an institution or a citizen key, and holds no password. Without a
provider (the demo, a laptop), accounts sign in with a password, stored only as an argon2id hash
(argon2-cffi, salted, with its parameters in the hash). Five failures within fifteen minutes
lock the account for fifteen minutes. Every sign-in attempt, with a password or through a
provider, is appended to ``ops.sign_ins`` through its outbox (``SIGN_IN_LOG``).

The file is JSON (``GJH_ACCOUNTS``, default ``<secrets>/accounts.json``, mode 600), outside the
lakehouse. Citizens are listed by citizen key, never by registration number: ``load_demo``
pseudonymises the synthetic city's demo accounts file at this boundary, as bronze does.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any, Final

import polars as pl
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from lakehouse import pseudonym
from lakehouse.access import ROLES, Principal, Role
from lakehouse.catalog import YKIHO_PATTERN
from lakehouse.config import secrets_dir
from lakehouse.ledger import Ledger

SIGN_INS: Final = "ops.sign_ins"
# Sign-ins are appended through a local outbox, as the access log is: a sign-in costs an SQLite
# commit, not a Delta commit, and many at once do not race for the table.
SIGN_IN_LOG: Final = Ledger(SIGN_INS, "event_id", "sign-ins")
LOCK_AFTER: Final = 5
LOCK_WINDOW: Final = timedelta(minutes=15)
_HASHER: Final = PasswordHasher()  # argon2id, the library's current recommended parameters


class SignInError(Exception):
    """Sign-in refused; ``reason`` is one of ``ops.sign_ins.outcome``'s values."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Account:
    """One account.

    Attributes:
        name: What the person types (or the identity provider's subject or e-mail).
        role: citizen | clinician | official | admin.
        display_name: Staff names as the apps greet them (citizens: empty, the vault has it).
        institution: A clinician's institution (YKIHO).
        citizen_key: A citizen's pseudonymous key.
        password_hash: argon2id hash (None: signs in only through the identity provider).
        disabled: Refused at sign-in.
        oidc_issuer: The identity provider's issuer (its ``iss``, a URL) for a person who signs
            in there; set together with ``oidc_subject``.
        oidc_subject: The person's subject at that provider (the ID token's ``sub``).
    """

    name: str
    role: Role
    display_name: str = ""
    institution: str | None = None
    citizen_key: str | None = None
    password_hash: str | None = None
    disabled: bool = False
    oidc_issuer: str | None = None
    oidc_subject: str | None = None

    def principal(self, origin: str) -> Principal:
        return Principal(
            self.name, self.role, self.display_name, self.institution, self.citizen_key, origin
        )


def path() -> Path:
    return Path(os.environ.get("GJH_ACCOUNTS") or secrets_dir() / "accounts.json")


def _check(account: Account) -> Account:
    if account.role not in ROLES:
        raise ValueError(f"{account.name}: unknown role {account.role!r}")
    if account.role == "citizen" and not pseudonym.is_citizen_key(account.citizen_key):
        raise ValueError(f"{account.name}: a citizen account needs a citizen key")
    if account.role == "clinician" and not (
        account.institution and re.match(YKIHO_PATTERN, account.institution)
    ):
        raise ValueError(f"{account.name}: a clinician account needs an institution code")
    if bool(account.oidc_issuer) != bool(account.oidc_subject):
        raise ValueError(f"{account.name}: oidc_issuer and oidc_subject go together")
    return account


_LOADED: dict[Path, tuple[tuple[int, int, int], dict[str, Account]]] = {}


def load(where: Path | None = None) -> dict[str, Account]:
    """Every account, by name (an empty map when there is no file yet).

    Every app run rebuilds its principal from this file, so a parsed file is kept until the
    file changes (its inode, size or modification time): a run costs one ``stat``, and an
    account disabled or edited on disk takes effect on the next run."""
    file = where or path()
    try:
        st = file.stat()
    except FileNotFoundError:
        return {}
    state = (st.st_ino, st.st_size, st.st_mtime_ns)
    kept = _LOADED.get(file)
    if kept is not None and kept[0] == state:
        return dict(kept[1])
    doc = json.loads(file.read_text(encoding="utf-8"))
    found = {a["name"]: _check(Account(**a)) for a in doc["accounts"]}
    seen: dict[tuple[str, str], str] = {}
    for account in found.values():
        if account.oidc_issuer and account.oidc_subject:
            other = seen.setdefault((account.oidc_issuer, account.oidc_subject), account.name)
            if other != account.name:
                raise ValueError(f"{account.name} and {other}: the same provider subject")
    _LOADED[file] = (state, found)
    return dict(found)


def save(accounts: dict[str, Account], where: Path | None = None) -> Path:
    """Write the account file atomically, readable by its owner only."""
    file = where or path()
    file.parent.mkdir(parents=True, exist_ok=True)
    partial = file.with_name(f".{file.name}.partial")
    doc = {"accounts": [asdict(a) for a in sorted(accounts.values(), key=lambda a: a.name)]}
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(doc, out, ensure_ascii=False, indent=1)
    partial.replace(file)
    return file


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("a password needs at least 8 characters")
    return _HASHER.hash(password)


def load_demo(demo_file: Path, where: Path | None = None) -> int:
    """Add (or replace) the accounts of a synthetic city's demo accounts file; returns how
    many. Citizens' registration numbers become citizen keys here and go no further;
    passwords become argon2id hashes."""
    doc = json.loads(demo_file.read_text(encoding="utf-8"))
    accounts = load(where)
    for entry in doc["accounts"]:
        rrn = entry.get("resident_registration_number")
        accounts[entry["username"]] = _check(
            Account(
                name=entry["username"],
                role=entry["role"],
                display_name=entry.get("display_name", "") if entry["role"] != "citizen" else "",
                institution=entry.get("institution"),
                citizen_key=pseudonym.citizen_key(rrn) if rrn else None,
                password_hash=hash_password(entry["password"]),
            )
        )
    save(accounts, where)
    return len(doc["accounts"])


def record_forged_session(claimed: str, origin: str) -> None:
    """A session token that fails its signature (tampered or made up): refused by the app,
    recorded here with the account it claimed, for the admin's review."""
    _record(claimed[:64] or "?", origin, "forged_session", datetime.now(UTC))


def _record(name: str, origin: str, outcome: str, at: datetime) -> None:
    """One attempt into ``ops.sign_ins``, through its outbox (``lakehouse.ledger``): on disk when
    this returns, in the table within a second where the app runs a flusher."""
    row: dict[str, Any] = {
        "event_id": uuid.uuid4().hex,
        "at": at,
        "account": name,
        "origin": origin,
        "outcome": outcome,
    }
    SIGN_IN_LOG.append([row])


def _recent_failures(name: str, now: datetime) -> int:
    """Failures of ``name`` in the lock window, the ones still in this machine's outbox
    included (``Ledger.scan``)."""
    return int(
        SIGN_IN_LOG.scan()
        .filter(
            (pl.col("account") == name)
            & (pl.col("at") > now - LOCK_WINDOW)
            & pl.col("outcome").is_in(["wrong_password", "locked"])
        )
        .select(pl.len())
        .collect()
        .item()
    )


def sign_in(name: str, password: str, origin: str, now: datetime | None = None) -> Account:
    """The account, if ``password`` is right and it is neither disabled nor locked; otherwise
    ``SignInError``. Every attempt is recorded. An unknown name costs a hash like a known one,
    so timing does not tell which names exist."""
    at = now or datetime.now(UTC)
    account = load().get(name)
    if account is None or account.password_hash is None:
        with contextlib.suppress(VerificationError):
            _HASHER.verify(_dummy(), password)
        _record(name, origin, "unknown_account", at)
        raise SignInError("unknown_account")
    if account.disabled:
        _record(name, origin, "disabled", at)
        raise SignInError("disabled")
    if _recent_failures(name, at) >= LOCK_AFTER:
        _record(name, origin, "locked", at)
        raise SignInError("locked")
    try:
        _HASHER.verify(account.password_hash, password)
    except (VerificationError, InvalidHashError):
        _record(name, origin, "wrong_password", at)
        if _recent_failures(name, at) >= LOCK_AFTER:
            raise SignInError("locked") from None
        raise SignInError("wrong_password") from None
    _record(name, origin, "ok", at)
    return account


def by_subject(issuer: str, subject: str) -> Account | None:
    """The account a provider sign-in maps to (disabled ones too: the caller refuses them),
    matched by the ID token's issuer and subject together. Never by e-mail: an address can
    change hands or go unverified, and a subject is unique only within its issuer."""
    if not (issuer and subject):
        return None
    return next(
        (a for a in load().values() if a.oidc_issuer == issuer and a.oidc_subject == subject),
        None,
    )


def provider_sign_in(issuer: str, subject: str, origin: str) -> Account:
    """The account a provider sign-in maps to (``by_subject``), if it is not disabled;
    otherwise ``SignInError``. Every attempt is recorded; one no account matches goes under
    ``sub@iss``, what an administrator copies into the account file to admit the person."""
    at = datetime.now(UTC)
    account = by_subject(issuer, subject)
    if account is None:
        _record(f"{subject}@{issuer}", origin, "unknown_account", at)
        raise SignInError("unknown_account")
    if account.disabled:
        _record(account.name, origin, "disabled", at)
        raise SignInError("disabled")
    _record(account.name, origin, "ok", at)
    return account


@cache
def _dummy() -> str:
    return _HASHER.hash("not a real password, only for equal timing")
