"""``ops``: what the apps append and never update, through the access layer (``lakehouse.access``):
the access log, grants and sign-ins (``APP_LEDGERS``), and clinicians' decisions on the AI's
findings with the remote readings clinics ask for (``TRIAGE``)."""

from __future__ import annotations

from typing import Final

from lakehouse.catalog.columns import (
    PATIENT_KEY,
    YKIHO_PATTERN,
    column,
    uid,
)
from lakehouse.pseudonym import KEY_PATTERN
from lakehouse.schema import Table

# What the apps append (never update): who read whose data, the grants that allowed it, and
# the sign-in attempts. The access layer (``lakehouse.access``) is their only writer.
ROLES_PATTERN: Final = r"^(citizen|clinician|official|admin)$"
APP_LEDGERS: Final = (
    Table(
        "ops.audit_log",
        "Every read or write of person-level data, and every refusal, by anyone: account, role, "
        "time, origin, whose data, the action, its purpose and how many rows (Medical Service "
        "Act access log; kept at least two years).",
        (
            column("event_id", "text", "a random id of the entry", required=True),
            column("at", "timestamp", "when", required=True),
            column(
                "month",
                "text",
                "YYYY-MM of at (partition: retention drops whole months)",
                required=True,
                pattern=r"^[0-9]{4}-[0-9]{2}$",
            ),
            column("account", "text", "who asked (account name)", required=True),
            column("role", "text", "their role", required=True, pattern=ROLES_PATTERN),
            column("institution", "text", "their institution (clinicians)", pattern=YKIHO_PATTERN),
            column("origin", "text", "where from: the app and the client address", required=True),
            column(
                "subject_key",
                "text",
                "whose data (citizen key); null for aggregates and operations",
                personal="pseudonym",
                pattern=KEY_PATTERN,
            ),
            column("action", "text", "what was done, e.g. read:timeline", required=True),
            column(
                "purpose",
                "text",
                "on what basis: self | proxy | institution | share | institution_share | consent | "
                "emergency | remote_reading | monitoring | oversight | account | research",
                required=True,
            ),
            column(
                "outcome", "text", "allowed | denied", required=True, pattern=r"^(allowed|denied)$"
            ),
            column("rows", "int", "rows returned or written", required=True, low=0),
            column("emergency", "bool", "an emergency (break-the-glass) access", required=True),
            column("detail", "text", "the stated reason, or why it was refused (English)"),
            column(
                "refusal",
                "text",
                "a refusal's code (AccessDeniedError.code: role, not_a_key, no_basis, "
                "reason_required, share_unknown...), named in the reader's language by the apps",
                pattern=r"^[a-z_]+$",
            ),
        ),
        key=("event_id",),
        partition_by=("month",),
    ),
    Table(
        "ops.grants",
        "Who may see whose record beyond the default rules, as events: a citizen's share code, "
        "proxy (family carer) grant or standing consent to an institution, a clinician's "
        "emergency access, their acceptance (a carer's), use and revocation.",
        (
            column("event_id", "text", "a random id of the event", required=True),
            column("grant_id", "text", "the grant the event belongs to", required=True),
            column(
                "event",
                "text",
                "created | accepted (a carer's proxy) | redeemed (a share code) | revoked",
                required=True,
                pattern=r"^(created|accepted|redeemed|revoked)$",
            ),
            column(
                "kind",
                "text",
                "share | proxy | consent (standing, to an institution) | emergency",
                required=True,
                pattern=r"^(share|proxy|consent|emergency)$",
            ),
            column("at", "timestamp", "when", required=True),
            column(
                "subject_key",
                "text",
                "whose record",
                required=True,
                personal="pseudonym",
                pattern=KEY_PATTERN,
            ),
            column("actor", "text", "the account that did this", required=True),
            column("grantee", "text", "the account it is for (proxy; a share once redeemed)"),
            column(
                "institution",
                "text",
                "the grantee's institution (a consent: the institution it is given to)",
                pattern=YKIHO_PATTERN,
            ),
            column("code_hash", "text", "keyed hash of a share code (the code is never stored)"),
            column(
                "expires_at", "timestamp", "when it stops allowing access (null: until revoked)"
            ),
            column("reason", "text", "the stated reason (emergency)"),
            column(
                "scope",
                "text",
                "what a share code covers: share groups joined by commas "
                "(lakehouse.access.gate.SHARE_SCOPES); null: everything",
                pattern=r"^[a-z]+(,[a-z]+)*$",
            ),
        ),
        key=("event_id",),
    ),
    Table(
        "ops.sign_ins",
        "Every sign-in attempt, with a local account or through an identity provider (lockout "
        "counts a local account's recent failures; the admin reviews them).",
        (
            column(
                "event_id",
                "text",
                "the attempt's id (its outbox delivers it once by it; null before outboxes)",
            ),
            column("at", "timestamp", "when", required=True),
            column("account", "text", "the account name given", required=True),
            column("origin", "text", "the app and the client address", required=True),
            column(
                "outcome",
                "text",
                "ok | wrong_password | unknown_account | locked | disabled | forged_session",
                required=True,
            ),
        ),
        key=("event_id",),
    ),
)


# What clinicians decide about the AI's findings, and the remote readings clinics ask for: both
# appended by the access layer (``lakehouse.access``), never updated, so two clinicians acting
# at once both keep their say.
DECISIONS: Final = "^(review|accepted|rejected|amended)$"
TRIAGE: Final = (
    Table(
        "ops.triage_events",
        "Every clinician's step on an AI finding: opened for review, accepted, rejected or "
        "amended, with the reason code and an optional note (IHE AIRA's assessment). Append-only: "
        "a finding's verification is its latest decision.",
        (
            column("event_id", "text", "a random id of the event", required=True),
            column("at", "timestamp", "when", required=True),
            column("account", "text", "the clinician (account name)", required=True),
            column(
                "institution",
                "text",
                "the clinician's institution",
                required=True,
                pattern=YKIHO_PATTERN,
            ),
            uid("study_instance_uid", "the study"),
            column("service", "text", "the AI service", required=True, codes="ai_services"),
            column("finding_code", "text", "the finding", required=True),
            column("algorithm_version", "text", "the model version that found it", required=True),
            uid("tracking_uid", "the finding's tracking UID (ai.findings, the SR)"),
            PATIENT_KEY,
            column(
                "decision",
                "text",
                "review (opened) | accepted | rejected | amended",
                required=True,
                pattern=DECISIONS,
            ),
            column("reason_code", "text", "why (lakehouse/reference/triage.toml); null for review"),
            column("note", "text", "the clinician's note, as typed"),
            column("amended_value", "float", "an amended measurement, in the finding's unit"),
            column(
                "basis", "text", "on what basis they could see it: institution | remote_reading"
            ),
            column(
                "sr_uri", "text", "the SR re-issued with this verification, in the object store"
            ),
        ),
        key=("event_id",),
    ),
    Table(
        "ops.reading_requests",
        "Remote readings as events: a clinic (or the citizen, on their own consent) asks a "
        "hospital's readers for a reading or a second opinion on one study, and the reply (a "
        "report and a decision) returns to whoever asked, and to the citizen's clinic if they "
        "chose so.",
        (
            column("event_id", "text", "a random id of the event", required=True),
            column("request_id", "text", "the request the event belongs to", required=True),
            column(
                "event",
                "text",
                "requested | replied | cancelled",
                required=True,
                pattern=r"^(requested|replied|cancelled)$",
            ),
            column("at", "timestamp", "when", required=True),
            uid("study_instance_uid", "the study to read"),
            PATIENT_KEY,
            column(
                "from_institution",
                "text",
                "the clinic that asks; null when the citizen asks",
                pattern=YKIHO_PATTERN,
            ),
            column(
                "to_institution",
                "text",
                "the hospital asked to read",
                required=True,
                pattern=YKIHO_PATTERN,
            ),
            column("actor", "text", "the account that did this", required=True),
            column("text", "text", "the question (requested) or the report (replied)"),
            column(
                "decision",
                "text",
                "the reader's decision on the AI finding (replied)",
                pattern=DECISIONS,
            ),
            column(
                "basis",
                "text",
                "on whose say the study goes to the hospital (requested): institution (the "
                "clinic that sent it) | citizen_consent (the citizen or their proxy asked)",
                pattern=r"^(institution|citizen_consent)$",
            ),
            column(
                "kind",
                "text",
                "reading | second_opinion (requested)",
                pattern=r"^(reading|second_opinion)$",
            ),
            column(
                "copy_to",
                "text",
                "a clinic the reply is also sent to, as the citizen chose (requested)",
                pattern=YKIHO_PATTERN,
            ),
        ),
        key=("event_id",),
    ),
)
