"""A clinician's verdicts on the AI's findings: the AI's report re-issued, verified by them.

The re-issue is a new instance in a new series, verified by the clinician, with the original
as its predecessor and otherwise the AI's document as it was; each verdict is an assessment
item, observed by the clinician, at the end of its finding's measurement group. The access
layer re-issues reports, which is why the codec lives in ``lakehouse`` (docs/sr.md,
"Verification").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from copy import deepcopy
from datetime import datetime, timedelta, timezone
from typing import Any, Final

import highdicom as hd
import pydicom
from pydicom.sr.coding import Code
from pydicom.valuerep import DA, DT, TM

from lakehouse.sr.codes import (
    ACCOUNT_SCHEME,
    ASSESSMENT,
    ASSESSMENT_REASON,
    CHARACTER_SET,
    COMMENT,
    COMPREHENSIVE_3D_SR,
    CONTAINS,
    DECISIONS,
    HAS_OBS_CONTEXT,
    HAS_PROPERTIES,
    IMAGING_MEASUREMENTS,
    MAX_LO,
    MAX_SH,
    OBSERVER_TYPE,
    PERSON,
    PERSON_OBSERVER_LOGIN,
    PERSON_OBSERVER_NAME,
    PERSON_OBSERVER_ORGANIZATION,
    PERSON_OBSERVER_ROLE,
    PLATFORM_MANUFACTURER,
    REISSUED,
    SCHEME,
    TRACKING_UID,
    UNITS,
    VERIFYING,
)
from lakehouse.sr.encode import (
    CONTENT_SEQUENCE,
    ENCODINGS,
    code_item,
    new_item,
    num_item,
    pname_item,
    pydicom_encoded,
    sequence,
    sq,
    text_item,
)
from lakehouse.sr.findings import check_uid
from lakehouse.sr.header import file_meta, platform_equipment
from lakehouse.sr.read import parsed, read_findings, texts
from lakehouse.sr.verdicts import Verdict, Verifier, check_verdict, check_verifier

VERIFIED_SERIES: Final = "Verified AI findings (reference model, not for clinical use)"


def _check_original(original: pydicom.Dataset) -> list[dict[str, Any]]:
    """The findings of an AI report ``finding_report`` wrote, which a verification re-issues."""
    if str(original.get("SOPClassUID", "")) != COMPREHENSIVE_3D_SR:
        raise ValueError("the original is not a Comprehensive 3D SR document")
    if original.get("SpecificCharacterSet") != CHARACTER_SET:
        raise ValueError(f"the original is not in {CHARACTER_SET}, as finding_report writes")
    if original.get("VerificationFlag") != "UNVERIFIED":
        raise ValueError("the original is verified already: re-issue the AI's own report")
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        if keyword not in original:
            raise ValueError(f"the original lacks {keyword}")
    if not original.get("ContentDate") or not original.get("ContentTime"):
        raise ValueError("the original lacks its content date and time")
    findings = read_findings(original)
    if not findings:
        raise ValueError("the original has no measurement group")
    return findings


def _local_time(when: datetime, original: pydicom.Dataset) -> tuple[datetime, str | None]:
    """``when`` in the original's time zone (its dates and times, copied, stay in it), and the
    document's offset from UTC: the original's, or else an aware ``when``'s."""
    offset = original.get("TimezoneOffsetFromUTC")
    if offset:
        match = re.fullmatch(r"([+-])(\d{2})(\d{2})", str(offset))
        if match is None:
            raise ValueError(f"the original's offset from UTC {offset!r} is not +HHMM or -HHMM")
        sign = 1 if match[1] == "+" else -1
        zone = timezone(sign * timedelta(hours=int(match[2]), minutes=int(match[3])))
        return (when if when.utcoffset() is None else when.astimezone(zone)), str(offset)
    if when.utcoffset() is not None:
        return when, when.strftime("%z")
    return when, None


def _is(concept: pydicom.Dataset, code: Code) -> bool:
    value = concept.get("CodeValue") or concept.get("LongCodeValue")
    return bool(value == code.value and concept.CodingSchemeDesignator == code.scheme_designator)


def _measurement_groups(document: pydicom.Dataset) -> list[pydicom.Dataset]:
    for item in document.ContentSequence:
        if item.ValueType == "CONTAINER" and _is(
            item.ConceptNameCodeSequence[0], IMAGING_MEASUREMENTS
        ):
            return list(item.ContentSequence)
    return []


def _tracking_uid(group: pydicom.Dataset) -> str | None:
    for item in group.ContentSequence:
        if item.ValueType == "UIDREF" and _is(item.ConceptNameCodeSequence[0], TRACKING_UID):
            return str(item.UID)
    return None


def _assessment(
    verdict: Verdict, verifier: Verifier, finding: dict[str, Any], moment: datetime
) -> bytes:
    """The clinician's assessment of a finding: the decision, observed by the clinician (TID
    1002/1003 as highdicom's ``ObserverContext`` writes a person), at the verification time,
    with the reason, the note and the amended value as its properties."""
    reason = Code(verdict.reason_code, SCHEME, verdict.reason_code.replace("_", " ").capitalize())
    children = [
        code_item(OBSERVER_TYPE, PERSON, HAS_OBS_CONTEXT),
        pname_item(PERSON_OBSERVER_NAME, verifier.name, HAS_OBS_CONTEXT),
        text_item(PERSON_OBSERVER_LOGIN, verifier.account, HAS_OBS_CONTEXT),
        text_item(PERSON_OBSERVER_ORGANIZATION, verifier.organization, HAS_OBS_CONTEXT),
        code_item(PERSON_OBSERVER_ROLE, VERIFYING, HAS_OBS_CONTEXT),
        code_item(ASSESSMENT_REASON, reason, HAS_PROPERTIES),
    ]
    if verdict.note is not None:
        children.append(text_item(COMMENT, verdict.note, HAS_PROPERTIES))
    if verdict.amended_value is not None:
        concept = Code(finding["finding_code"], SCHEME, finding["finding_meaning"])
        unit = UNITS[finding["unit"]]
        children.append(num_item(concept, verdict.amended_value, unit, HAS_PROPERTIES))
    return code_item(
        ASSESSMENT,
        DECISIONS[verdict.decision],
        CONTAINS,
        pydicom_encoded("ObservationDateTime", DT(moment)),
        sq(CONTENT_SEQUENCE, *children),
    )


def _verifying_observer(verifier: Verifier, moment: datetime) -> pydicom.Dataset:
    """The Verifying Observer Sequence's item, the account as the observer's coded identifier
    (in the platform's account scheme, meaning the person's name)."""
    identifier = new_item()
    if len(verifier.account) > MAX_SH:
        identifier.LongCodeValue = verifier.account
    else:
        identifier.CodeValue = verifier.account
    identifier.CodingSchemeDesignator = ACCOUNT_SCHEME
    identifier.CodeMeaning = next(g for g in verifier.name.split("=") if g.strip())
    item = new_item()
    item.VerifyingObserverName = verifier.name
    item.VerifyingOrganization = verifier.organization
    item.VerificationDateTime = DT(moment)
    item.VerifyingObserverIdentificationCodeSequence = [identifier]
    return item


def _predecessor(original: pydicom.Dataset) -> pydicom.Dataset:
    """The Predecessor Documents Sequence's item: the original, by study, series and instance
    (highdicom's ``previous_versions``)."""
    reference = new_item()
    reference.ReferencedSOPClassUID = str(original.SOPClassUID)
    reference.ReferencedSOPInstanceUID = str(original.SOPInstanceUID)
    series = new_item()
    series.SeriesInstanceUID = str(original.SeriesInstanceUID)
    series.ReferencedSOPSequence = [reference]
    study = new_item()
    study.StudyInstanceUID = str(original.StudyInstanceUID)
    study.ReferencedSeriesSequence = [series]
    return study


def _account_scheme() -> pydicom.Dataset:
    scheme = new_item()
    scheme.CodingSchemeDesignator = ACCOUNT_SCHEME
    scheme.CodingSchemeName = "Gwangju AI public medical service platform accounts"
    scheme.CodingSchemeResponsibleOrganization = PLATFORM_MANUFACTURER
    return scheme


def _verified_description(original: pydicom.Dataset) -> str:
    text = f"Verified {original.get('SeriesDescription', '')}"
    return text if len(text) <= MAX_LO and "not for clinical use" in text else VERIFIED_SERIES


def _verification_header(
    document: pydicom.Dataset,
    original: pydicom.Dataset,
    verifier: Verifier,
    moment: datetime,
    offset: str | None,
) -> None:
    """The header attributes a verification changes, but the UIDs and the instance number."""
    document.SeriesDescription = _verified_description(original)
    day, clock = DA(moment.date()), TM(moment.time().replace(tzinfo=None))
    document.InstanceCreationDate, document.InstanceCreationTime = day, clock
    document.ContentDate, document.ContentTime = day, clock
    document.SeriesDate, document.SeriesTime = day, clock
    if offset is not None:
        document.TimezoneOffsetFromUTC = offset
    document.CompletionFlag = "COMPLETE"
    document.VerificationFlag = "VERIFIED"
    document.PreliminaryFlag = "FINAL"
    document.VerifyingObserverSequence = [_verifying_observer(verifier, moment)]
    document.PredecessorDocumentsSequence = [_predecessor(original)]
    schemes = list(document.get("CodingSchemeIdentificationSequence", []))
    if all(s.get("CodingSchemeDesignator") != ACCOUNT_SCHEME for s in schemes):
        schemes.append(_account_scheme())
    document.CodingSchemeIdentificationSequence = schemes
    equipment = list(document.get("ContributingEquipmentSequence", []))
    document.ContributingEquipmentSequence = [*equipment, platform_equipment(moment, REISSUED)]


def verified_report(
    original: pydicom.Dataset,
    verdicts: Sequence[Verdict],
    verifier: Verifier,
    series_instance_uid: str,
    sop_instance_uid: str,
    instance_number: int,
    when: datetime,
) -> pydicom.Dataset:
    """The AI's report (as ``finding_report`` wrote it) re-issued with a clinician's verdicts on
    its findings, verified by the clinician; ready to save.

    A new instance in a new series (the UIDs the caller gives; the series number is the
    original's) of the same patient and study, with the original's header, evidence and content
    tree as they are, and:

    * the verification: Verification Flag VERIFIED, Completion Flag COMPLETE, Preliminary Flag
      FINAL, one Verifying Observer (name, organization, ``when``, the account as the coded
      identifier in the platform's account scheme ``99GJHACCT``, declared in the Coding Scheme
      Identification Sequence);
    * the original in the Predecessor Documents Sequence (by study, series, instance and class);
    * in each measurement group with a verdict, one more item at its end: the assessment (a
      CODE, concept 99GJH ``assessment``, value 99GJH ``accepted``, ``rejected`` or
      ``amended``), observed by the clinician at ``when``: its own observer context (TID 1002
      person observer: name, login name (the account), organization, role Verifying) and
      Observation DateTime; its properties are the reason (99GJH ``reason``, the platform's
      reason code in 99GJH), the note (DCM Comment, TEXT) and the amended value (a NUM named as
      the finding, in its unit), those two only when given;
    * the Observation DateTime of the root: the original's content date and time, which every
      item of the AI's inherits (the document's content date and time become ``when``);
    * content date and time, instance creation, series date and time: ``when``, in the
      original's time zone when it has one; the series description says verified (and still
      reference model, not for clinical use); the platform is appended to the contributing
      equipment as the software that re-issued the instance.

    Nothing of the AI's own content changes: ``read_findings`` reads the same findings from
    both, and ``read_verdicts`` reads the verdicts back. Raises ``ValueError`` when the original
    is not an unverified report of ``finding_report`` (a verified one is not re-verified: the
    AI's own report is), when there is no verdict, two on one finding, or one naming a tracking
    UID the report lacks, with a decision other than the three, a reason code that is not a
    platform code, a note over ``MAX_NOTE`` characters or with a control character but CR, LF
    and FF, or an amended value on anything but an amendment of a measured finding; when the
    verifier's name is no person name, their organization is empty or over 64 characters, or
    their account is empty, over 64 characters or has spaces; or when a UID is invalid or the
    original's, or the instance number below 1.
    """
    findings = _check_original(original)
    by_uid = {str(f["tracking_uid"]): f for f in findings}
    if not verdicts:
        raise ValueError("a verified report needs at least one verdict")
    checked: dict[str, Verdict] = {}
    for verdict in verdicts:
        if verdict.tracking_uid in checked:
            raise ValueError(f"two verdicts on {verdict.tracking_uid!r}")
        checked[verdict.tracking_uid] = check_verdict(verdict, by_uid.get(verdict.tracking_uid))
    person = check_verifier(verifier)
    check_uid(series_instance_uid, "series instance UID")
    check_uid(sop_instance_uid, "SOP instance UID")
    if series_instance_uid == str(original.SeriesInstanceUID):
        raise ValueError("a re-issued report is a new series: its UID must not be the original's")
    if sop_instance_uid == str(original.SOPInstanceUID):
        raise ValueError("a re-issued report is a new instance: its UID must not be the original's")
    if instance_number < 1:
        raise ValueError("the instance number must be positive")
    moment, offset = _local_time(when, original)

    document = deepcopy(original)
    document.set_original_encoding(False, True, ENCODINGS)
    document.file_meta = file_meta(sop_instance_uid)
    document.preamble = b"\x00" * 128
    if "ObservationDateTime" not in document:  # the AI's items keep their time
        document.ObservationDateTime = DT(f"{original.ContentDate}{original.ContentTime}")
    for group in _measurement_groups(document):
        uid = _tracking_uid(group)
        if uid is not None and uid in checked:
            assessment = _assessment(checked[uid], person, by_uid[uid], moment)
            content = sequence(CONTENT_SEQUENCE, *group.ContentSequence, assessment)
            group[CONTENT_SEQUENCE] = content

    document.SeriesInstanceUID = series_instance_uid
    document.SOPInstanceUID = sop_instance_uid
    document.InstanceNumber = instance_number
    _verification_header(document, original, person, moment, offset)
    return document


def read_verdicts(ds: pydicom.Dataset) -> list[Verdict]:
    """The clinician's verdicts in a report ``verified_report`` wrote, one per assessed finding
    (each with its tracking UID) in document order, parsed back with highdicom: notes and
    amended values as written; none in an unverified report. A group assessed more than once
    gives its last assessment."""
    _, groups = parsed(ds)
    decisions = {(code.value, code.scheme_designator): word for word, code in DECISIONS.items()}
    out: dict[str, Verdict] = {}
    for group in groups:
        uid = None if group.tracking_uid is None else str(group.tracking_uid)
        assessments = hd.sr.utils.find_content_items(
            group[0], name=ASSESSMENT, value_type=hd.sr.ValueTypeValues.CODE
        )
        for assessment in assessments:
            if uid is None:
                raise ValueError("an assessed measurement group has no tracking UID")
            value = assessment.value
            decision = decisions.get((str(value.value), str(value.scheme_designator)))
            if decision is None:
                raise ValueError(f"an assessment has an unknown decision {value.value!r}")
            reasons = hd.sr.utils.find_content_items(
                assessment, name=ASSESSMENT_REASON, value_type=hd.sr.ValueTypeValues.CODE
            )
            notes = texts(assessment, COMMENT)
            amended = hd.sr.utils.find_content_items(
                assessment, value_type=hd.sr.ValueTypeValues.NUM
            )
            if len(reasons) != 1:
                raise ValueError("an assessment has no reason, or several")
            out[uid] = Verdict(
                tracking_uid=uid,
                decision=decision,
                reason_code=str(reasons[0].value.value),
                note=notes[0] if notes else None,
                amended_value=float(amended[0].value) if amended else None,
            )
    return list(out.values())
