"""The DICOM SR codec: the AI's findings of a study as a TID 1500 Measurement Report in a
Comprehensive 3D SR, read back, and re-issued with a clinician's verdicts. docs/sr.md says
what the document holds and why it is written the way it is.

The modules, each importing only those before it: ``codes`` (the document's codes),
``encode`` (elements and content items, shared ones encoded once), ``findings`` (what the
writer takes and refuses), ``header``, ``write``, ``read``, ``verdicts`` (what the re-issue
takes and refuses) and ``verify``.
"""

from lakehouse.sr.findings import Algorithm, SrFinding
from lakehouse.sr.read import read_findings
from lakehouse.sr.verdicts import Verdict, Verifier
from lakehouse.sr.verify import read_verdicts, verified_report
from lakehouse.sr.write import finding_report, report_file

__all__ = [
    "Algorithm",
    "SrFinding",
    "Verdict",
    "Verifier",
    "finding_report",
    "read_findings",
    "read_verdicts",
    "report_file",
    "verified_report",
]
