"""A clinician's verdicts on the AI's findings, and the clinician, as the re-issue takes them,
with what it refuses: whatever DICOM could not hold as given (docs/sr.md, "Verification").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from typing import Any, Final

from lakehouse.sr.codes import DECISIONS, MAX_LO
from lakehouse.sr.findings import check_string, finite

MAX_NOTE: Final = 1024  # characters: ST's limit, though a TEXT item's value is a UT
MAX_PN_GROUP: Final = 64
REASON_CODE: Final = re.compile(r"[a-z0-9][a-z0-9_]{0,63}")
NOTE_CONTROLS: Final = frozenset("\r\n\f")  # the control characters a UT may hold but ESC


@dataclass(frozen=True)
class Verdict:
    """A clinician's assessment of one finding of the AI's report."""

    tracking_uid: str  # the finding's tracking UID (as in the original SR)
    decision: str  # "accepted" | "rejected" | "amended"
    reason_code: str  # short platform code, e.g. "confirmed_on_reading", "artefact", "location"
    note: str | None = None  # free text, stored as it is (a TEXT item), at most MAX_NOTE
    amended_value: float | None = None  # amendments of regressions: in the finding's unit


@dataclass(frozen=True)
class Verifier:
    """The clinician who verifies the report."""

    name: str  # person name (PN: "family^given", or one component; Korean is fine)
    organization: str  # their institution's name (LO, at most 64 characters)
    account: str  # their platform account id (the observer's coded identifier, login name)


def _unsafe(value: str, allowed: frozenset[str] = frozenset()) -> bool:
    """Whether ``value`` holds a control character (but ``allowed``) or cannot be UTF-8."""
    if any(unicodedata.category(c) == "Cc" and c not in allowed for c in value):
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return True
    return False


def check_verifier(verifier: Verifier) -> Verifier:
    """The verifier as written: names without their insignificant surrounding spaces."""
    name, organization = verifier.name.strip(), verifier.organization.strip()
    groups = name.split("=")
    if (
        not name.replace("=", "").replace("^", "").strip()
        or "\\" in name
        or _unsafe(name)
        or len(groups) > 3
        or any(len(g) > MAX_PN_GROUP or g.count("^") > 4 for g in groups)
    ):
        raise ValueError(
            f"the verifier's name {verifier.name!r} is not a DICOM person name (at most three "
            f"'='-separated groups of at most five '^'-separated components and {MAX_PN_GROUP} "
            "characters, no backslash or control character)"
        )
    if not organization or _unsafe(organization):
        raise ValueError(f"the verifier's organization {verifier.organization!r} is empty")
    check_string(organization, MAX_LO, "the verifier's organization (Verifying Organization)")
    account = verifier.account
    if not account or _unsafe(account) or any(c.isspace() for c in account):
        raise ValueError(f"the verifier's account {account!r} is empty or has spaces")
    check_string(account, MAX_LO, "the verifier's account")
    return Verifier(name, organization, account)


def check_verdict(verdict: Verdict, finding: dict[str, Any] | None) -> Verdict:
    """The verdict as written: its note without trailing spaces (DICOM lets readers drop them),
    an empty note as none."""
    label = f"the verdict on {verdict.tracking_uid!r}"
    if finding is None:
        raise ValueError(f"{label}: the report has no finding with this tracking UID")
    if verdict.decision not in DECISIONS:
        raise ValueError(f"{label}: decision {verdict.decision!r} is not one of {list(DECISIONS)}")
    if not isinstance(verdict.reason_code, str) or not REASON_CODE.fullmatch(verdict.reason_code):
        raise ValueError(
            f"{label}: reason code {verdict.reason_code!r} is not a platform code "
            "(a-z, 0-9 and _, at most 64 characters)"
        )
    note = verdict.note
    if note is not None:
        note = note.rstrip(" ") or None
    if note is not None and (len(note) > MAX_NOTE or _unsafe(note, NOTE_CONTROLS)):
        raise ValueError(
            f"{label}: a note has at most {MAX_NOTE} characters and no control character "
            "but CR, LF and FF"
        )
    amended = verdict.amended_value
    if amended is not None:
        if verdict.decision != "amended":
            raise ValueError(f"{label}: only an amendment carries an amended value")
        if finding["unit"] is None:
            raise ValueError(f"{label}: the finding has no measured value to amend")
        amended = finite(amended, f"{label}: amended value")
    return replace(verdict, note=note, amended_value=amended)
