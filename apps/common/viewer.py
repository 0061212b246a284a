"""A study's images with the AI's overlay, and the controls that change them (series, slice,
frame, window preset, overlay and its opacity; zoom is the chart's own): the clinician's viewer
and the citizen's own images draw studies with this one module. They open where the AI located
the top finding: its series, its instance and, in a multi-frame instance, its frame.

``images`` is a fragment: moving one of its controls reruns it alone, not the findings and their
decision forms beside it, so scrolling through slices stays quick and a half-written decision
stays as it was."""

import json
from typing import Any, Protocol

import numpy as np
import polars as pl
import pydicom
import streamlit as st
from numpy.typing import NDArray

from apps.common import render
from apps.common.i18n import t
from models.runtime.registry import registry


class Drawn(Protocol):
    """What the viewer draws of a study: its instances in reading order, the originals (pydicom
    datasets in the same order) and the AI's heatmaps by finding (``OpenedStudy`` for a
    clinician, ``MyStudy`` for the citizen)."""

    @property
    def instances(self) -> pl.DataFrame: ...

    @property
    def datasets(self) -> list[pydicom.Dataset]: ...

    @property
    def heatmaps(self) -> dict[str, NDArray[np.float32]]: ...


ZOOM = {"scrollZoom": True}  # zoom with the wheel as well as by dragging a box
Box = tuple[float, float, float, float]


def location(finding: dict[str, Any]) -> dict[str, Any]:
    """Where the AI located a finding (a box on an instance, and the frame of a multi-frame
    one; or ECG segments), or nothing."""
    return json.loads(finding["location"]) if finding["location"] else {}


def window_name(window: render.Window) -> str:
    """A window preset as readers call it, with its centre and width."""
    base, _, extra = window.name.partition("_")
    known = window.name if window.name != "header" and not extra.isdigit() else base
    name = t(f"triage.window.{known}") + (f" {extra}" if extra.isdigit() else "")
    return f"{name} (L {window.centre:g} / W {window.width:g})"


def located_frame(finding: dict[str, Any] | None, sop: str) -> int | None:
    """The frame (1-based) of this multi-frame instance where the AI located the finding; None
    when it located nothing here, or on a single-frame instance."""
    if finding is None or finding["sop_instance_uid"] != sop:
        return None
    frame = finding.get("frame_number")
    return int(frame) if frame is not None else None


def _located_here(finding: dict[str, Any], sop: str, frame: int) -> bool:
    """The finding was located on this instance and, in a multi-frame one, on this frame."""
    if finding["sop_instance_uid"] != sop:
        return False
    located = located_frame(finding, sop)
    return located is None or located == frame


def box_of(finding: dict[str, Any], sop: str, frame: int = 1) -> Box | None:
    """The finding's box, if the AI located it on this instance (and this frame of it)."""
    where = location(finding)
    if where.get("type") == "box" and _located_here(finding, sop, frame):
        x0, y0, x1, y1 = where["box"]
        return (x0, y0, x1, y1)
    return None


def heat(opened: Drawn, finding: dict[str, Any] | None, ds: pydicom.Dataset, frame: int = 1) -> Any:
    """The finding's heatmap on this instance's pixels, if it was located here (on ``frame``,
    1-based, of a multi-frame instance)."""
    if finding is None or finding["tracking_uid"] not in opened.heatmaps:
        return None
    if not _located_here(finding, str(ds.SOPInstanceUID), frame):
        return None
    service = registry().get(finding["service"])
    spec = service.config.image if service else None
    if spec is None:
        return None
    return render.heat_on_source(opened.heatmaps[finding["tracking_uid"]], ds, spec)


def _ecg(ds: pydicom.Dataset, top: dict[str, Any] | None) -> None:
    where = location(top) if top else {}
    segments = where.get("seconds", []) if where.get("type") == "segments" else []
    st.plotly_chart(
        render.ecg_figure(ds, segments, t("triage.viewer.ai_segment")),
        key="viewer_ecg",
        config=ZOOM,
    )


def _mammography(opened: Drawn, top: dict[str, Any] | None) -> None:
    show = st.toggle(t("triage.viewer.overlay"), value=True, key="viewer_overlay")
    opacity = st.slider(t("triage.viewer.opacity"), 0.0, 1.0, 0.45, key="viewer_opacity")
    pictures, boxes = {}, {}
    for view, ds in render.mammography_views(opened.datasets).items():
        image = render.windowed(ds)
        pictures[view] = render.blend(image, heat(opened, top, ds) if show else None, opacity)
        found = box_of(top, str(ds.SOPInstanceUID)) if top and show else None
        if found:
            boxes[view] = found
    st.plotly_chart(
        render.mammography_figure(
            pictures, boxes, t("triage.viewer.ai_box"), missing=t("triage.viewer.missing")
        ),
        key="viewer_mg",
        config=ZOOM,
    )


def _instance(opened: Drawn, uid: str, top: dict[str, Any] | None) -> pydicom.Dataset:
    """The instance the reader picks by series and slice, starting where the AI located the
    top finding (else the first series' first instance)."""
    instances = opened.instances
    series = instances["series_instance_uid"].unique(maintain_order=True).to_list()
    located = top["sop_instance_uid"] if top else None
    sops = instances["sop_instance_uid"].to_list()
    first = instances["series_instance_uid"][sops.index(located)] if located in sops else series[0]
    chosen_series = (
        st.selectbox(
            t("triage.viewer.series"),
            series,
            index=series.index(first),
            format_func=lambda s: str(
                instances.filter(pl.col("series_instance_uid") == s)["series_description"][0]
                or s[-12:]
            ),
            key=f"viewer_series_{uid}",
        )
        if len(series) > 1
        else series[0]
    )
    members = [
        i for i, s in enumerate(instances["series_instance_uid"].to_list()) if s == chosen_series
    ]
    start = (
        members.index(sops.index(located))
        if located in sops and sops.index(located) in members
        else 0
    )
    position = (
        st.slider(t("triage.viewer.slice"), 1, len(members), start + 1, key=f"viewer_slice_{uid}")
        if len(members) > 1
        else 1
    )
    return opened.datasets[members[position - 1]]


def _image(opened: Drawn, uid: str, top: dict[str, Any] | None) -> None:
    """One image: on a multi-frame instance its frame control starts at the frame where the AI
    located the top finding (each instance keeps its own), and the overlay is drawn there."""
    ds = _instance(opened, uid, top)
    sop = str(ds.SOPInstanceUID)
    frames = render.frame_count(ds)
    start = min(located_frame(top, sop) or 1, frames)
    frame = (
        st.slider(t("triage.viewer.frame"), 1, frames, start, key=f"viewer_frame_{uid}_{sop}")
        if frames > 1
        else 1
    )
    presets = render.windows(ds, frame - 1)
    a, b, c = st.columns(3)
    window = (
        a.selectbox(
            t("triage.viewer.window"), presets, format_func=window_name, key=f"viewer_window_{uid}"
        )
        if presets
        else None
    )
    show = b.toggle(t("triage.viewer.overlay"), value=True, key="viewer_overlay")
    opacity = c.slider(t("triage.viewer.opacity"), 0.0, 1.0, 0.45, key="viewer_opacity")
    image = render.windowed(ds, frame - 1, window)
    picture = render.blend(image, heat(opened, top, ds, frame) if show else None, opacity)
    box = box_of(top, sop, frame) if top and show else None
    st.plotly_chart(
        render.image_figure(picture, box, t("triage.viewer.ai_box")),
        key="viewer_image",
        config=ZOOM,
    )


@st.fragment
def images(opened: Drawn, uid: str, top: dict[str, Any] | None) -> None:
    """The study drawn as its kind is read: an ECG's leads with the AI's segments, a screening
    mammogram's four views, else one image at a time with its controls; ``top`` is the finding
    whose overlay is shown (the first scored one)."""
    waveforms = [ds for ds in opened.datasets if "WaveformSequence" in ds]
    modalities = set(opened.instances["modality"].drop_nulls().to_list())
    try:
        if waveforms:
            _ecg(waveforms[0], top)
        elif modalities == {"MG"}:
            _mammography(opened, top)
        else:
            _image(opened, uid, top)
    except Exception as error:  # a damaged original must not take the findings away
        st.warning(t("triage.viewer.no_pixels", error=type(error).__name__))
