"""Direct identifiers, encrypted at rest: the one place names, birth dates and addresses live.

``vault.identities`` holds them encrypted with Fernet (AES-128-CBC with HMAC-SHA256, from the
maintained ``cryptography`` package). The key comes from ``GJH_IDENTITY_KEY`` or
``<GJH_SECRETS_DIR>/identity.key``, never from the lakehouse. Only the access layer decrypts, for
the person themselves.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path
from typing import Final

import polars as pl
from cryptography.fernet import Fernet

from lakehouse.config import MissingKeyError, secrets_dir, write_secret

KEY_FILE: Final = "identity.key"


def key_path() -> Path:
    return secrets_dir() / KEY_FILE


def create_key(path: Path | None = None) -> Path:
    """Write a new Fernet key file (mode 600) unless one exists; return its path."""
    return write_secret(path or key_path(), Fernet.generate_key().decode("ascii"))


@cache
def _fernet() -> tuple[Fernet, str]:
    value = os.environ.get("GJH_IDENTITY_KEY", "").encode()
    if not value:
        path = key_path()
        if not path.exists():
            raise MissingKeyError(
                f"no identity key: set GJH_IDENTITY_KEY or create {path} (`gjh keys`)"
            )
        value = path.read_bytes().strip()
    return Fernet(value), hashlib.sha256(value).hexdigest()[:8]


def reset_key_cache() -> None:
    """Forget the loaded key (tests switch keys between runs)."""
    _fernet.cache_clear()


def key_id() -> str:
    """A short fingerprint of the key in use, stored beside each row so keys can be rotated."""
    return _fernet()[1]


def encrypt(values: pl.Series) -> pl.Series:
    """Each value encrypted (nulls become the encryption of an empty string)."""
    fernet = _fernet()[0]
    return pl.Series(
        values.name,
        [fernet.encrypt((v or "").encode("utf-8")).decode("ascii") for v in values.to_list()],
        dtype=pl.Utf8,
    )


def decrypt(token: str) -> str:
    """One value decrypted; only the access layer calls this."""
    return _fernet()[0].decrypt(token.encode("ascii")).decode("utf-8")
