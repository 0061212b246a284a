"""The access layer: the one way any app reads or writes person-level data.

``Access(principal)`` is the apps' one entry point. Who may see what is decided in one module,
``gate`` (the principal, the rules of ``basis`` and of a study, refusals, the audit row); each
concern adds its methods on top of it:

* ``grants``: share codes, proxies, emergency access, revoking them;
* ``records``: a citizen's timeline, name, and who viewed it;
* ``imaging``: the clinicians' worklist, a study and its patient, decisions, the SR re-issue;
* ``readings``: the remote-reading requests and replies;
* ``my_images``: a citizen's own studies, their download and second opinions;
* ``aggregates``: officials' uptake with disclosure control, triage turnaround, the access log;
* ``health``: data health (runs, deliveries, failed checks, quarantine) and freshness;
* ``programme``: officials' KPIs against the programme's targets, their monthly series.

What the ledgers' events say now is folded by pure functions in ``folds``. The access log's own
module, ``lakehouse.audit``, sits outside this package, so the pipelines can write to it without
importing the rules.
"""

from __future__ import annotations

from lakehouse.access.aggregates import UPTAKE_DIMENSIONS, UPTAKE_MEASURES, Aggregates
from lakehouse.access.exports import Exports
from lakehouse.access.folds import Grant
from lakehouse.access.gate import (
    ROLES,
    AccessDeniedError,
    Principal,
    Query,
    Readers,
    Role,
)
from lakehouse.access.grants import Grants
from lakehouse.access.health import DataHealth
from lakehouse.access.imaging import Imaging, OpenedStudy, PatientContext
from lakehouse.access.measurements import Measurements
from lakehouse.access.medicines import Medicines
from lakehouse.access.my_images import MyImages, MyStudy
from lakehouse.access.programme import Programme
from lakehouse.access.readings import Readings
from lakehouse.access.records import Records
from lakehouse.access.signals import Signals
from lakehouse.access.summary import Summary

__all__ = [
    "ROLES",
    "UPTAKE_DIMENSIONS",
    "UPTAKE_MEASURES",
    "Access",
    "AccessDeniedError",
    "Grant",
    "MyStudy",
    "OpenedStudy",
    "PatientContext",
    "Principal",
    "Query",
    "Readers",
    "Role",
]


class Access(
    Grants,
    Records,
    Imaging,
    Readings,
    MyImages,
    Aggregates,
    Measurements,
    Summary,
    Medicines,
    DataHealth,
    Exports,
    Programme,
    Signals,
):
    """The access layer for one principal: every method checks (``gate.Gate``), reads and
    audits. ``Access(principal, clock=..., readers=...)``; see ``gate.Gate`` for the arguments."""
