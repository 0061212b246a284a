"""What the standard's IOD tables say of a SOP class, as the SR writer asks it: kept in
``iods.json`` beside this module, made from highdicom by ``python -m lakehouse.sr.iods``.

The writer asks three things of the first source's SOP class (docs/sr.md, "The standard's
tables"): the root attributes of its IOD's Patient and Study modules (what highdicom's
``copy_patient_and_study_information`` copies), whether the IOD is an image (only an image's
acquisition equipment is copied) and whether it is a multi-frame image (only then may a finding
name a frame). highdicom's public API answers them (``probe``); but importing highdicom and
loading its tables cost about half a second of CPU in every process that writes reports, each
scorer at each start. So the answers for every SOP class pydicom or highdicom names are kept
here, and ``tests/lakehouse/sr/test_iods.py`` asks the installed highdicom again for each and
compares: an upgrade that changes an answer fails it, and this module's ``main`` writes the new
table. A SOP class neither names is unknown: refused as a first source, no image.
"""

from __future__ import annotations

import importlib.resources
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import pydicom
from pydicom.datadict import dictionary_VR, keyword_dict
from pydicom.dataelem import RawDataElement
from pydicom.tag import BaseTag
from pydicom.uid import UID

from lakehouse.sr.codes import COMPREHENSIVE_3D_SR

TABLE: Final = Path(__file__).with_name("iods.json")


@dataclass(frozen=True)
class Iod:
    """What the writer needs of one SOP class's IOD."""

    patient_and_study: tuple[BaseTag, ...] | None  # None: highdicom knows no such IOD
    image: bool
    multiframe: bool


UNKNOWN: Final = Iod(None, image=False, multiframe=False)


def iod(sop_class_uid: str) -> Iod:
    """The kept answers for ``sop_class_uid`` (``UNKNOWN`` for a class the table lacks)."""
    return _table().get(sop_class_uid, UNKNOWN)


@lru_cache(maxsize=1)
def _table() -> dict[str, Iod]:
    kept = json.loads(TABLE.read_text(encoding="utf-8"))
    tag_sets = [tuple(BaseTag(t) for t in tags) for tags in kept["tag_sets"]]
    return {
        uid: Iod(None if index is None else tag_sets[index], image, multiframe)
        for uid, (index, image, multiframe) in kept["classes"].items()
    }


# -- Asking highdicom (the table's maker and its test) -----------------------------------------


def named_sop_classes() -> list[str]:
    """Every SOP class pydicom names (its UID constants) or highdicom's IOD map holds."""
    pydicoms = {
        str(v) for v in vars(pydicom.uid).values() if isinstance(v, UID) and v.type == "SOP Class"
    }
    shipped = importlib.resources.files("highdicom") / "_standard" / "sop_class_iod_map.json"
    highdicoms = set(json.loads(shipped.read_text(encoding="utf-8")))
    return sorted(pydicoms | highdicoms)


def probe(sop_class_uid: str) -> Iod:
    """highdicom's answers for ``sop_class_uid``, asked of its public API."""
    return Iod(_patient_and_study(sop_class_uid), _image(sop_class_uid), _multiframe(sop_class_uid))


def _patient_and_study(sop_class_uid: str) -> tuple[BaseTag, ...] | None:
    """Given a source of the class holding every attribute pydicom knows,
    ``SOPClass.copy_patient_and_study_information`` copies exactly the modules' attributes; it
    raises ``KeyError`` for a class it knows no IOD of."""
    source = pydicom.Dataset()
    for key in keyword_dict.values():
        tag, vr = BaseTag(key), dictionary_VR(key)  # raw and empty: only copied ones are decoded
        source[tag] = RawDataElement(tag, "UN" if " or " in vr else vr, 0, b"", 0, False, True)
    source.SOPClassUID = sop_class_uid
    source.SOPInstanceUID = "2.25.1"
    target = _blank_sop_instance()
    try:
        target.copy_patient_and_study_information(source)
    except (KeyError, ValueError):
        return None
    return tuple(sorted(element.tag for element in target))


def _blank_sop_instance() -> Any:
    """A highdicom instance (of the SR's class) emptied of its own attributes."""
    import highdicom as hd

    instance = hd.SOPClass(
        study_instance_uid="2.25.1",
        series_instance_uid="2.25.2",
        series_number=1,
        sop_instance_uid="2.25.3",
        sop_class_uid=COMPREHENSIVE_3D_SR,
        instance_number=1,
        modality="SR",
    )
    for tag in list(instance.keys()):
        del instance[tag]
    return instance


def _image(sop_class_uid: str) -> bool:
    """``ContributingEquipment.for_image_acquisition`` refuses a source of a class that is not
    an image with ``ValueError``, of a class it does not know with ``KeyError``."""
    import highdicom as hd

    source = pydicom.Dataset()
    source.SOPClassUID = sop_class_uid
    source.Manufacturer = "probe"  # the one attribute it requires
    try:
        hd.ContributingEquipment.for_image_acquisition(source)
    except (KeyError, ValueError):
        return False
    return True


def _multiframe(sop_class_uid: str) -> bool:
    """``SourceImageForRegion.from_source_image`` refuses a frame number for an image of a class
    whose IOD has no Number of Frames with ``TypeError`` (whatever the instance's frame count)."""
    import highdicom as hd

    source = pydicom.Dataset()
    source.SOPClassUID = sop_class_uid
    source.SOPInstanceUID = "2.25.1"
    source.Modality = "OT"
    source.Rows = source.Columns = source.NumberOfFrames = 1  # an image of one frame
    try:
        hd.sr.SourceImageForRegion.from_source_image(source, referenced_frame_numbers=[1])
    except (KeyError, TypeError):
        return False
    return True


def made() -> dict[str, Any]:
    """The table as highdicom answers it now: every named class it knows something of."""
    import highdicom as hd

    tag_sets: list[list[int]] = []
    classes: dict[str, list[Any]] = {}
    for uid in named_sop_classes():
        answer = probe(uid)
        if answer == UNKNOWN:
            continue
        index = None
        if answer.patient_and_study is not None:
            tags = [int(t) for t in answer.patient_and_study]
            if tags not in tag_sets:
                tag_sets.append(tags)
            index = tag_sets.index(tags)
        classes[uid] = [index, answer.image, answer.multiframe]
    return {"highdicom": hd.__version__, "tag_sets": tag_sets, "classes": classes}


def main() -> None:
    """Write ``iods.json`` from the installed highdicom: a tag set, and a class, per line."""
    table = made()
    lines = [f'{{"highdicom": {json.dumps(table["highdicom"])},', '"tag_sets": [']
    lines += [json.dumps(tags) + "," for tags in table["tag_sets"]]
    lines[-1] = lines[-1].rstrip(",")
    lines += ["],", '"classes": {']
    lines += [f"{json.dumps(uid)}: {json.dumps(row)}," for uid, row in table["classes"].items()]
    lines[-1] = lines[-1].rstrip(",")
    lines += ["}}"]
    TABLE.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
