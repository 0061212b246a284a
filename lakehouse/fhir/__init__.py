"""The emergency summary as a FHIR International Patient Summary (IPS) document Bundle.

Pure functions from a citizen's rows (Polars frames) to ``fhir.resources.R4B`` resources, so the
Bundle is built and tested without the apps or the lakehouse: ``select`` chooses what a summary
holds (recent problems, latest measurements, recent studies); one module per section builds its
resources (``problems``, ``allergies``, ``medications``, ``results``, ``imaging``) and ``patient``
the Patient; ``document`` puts them in a Composition and a Bundle; ``codes`` holds the code
systems (KR Core's KCD-8 and HIRA EDI drug codes, LOINC, the platform's own) and shared shapes.

The access layer (``lakehouse.access.summary``) reads the rows, checks and audits; the tests
validate every Bundle against HL7's IPS StructureDefinitions (``tests/fhir/``).
"""

from __future__ import annotations

from lakehouse.fhir.document import Record, everything_bundle, ips_bundle

__all__ = ["Record", "everything_bundle", "ips_bundle"]
