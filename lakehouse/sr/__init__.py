"""The DICOM SR codec: the AI's findings of a study as a TID 1500 Measurement Report in a
Comprehensive 3D SR, read back, and re-issued with a clinician's verdicts. docs/sr.md says
what the document holds and why it is written the way it is.

The modules, each importing only those before it: ``codes`` (the document's codes),
``encode`` (elements and content items, shared ones encoded once), ``iods`` (what the
standard's tables say of a SOP class), ``findings`` (what the writer takes and refuses),
``header``, ``write``, ``read``, ``verdicts`` (what the re-issue takes and refuses) and
``verify``.

A name of the API imports its module when it is first used (PEP 562): a scoring process, which
only writes reports, never imports highdicom, which the reader and the re-issue need (about a
quarter of a second of every scorer's start).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lakehouse.sr.findings import Algorithm, SrFinding
    from lakehouse.sr.read import read_findings
    from lakehouse.sr.verdicts import Verdict, Verifier
    from lakehouse.sr.verify import read_verdicts, verified_report
    from lakehouse.sr.write import finding_report, report_file

_MODULE_OF = {
    "Algorithm": "findings",
    "SrFinding": "findings",
    "read_findings": "read",
    "Verdict": "verdicts",
    "Verifier": "verdicts",
    "read_verdicts": "verify",
    "verified_report": "verify",
    "finding_report": "write",
    "report_file": "write",
}

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


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value  # found here from now on
    return value
