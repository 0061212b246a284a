"""Direct identifiers, encrypted at rest: the one place names, birth dates and addresses live.

``vault.identities`` holds them encrypted with Fernet (AES-128-CBC with HMAC-SHA256, from the
maintained ``cryptography`` package). The key comes from ``GJH_IDENTITY_KEY`` or
``<GJH_SECRETS_DIR>/identity.key``, never from the lakehouse. Only the access layer decrypts: a
name for the person themselves, and names and birth dates to find a patient for a clinician
(``matching``), who is shown the pseudonymous key, never the decrypted values.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from datetime import date
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


def normalised_name(name: str) -> str:
    """A name as a lookup compares it: Unicode NFC, without spaces, case folded, so
    ``홍 길동`` finds ``홍길동`` and ``Kim Min-ji`` finds ``KIM MIN-JI``."""
    return "".join(unicodedata.normalize("NFC", name).split()).casefold()


def matching(vault: pl.DataFrame, name: str, birth_date: date) -> list[str]:
    """The citizen keys of the ``vault.identities`` rows whose name and birth date are these.

    Ciphertexts are not searchable (each has its own random nonce), so the caller narrows the
    rows first (to the citizens born in that month: about a thousand in a city of 1.4 million)
    and each is decrypted here, birth date first; nothing decrypted leaves this function."""
    wanted_name, wanted_birth = normalised_name(name), birth_date.strftime("%Y%m%d")
    return [
        key
        for key, name_enc, birth_enc in vault.select(
            "citizen_key", "name_enc", "birth_date_enc"
        ).iter_rows()
        if re.sub(r"[^0-9]", "", decrypt(birth_enc)) == wanted_birth
        and normalised_name(decrypt(name_enc)) == wanted_name
    ]
