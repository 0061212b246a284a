"""The kept IOD table (``lakehouse.sr.iods``) against the installed highdicom's answers."""

from __future__ import annotations

import pytest

from lakehouse.sr.iods import UNKNOWN, iod, named_sop_classes, probe


@pytest.mark.slow
def test_the_kept_table_is_what_highdicom_answers_for_every_named_sop_class() -> None:
    """Each SOP class pydicom or highdicom names, asked of highdicom's public API again (about
    190, 5 s): an upgrade of highdicom that changes an answer fails here, and
    ``python -m lakehouse.sr.iods`` writes the new table."""
    named = named_sop_classes()
    assert len(named) > 180
    differ = [uid for uid in named if iod(uid) != probe(uid)]
    assert differ == []
    known = [uid for uid in named if iod(uid) != UNKNOWN]
    assert len(known) >= 180  # every class highdicom 0.28.2 knows an IOD of
    assert iod("1.2.840.10008.5.1.4.1.1.2").image  # CT Image Storage
    assert not iod("1.2.840.10008.5.1.4.1.1.2").multiframe
    assert iod("1.2.840.10008.5.1.4.1.1.7.4").multiframe  # multi-frame true colour SC
    assert iod("1.2.840.10008.5.1.4.1.1.9.1.1").patient_and_study  # 12-lead ECG
    assert not iod("1.2.840.10008.5.1.4.1.1.9.1.1").image


def test_a_class_the_table_lacks_is_unknown() -> None:
    assert iod("1.2.826.0.1.3680043.9.9999.1") == UNKNOWN  # a private class
