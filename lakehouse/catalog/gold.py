"""``gold``: shaped for the apps' lookups."""

from __future__ import annotations

from typing import Final

from lakehouse.catalog.columns import citizen, column, uid
from lakehouse.schema import Table

KINDS: Final = (
    "visit",
    "admission",
    "diagnosis",
    "prescription",
    "dispensing",
    "imaging",
    "measurement",
)
KIND_PATTERN: Final = "^(" + "|".join(KINDS) + ")$"
# lakehouse.access.folds.ConsentState, the words of a citizen's consent state.
CONSENT_PATTERN: Final = r"^(none|signed_up|consented|linked|withdrawn|deleted)$"
AGE_PATTERN: Final = r"^(0-19|20-39|40-64|65-74|75\+)$"
DONG_PATTERN: Final = r"^240[1-5]0[0-9]{2}$"
# The counts of gold.ai_services_published, each within the one before it (audited so).
SERVICE_COUNTS: Final = ("studies", "flagged", "accepted")
# The uptake table's measures (pipelines.transform.gold: STOCKS and FLOWS).
MEASURE_PATTERN: Final = (
    r"^(residents|app_users|consented|linked|ai_users|centre_users|signups|active_users"
    r"|centre_visitors)$"
)
DISTRICT: Final = column("district_code", "text", "district", required=True, pattern=r"^240[1-5]0$")
AGE_GROUP: Final = column(
    "age_group",
    "text",
    "0-19 | 20-39 | 40-64 | 65-74 | 75+ (age that day)",
    required=True,
    pattern=AGE_PATTERN,
)
SEX: Final = column("sex", "text", "M or F", required=True, pattern=r"^[MF]$")
# The partition column of the tables read one citizen at a time (lakehouse.buckets).
KEY_BUCKET: Final = column(
    "key_bucket",
    "int",
    "bucket of the citizen key (partition): lakehouse.buckets.key_bucket",
    required=True,
    low=0,
    high=63,
)
GOLD: Final = (
    Table(
        "gold.citizen_timeline",
        "Each citizen's lifetime health timeline: visits and admissions, diagnoses, "
        "prescriptions, dispensings, imaging studies with their AI result and centre "
        "measurements, one row per event in structured, language-free fields (the apps name "
        "codes in the session's language; only names delivered with the data are stored), laid "
        "out so one citizen's timeline is one partition read.",
        (
            citizen(),
            column(
                "event_date",
                "date",
                "day of the event (a medicine: the day it was issued or dispensed)",
                required=True,
            ),
            column(
                "end_date",
                "date",
                "last day it covers: an admission's discharge, a medicine's last day supplied "
                "(event_date + days - 1)",
            ),
            column(
                "kind",
                "text",
                "visit | admission | diagnosis | prescription | dispensing | imaging | measurement",
                required=True,
                pattern=KIND_PATTERN,
            ),
            column(
                "code",
                "text",
                "KCD (visit: its main diagnosis), ingredient, the study's modalities, or the "
                "centre measure (lakehouse/reference/codes/centre_measures.csv)",
            ),
            column(
                "name",
                "text",
                "the name delivered with the code: the KCD or drug list's Korean name, the "
                "study's DICOM description; null for centre measures (named from their list)",
            ),
            column("role", "text", "a diagnosis's role: main | sub", pattern=r"^(main|sub)$"),
            column("form_type", "text", "visit: the statement's form type (form_types list)"),
            column("department", "text", "visit: the treating department (departments list)"),
            column("dose", "float", "medicine: dose per time", low=0),
            column("per_day", "int", "medicine: times a day", low=0),
            column("days", "int", "medicine: days supplied; visit: days of care", low=0),
            column(
                "amount",
                "int",
                "won: a visit's total cost, a medicine line's amount",
            ),
            column("patient_amount", "int", "won: the patient's share of a visit"),
            column("prescription_no", "text", "medicine: the prescription's issue number"),
            column(
                "prescriber",
                "text",
                "dispensing: the prescribing institution",
            ),
            column("prescriber_name", "text", "dispensing: the prescriber's registered name"),
            column("value", "float", "measurement: the value"),
            column("unit", "text", "measurement: the value's unit"),
            column("device", "text", "measurement: the centre device kind"),
            column(
                "context",
                "text",
                "measurement: the condition or channel (eyes_open, eyes_closed, 5xSTS, "
                "<muscle> <L|R>)",
            ),
            uid("study_uid", "imaging: the study instance UID", required=False),
            column(
                "ai_service", "text", "imaging: the AI service of its result", codes="ai_services"
            ),
            column("ai_finding", "text", "imaging: what that service looks for"),
            column("ai_score", "float", "imaging: the AI score 0..1", low=0, high=1),
            column("ai_positive", "bool", "imaging: any finding beyond its threshold"),
            column("institution", "text", "where (institution code)"),
            column("institution_name", "text", "where, by the register's (or header's) name"),
            column(
                "partner",
                "text",
                "a hospital partner's record: the partner's code (silver.partner_*, linked by "
                "token; institution_name then holds the partner's delivered name); null for the "
                "city's own sources",
            ),
            column(
                "source_ref",
                "text",
                "the silver row it came from: <table>:<key values joined by :>",
                required=True,
            ),
            KEY_BUCKET,
        ),
        key=("source_ref",),
        partition_by=("key_bucket",),
        sort_by=("citizen_key",),
    ),
    Table(
        "gold.citizen_consent",
        "What each citizen with an app account has agreed to (the record-link consent, the "
        "link with a joint certificate, a withdrawal), folded from silver.programme_events by "
        "lakehouse.access.folds.consent, the access layer's own rule, and laid out like the "
        "timeline so one citizen's state is one partition read; the events since the build "
        "are folded on top when it is read (lakehouse.queries.consent).",
        (
            citizen(),
            column(
                "state",
                "text",
                "none | signed_up | consented | linked | withdrawn | deleted",
                required=True,
                pattern=CONSENT_PATTERN,
            ),
            column("signed_up", "bool", "an app account is open", required=True),
            column("consented", "bool", "the record-link consent is in force", required=True),
            column("linked", "bool", "a record link completed under that consent", required=True),
            column("withdrawn", "bool", "the consent was withdrawn since", required=True),
            column("deleted", "bool", "the last account was deleted", required=True),
            column("signed_up_at", "timestamp", "the open account's sign-up"),
            column("consented_at", "timestamp", "the consent in force: when it was given"),
            column("linked_at", "timestamp", "the record link under it: when it completed"),
            column("withdrawn_at", "timestamp", "the withdrawal: when"),
            column(
                "events_version",
                "int",
                "the version of silver.programme_events folded (the same on every row of a "
                "build): the files added since hold the events to fold on top",
                required=True,
                low=0,
            ),
            column(
                "events_through",
                "date",
                "the newest event day folded (the same on every row of a build)",
                required=True,
            ),
            KEY_BUCKET,
        ),
        key=("citizen_key",),
        partition_by=("key_bucket",),
        sort_by=("citizen_key",),
    ),
    Table(
        "gold.programme_uptake_daily",
        "Daily programme uptake by district, dong, age group and sex: the funnel's stocks "
        "(residents, app users, record-link consent, linked records, AI service users, centre "
        "users) and the daily flows (sign-ups, active users, centre visits). Raw counts that "
        "no official reads: gold.programme_uptake_published is made from them.",
        (
            column("day", "date", "the day", required=True),
            DISTRICT,
            column(
                "dong_code",
                "text",
                "neighbourhood (dong), within the district",
                required=True,
                pattern=DONG_PATTERN,
            ),
            AGE_GROUP,
            SEX,
            column("residents", "int", "residents that day", required=True, low=0),
            column("signups", "int", "app sign-ups that day", required=True, low=0),
            column(
                "app_users",
                "int",
                "residents with an app account signed up by that day",
                required=True,
                low=0,
            ),
            column(
                "active_users",
                "int",
                "residents who logged in to the app that day",
                required=True,
                low=0,
            ),
            column(
                "centre_visitors",
                "int",
                "residents measured at the seniors' centre that day",
                required=True,
                low=0,
            ),
            column(
                "consented",
                "int",
                "residents whose record-link consent stands at the end of that day "
                "(lakehouse.consent)",
                required=True,
                low=0,
            ),
            column(
                "linked",
                "int",
                "residents whose records are linked under that consent at the end of that day",
                required=True,
                low=0,
            ),
            column(
                "ai_users",
                "int",
                "residents with a study scored by an AI service by that day",
                required=True,
                low=0,
            ),
            column(
                "centre_users",
                "int",
                "residents measured at the seniors' centre by that day",
                required=True,
                low=0,
            ),
        ),
        key=("day", "district_code", "dong_code", "age_group", "sex"),
        # One partition per day: a new day's cells are written into their own partition (and
        # rewritten there when late rows change them), never into the files of other days.
        partition_by=("day",),
    ),
    Table(
        "gold.programme_uptake_published",
        "The programme's uptake as officials may see it, suppressed once for everything the "
        "officials' app can show (docs/disclosure.md): per measure, month x district x age "
        "group x sex with every margin (a null dimension is its margin) and dong within "
        "district for the whole period; counts of 1-10 and their complements hidden, the "
        "whole set audited by linear programming. Every official view is read from here.",
        (
            column(
                "measure",
                "text",
                "the measure (a column of gold.programme_uptake_daily)",
                required=True,
                pattern=MEASURE_PATTERN,
            ),
            column(
                "month",
                "text",
                "YYYY-MM; null: the whole period (a flow's sum over its months)",
                pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$",
            ),
            column("district_code", "text", "district; null: all", pattern=r"^240[1-5]0$"),
            column("dong_code", "text", "dong; null: all (the dong level)", pattern=DONG_PATTERN),
            column("age_group", "text", "age group; null: all", pattern=AGE_PATTERN),
            column("sex", "text", "M or F; null: both", pattern=r"^[MF]$"),
            column("value", "int", "the count; null where suppressed", low=0),
            column("suppressed", "bool", "hidden by disclosure control", required=True),
        ),
        key=("measure", "month", "district_code", "dong_code", "age_group", "sex"),
    ),
    Table(
        "gold.ai_services_published",
        "The AI reading services' use as officials may see it (docs/disclosure.md): per service "
        "and month of acquisition, with both margins (a null dimension is its margin), the "
        "studies scored, flagged by the AI and flagged and accepted by a clinician (as of the "
        "build); counts of 1-10 and their complements hidden, the three audited together by "
        "linear programming under studies >= flagged >= accepted. Officials' AI service figures "
        "are read from here.",
        (
            column("service", "text", "the AI reading service; null: all", codes="ai_services"),
            column(
                "month",
                "text",
                "YYYY-MM the study was acquired; null: the whole period",
                pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$",
            ),
            column("studies", "int", "studies scored; null where suppressed", low=0),
            column("studies_suppressed", "bool", "studies hidden", required=True),
            column("flagged", "int", "of them, flagged by the AI; null where suppressed", low=0),
            column("flagged_suppressed", "bool", "flagged hidden", required=True),
            column(
                "accepted",
                "int",
                "of them, flags a clinician accepted; null where suppressed",
                low=0,
            ),
            column("accepted_suppressed", "bool", "accepted hidden", required=True),
            column(
                "median_hours",
                "float",
                "median hours from arrival to scoring; only beside a shown, non-zero studies",
                low=0,
            ),
        ),
        key=("service", "month"),
    ),
    # -- adverse drug event signals (issue 22, part 4: pipelines/transform/signals.py) --------
    Table(
        "gold.ade_signals",
        "Adverse drug event signals officials and researchers may see (docs/signals.md): per "
        "scope (the city or a district) and drug -> event pair, the sequence symmetry analysis "
        "(incident drug and incident event within the window; crude, null-effect and adjusted "
        "sequence ratios) and the disproportionality 2x2 (PRR, ROR), from omop.drug_exposure "
        "and omop.condition_occurrence. Counts of 1-10 hidden with complements across the "
        "districts (the city is their margin); a ratio from a hidden count is not shown.",
        (
            column(
                "scope",
                "text",
                "city, or the district code",
                required=True,
                pattern=r"^(city|240[1-5]0)$",
            ),
            column(
                "drug",
                "text",
                "HIRA ingredient code (drug_source_value)",
                required=True,
                codes="drugs",
            ),
            column(
                "event", "text", "KCD code with the dot (condition_source_value)", required=True
            ),
            column(
                "prespecified",
                "bool",
                "named in advance (lakehouse/reference/omop/signal_pairs.csv), not only screened",
                required=True,
            ),
            column("window_days", "int", "the sequence symmetry window", required=True, low=1),
            column("drug_persons", "int", "persons with an incident start of the drug", low=0),
            column("event_persons", "int", "persons with an incident event", low=0),
            column("drug_first", "int", "persons with the drug, then the event", low=0),
            column("event_first", "int", "persons with the event, then the drug", low=0),
            column("crude_sr", "float", "drug_first / event_first", low=0),
            column("null_sr", "float", "Tsiropoulos' null-effect sequence ratio", low=0),
            column("adjusted_sr", "float", "crude / null-effect sequence ratio", low=0),
            column("sr_low", "float", "95% interval of the adjusted ratio, low", low=0),
            column("sr_high", "float", "95% interval of the adjusted ratio, high", low=0),
            column("exposed_with_event", "int", "2x2 a: drug starts with the event after", low=0),
            column("exposed_without_event", "int", "2x2 b: drug starts without it", low=0),
            column("others_with_event", "int", "2x2 c: other drugs' starts with it", low=0),
            column("others_without_event", "int", "2x2 d: other drugs' starts without", low=0),
            column("prr", "float", "proportional reporting ratio", low=0),
            column("prr_low", "float", "95% interval of the PRR, low", low=0),
            column("prr_high", "float", "95% interval of the PRR, high", low=0),
            column("ror", "float", "reporting odds ratio", low=0),
            column("ror_low", "float", "95% interval of the ROR, low", low=0),
            column("ror_high", "float", "95% interval of the ROR, high", low=0),
            column("signal", "bool", "the adjusted ratio's lower bound above 1; null if hidden"),
            column("suppressed", "bool", "some count of the row hidden", required=True),
        ),
        key=("scope", "drug", "event"),
    ),
)
