"""A refusal of the access layer as the person reads it: one message, in the session's language.

``AccessDeniedError`` carries the audit log's English detail and a one-word ``code``
(``lakehouse.access.gate``); a page shows ``refusal(error)``, never the detail, so a Korean
screen holds no English sentence and each refusal is said once.
"""

from __future__ import annotations

from apps.common.i18n import messages, t
from lakehouse.access import AccessDeniedError


def refusal(error: AccessDeniedError) -> str:
    """The message for ``error``'s code (``refusal.<code>`` in the catalogue), else the general
    refusal (``error.denied``)."""
    key = f"refusal.{error.code}"
    return t(key) if key in messages() else t("error.denied")
