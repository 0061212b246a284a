"""The Patient: the pseudonymous key, sex and birth month; the name only on the citizen's own
export."""

from __future__ import annotations

from typing import Any, Final

from lakehouse.fhir.codes import CITIZEN_KEY, JSON, entry_id, profile

GENDER: Final = {"M": "male", "F": "female"}


def patient(person: dict[str, Any], name: str | None) -> tuple[str, JSON]:
    """The Patient entry of one citizen.

    Identified by the platform's pseudonymous citizen key only: no resident registration number
    ever leaves the platform. IPS requires a name (``Patient.name`` 1..1, ``ips-pat-1``): the
    citizen's own name when they export their own record; otherwise a name of use ``anonymous``
    whose text is the key (FHIR's HumanName use for "a pseudonym used to protect a person's
    identity"). The birth date is the year and month the platform keeps (a partial FHIR date).

    Args:
        person: ``citizen_key``, ``sex`` (M/F), ``birth_year``, ``birth_month``.
        name: The citizen's name, or None to leave it out.
    """
    key = person["citizen_key"]
    resource: JSON = {
        "resourceType": "Patient",
        "meta": profile("Patient-uv-ips"),
        "identifier": [{"use": "secondary", "system": CITIZEN_KEY, "value": key}],
        "name": [{"text": name}] if name else [{"use": "anonymous", "text": key}],
        "birthDate": f"{person['birth_year']:04d}-{person['birth_month']:02d}",
    }
    if person.get("sex") in GENDER:
        resource["gender"] = GENDER[person["sex"]]
    return entry_id("Patient", key), resource
