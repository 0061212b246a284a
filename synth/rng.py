"""Named, reproducible random streams.

Every part of the synthetic city draws from its own stream, named by what it generates
(``stream(seed, "claims", chunk)``). A stream depends only on the seed and its name, never on the
order in which other parts ran or on how many worker processes shared the work, which is what makes
``gjh synth`` byte-identical for the same arguments.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _name_key(parts: tuple[str | int, ...]) -> list[int]:
    digest = hashlib.blake2b("/".join(str(p) for p in parts).encode(), digest_size=16).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


def stream(seed: int, *name: str | int) -> np.random.Generator:
    """Return the generator for one named stream.

    Args:
        seed: The city's seed (``--seed``).
        name: Path-like parts naming the stream, for example ``("claims", 3)`` for chunk 3 of the
            claims. Two different names give statistically independent streams.
    """
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *_name_key(name)])))
