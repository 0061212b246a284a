"""The codes and fixed values of the AI findings SR (see docs/sr.md for why each is chosen).

DICOM's, SNOMED CT's and UCUM's codes where the standard has one; the platform's own, in the
coding scheme ``99GJH`` (declared in each document), where it has none: the findings, the ECG
segments and a clinician's assessment of an AI finding.
"""

from __future__ import annotations

from typing import Final

from pydicom.sr.coding import Code

SCHEME: Final = "99GJH"
ACCOUNT_SCHEME: Final = "99GJHACCT"  # the platform's accounts, as coded observer identifiers
MANUFACTURER: Final = "Gwangju AI public medical service (reference model)"
DISCLAIMER_EN: Final = "Reference model trained on synthetic data, not for clinical use."
DISCLAIMER_KO: Final = "합성 데이터로 학습한 참조 모델입니다. 임상 진료에 사용할 수 없습니다."
CHARACTER_SET: Final = "ISO_IR 192"
PLATFORM: Final = "gwangju-ai-health"  # the distribution whose code writes the SR
PLATFORM_MANUFACTURER: Final = "Gwangju AI public medical service"
COMPREHENSIVE_3D_SR: Final = "1.2.840.10008.5.1.4.1.1.88.34"
CREATED: Final = "Software that created this instance (lakehouse.sr)"
REISSUED: Final = (
    "Software that re-issued this instance with a clinician's verification (lakehouse.sr)"
)

IMAGING_PROCEDURE: Final = Code("363679005", "SCT", "Imaging procedure")
ECG_PROCEDURE: Final = Code("268400002", "SCT", "12-Lead ECG")
# Any other ECG recording (a Holter's 2 leads, a patch's 1): the parent concept of 12-lead ECG.
ECG_RECORDING: Final = Code("29303009", "SCT", "Electrocardiographic procedure")
PROBABILITY: Final = Code("122157", "DCM", "Probability")
THRESHOLD: Final = Code("122411", "DCM", "Threshold Value")
PRESENT: Final = Code("52101004", "SCT", "Present")
ABSENT: Final = Code("272519000", "SCT", "Absent")
SEGMENT_START: Final = Code("segment_start", SCHEME, "Contributing segment start")
SEGMENT_END: Final = Code("segment_end", SCHEME, "Contributing segment end")
SOURCE: Final = Code("121112", "DCM", "Source of Measurement")
COMMENT: Final = Code("121106", "DCM", "Comment")
QUALITATIVE: Final = Code("C0034375", "UMLS", "Qualitative Evaluations")
IMAGING_MEASUREMENTS: Final = Code("126010", "DCM", "Imaging Measurements")
ALGORITHM_NAME: Final = Code("111001", "DCM", "Algorithm Name")
ALGORITHM_VERSION: Final = Code("111003", "DCM", "Algorithm Version")
DEVICE: Final = Code("121007", "DCM", "Device")
ENGLISH: Final = Code("en-US", "RFC5646", "English (United States)")
KOREAN: Final = Code("ko-KR", "RFC5646", "Korean (Republic of Korea)")

# The codes highdicom's templates write around ours.
REPORT_TITLE: Final = Code("126000", "DCM", "Imaging Measurement Report")
LANGUAGE: Final = Code("121049", "DCM", "Language of Content Item and Descendants")
OBSERVER_TYPE: Final = Code("121005", "DCM", "Observer Type")
DEVICE_OBSERVER_UID: Final = Code("121012", "DCM", "Device Observer UID")
DEVICE_OBSERVER_NAME: Final = Code("121013", "DCM", "Device Observer Name")
DEVICE_OBSERVER_MANUFACTURER: Final = Code("121014", "DCM", "Device Observer Manufacturer")
DEVICE_OBSERVER_MODEL: Final = Code("121015", "DCM", "Device Observer Model Name")
PROCEDURE_REPORTED: Final = Code("121058", "DCM", "Procedure reported")
MEASUREMENT_GROUP: Final = Code("125007", "DCM", "Measurement Group")
TRACKING_IDENTIFIER: Final = Code("112039", "DCM", "Tracking Identifier")
TRACKING_UID: Final = Code("112040", "DCM", "Tracking Unique Identifier")
FINDING: Final = Code("121071", "DCM", "Finding")
ALGORITHM_MANUFACTURER: Final = Code("122405", "DCM", "Algorithm Manufacturer")
IMAGE_REGION: Final = Code("111030", "DCM", "Image Region")
REGION_SOURCE: Final = Code("260753009", "SCT", "Source")
ACQUISITION_EQUIPMENT: Final = Code("109101", "DCM", "Acquisition Equipment")
PROCESSING_EQUIPMENT: Final = Code("109102", "DCM", "Processing Equipment")

# A clinician's assessment of a finding, in the platform's scheme: DICOM has no codes for
# accepting, rejecting or amending an AI result (docs/sr.md).
DECISIONS: Final = {
    "accepted": Code("accepted", SCHEME, "AI finding accepted by the clinician"),
    "rejected": Code("rejected", SCHEME, "AI finding rejected by the clinician"),
    "amended": Code("amended", SCHEME, "AI finding amended by the clinician"),
}
ASSESSMENT: Final = Code("assessment", SCHEME, "Clinician's assessment of the AI finding")
ASSESSMENT_REASON: Final = Code("reason", SCHEME, "Reason for the clinician's assessment")
# TID 1002 and 1003: the clinician as the person observer of the assessment.
PERSON: Final = Code("121006", "DCM", "Person")
PERSON_OBSERVER_NAME: Final = Code("121008", "DCM", "Person Observer Name")
PERSON_OBSERVER_LOGIN: Final = Code("128774", "DCM", "Person Observer's Login Name")
PERSON_OBSERVER_ORGANIZATION: Final = Code("121009", "DCM", "Person Observer's Organization Name")
PERSON_OBSERVER_ROLE: Final = Code("121011", "DCM", "Person Observer's Role in this Procedure")
VERIFYING: Final = Code("121098", "DCM", "Verifying")  # CID 7453 Performing Roles

NO_UNITS: Final = Code("1", "UCUM", "no units")
SECOND: Final = Code("s", "UCUM", "second")
UNITS: Final = {
    "month": Code("mo", "UCUM", "month"),
    "mm": Code("mm", "UCUM", "millimeter"),
}

# Relationship types (PS3.3 C.17.3).
CONTAINS: Final = "CONTAINS"
HAS_OBS_CONTEXT: Final = "HAS OBS CONTEXT"
HAS_CONCEPT_MOD: Final = "HAS CONCEPT MOD"
HAS_PROPERTIES: Final = "HAS PROPERTIES"
SELECTED_FROM: Final = "SELECTED FROM"

# Value lengths (PS3.5 6.2): long string, short string, short text, unique identifier.
MAX_LO: Final = 64
MAX_SH: Final = 16
MAX_ST: Final = 1024
MAX_UID: Final = 64
