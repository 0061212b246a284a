"""Where a study's files land: each institution's upload agent lays folders out its own way.

Layouts, all inside ``imaging/<YKIHO>/<upload folder>/``:

* ``study_uid``: ``<StudyInstanceUID>/<SeriesNumber>/<n>.dcm`` (a PACS export by UID)
* ``flat``: ``IM000001``, ``IM000002``, ... without extension (a console's quick export)
* ``dicomdir``: ``DICOM/PA000000/ST000000/SE000000/IM000000`` (CD-style media folders)
* ``series_dirs``: ``<Modality>_<SeriesNumber>/<SOPInstanceUID>.dcm``

An upload folder is named ``<yyyymmdd>_<HHMMSS>_<accession>`` from the time the agent sent it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


def upload_folder(sent: datetime, accession: str) -> str:
    return f"{sent:%Y%m%d_%H%M%S}_{accession}"


@dataclass(frozen=True)
class Slot:
    """What the layout needs to know about one file."""

    study_uid: str
    modality: str
    series_number: int
    series_index: int  # 0-based position of the series within this upload
    instance_number: int
    index: int  # 0-based position of the file within this upload
    sop_uid: str


def file_path(layout: str, slot: Slot) -> str:
    """The file's path inside its upload folder."""
    if layout == "study_uid":
        return f"{slot.study_uid}/{slot.series_number}/{slot.instance_number}.dcm"
    if layout == "flat":
        return f"IM{slot.index + 1:06d}"
    if layout == "dicomdir":
        return f"DICOM/PA000000/ST000000/SE{slot.series_index:06d}/IM{slot.instance_number - 1:06d}"
    if layout == "series_dirs":
        return f"{slot.modality}_{slot.series_number:03d}/{slot.sop_uid}.dcm"
    raise ValueError(f"unknown layout {layout!r}")
