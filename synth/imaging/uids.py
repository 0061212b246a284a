"""Deterministic DICOM UIDs in the ``2.25.<UUID>`` form.

``pydicom.uid.generate_uid(prefix=None, ...)`` ignores its entropy sources and returns a random
UUID, so it cannot give byte-identical cities. Here a name-based (SHA-1, version 5) UUID of the
city seed, the accession and the object's path stands in: the same inputs always give the same
UID, and different studies, series and instances never collide in practice.
"""

from __future__ import annotations

import hashlib
import uuid

# The namespace is itself a name-based UUID, so it is stable and owned by this generator.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:gwangju-ai-health:synth:imaging")


_NAMESPACE_BYTES = NAMESPACE.bytes
# Bits uuid.uuid5 sets: the RFC 4122 variant and version 5.
_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_SET = (0x8000 << 48) | (5 << 76)


def uid(seed: int, accession: str, *parts: str | int) -> str:
    """The UID of ``parts`` (for example ``("series", 2, "instance", 5)``) within one study.

    The value is ``uuid.uuid5(NAMESPACE, name).int``, computed without building a ``UUID``
    (whose validation costs more than the hash, and a city makes millions of UIDs).
    """
    name = "/".join(str(p) for p in (seed, accession, *parts))
    digest = hashlib.sha1(_NAMESPACE_BYTES + name.encode("utf-8")).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big') & _CLEAR | _SET}"
