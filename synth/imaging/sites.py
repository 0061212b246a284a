"""Per-institution habits: what each clinic's devices and PACS export look like.

Every enrolled institution is consistent with itself (one PACS, one character set, one export
layout, the same device vendors) and different from the next, as the real feeds are. A profile is
drawn from the institution's own stream, so any worker process derives the same profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from synth.rng import stream

UTF8: tuple[str, ...] = ("ISO_IR 192",)
# Korean PACS that use ISO 2022 write the default repertoire first, then KS X 1001.
KOREAN_2022: tuple[str, ...] = ("", "ISO 2022 IR 149")

LAYOUTS = ("study_uid", "flat", "dicomdir", "series_dirs")

# (Manufacturer, ManufacturerModelName) per modality; Korean makers where the market has them.
VENDORS: dict[str, tuple[tuple[str, str], ...]] = {
    "CR": (
        ("FUJIFILM Corporation", "FCR PROFECT CS"),
        ("Carestream Health", "DirectView CR 975"),
        ("KONICA MINOLTA", "REGIUS 190"),
    ),
    "DX": (
        ("DRTECH", "EVS 3643"),
        ("Vieworks", "VIVIX-S 1717N"),
        ("Rayence", "1717SGC"),
        ("Samsung Electronics", "GC85A"),
        ("GE Healthcare", "Definium 656"),
    ),
    "PX": (("VATECH", "PaX-i3D Green"), ("Ray", "RAYSCAN alpha"), ("OSSTEM", "T2 Plus")),
    "IO": (("VATECH", "EzSensor Classic"), ("Rayence", "Xmaru1501CF")),
    "MG": (
        ("HOLOGIC, Inc.", "Selenia Dimensions"),
        ("GE Healthcare", "Senographe Pristina"),
        ("Siemens Healthineers", "MAMMOMAT Revelation"),
    ),
    "CT": (
        ("SIEMENS", "SOMATOM go.Now"),
        ("GE MEDICAL SYSTEMS", "Revolution ACT"),
        ("CANON_MEC", "Aquilion Lightning"),
    ),
    "MR": (
        ("SIEMENS", "MAGNETOM Amira"),
        ("GE MEDICAL SYSTEMS", "SIGNA Explorer"),
        ("Philips", "Ingenia"),
    ),
    "OP": (("TOPCON", "TRC-NW8"), ("HUVITZ", "HFC-1"), ("Canon", "CR-2 AF")),
    "ES": (
        ("OLYMPUS", "EVIS X1 CV-1500"),
        ("FUJIFILM", "ELUXEO 7000"),
        ("PENTAX Medical", "EPK-i7010"),
    ),
    "ECG": (("BIONET", "CardioXP"), ("GE Healthcare", "MAC 2000"), ("Philips", "PageWriter TC50")),
}


@dataclass(frozen=True)
class Site:
    """One institution's export habits.

    Attributes:
        code: The YKIHO (HIRA institution code).
        charset: SpecificCharacterSet values.
        layout: Folder layout of its uploads (one of ``LAYOUTS``).
        implicit_vr: Whether its PACS exports Implicit VR Little Endian.
        cr_monochrome1: Whether its CR reader writes MONOCHROME1 (inverted greyscale).
        dx_monochrome1: Whether its DR detector does.
        korean_descriptions: Whether study descriptions come from a Korean worklist.
        vendor: Vendor index per modality into ``VENDORS``.
        field_strength: MR field strength in tesla.
    """

    code: str
    charset: tuple[str, ...]
    layout: str
    implicit_vr: bool
    cr_monochrome1: bool
    dx_monochrome1: bool
    korean_descriptions: bool
    vendor: dict[str, int]
    field_strength: float

    def device(self, modality: str) -> tuple[str, str]:
        """(Manufacturer, model) of this site's device for a modality."""
        makers = VENDORS[modality]
        return makers[self.vendor[modality] % len(makers)]


@cache
def site(seed: int, code: str) -> Site:
    """The profile of institution ``code`` in the city of ``seed``."""
    r = stream(seed, "imaging", "site", code)
    return Site(
        code=code,
        charset=KOREAN_2022 if r.random() < 0.3 else UTF8,
        layout=LAYOUTS[int(r.integers(len(LAYOUTS)))],
        implicit_vr=bool(r.random() < 0.15),
        cr_monochrome1=bool(r.random() < 0.6),
        dx_monochrome1=bool(r.random() < 0.1),
        korean_descriptions=bool(r.random() < 0.5),
        vendor={m: int(r.integers(len(v))) for m, v in VENDORS.items()},
        field_strength=3.0 if r.random() < 0.4 else 1.5,
    )
