"""What the writer encodes once per process."""

from __future__ import annotations

import io

import pydicom

from lakehouse.sr import read_findings
from tests.lakehouse.sr.cases import dicom_file, expected_fields, make_finding, report_bytes


def test_codes_encoded_once_are_told_apart_by_their_meaning() -> None:
    """The writer encodes each code once per process; ``Code`` equality ignores the meaning,
    so a cache keyed by it would give the second report the first one's meaning."""
    ct = dicom_file("CT_small.dcm")
    for meaning in ("Suspected lung nodule", "Lung nodule, suspected"):
        finding = make_finding(ct, finding_meaning=meaning)
        data = report_bytes([ct], [finding])
        assert read_findings(pydicom.dcmread(io.BytesIO(data))) == [expected_fields(finding)]
