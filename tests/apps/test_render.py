"""The study viewer's rendering on real DICOM files of the synthetic city, one per kind.

Every dataset here is what a clinic uploads: ``synth.imaging.assemble`` renders and encodes an
order exactly as the city's writer does, and pydicom reads the bytes back. The overlay is checked
against the scoring code itself (``preprocess.image_input`` for the geometry,
``scoring._hot_box`` for the listed box, the real ONNX chest model for a heatmap), so the picture
and the finding's ``location`` cannot drift apart unnoticed.
"""

from __future__ import annotations

import base64
import copy
import io
from datetime import date, datetime
from functools import cache

import numpy as np
import plotly.graph_objects as go
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from apps.common import render, theme
from apps.common.render import Window
from models.runtime.preprocess import (
    ImageSpec,
    WaveformSpec,
    image_input,
    resize_padded,
    waveform_input,
)
from models.runtime.registry import registry
from pipelines.score import scoring
from synth.imaging.assemble import assemble
from synth.imaging.orders import ImagingOrder
from synth.imaging.render_ecg import HOLTER, PATCH
from synth.imaging.sites import site
from tests.pipelines.ecg import recorded

SEED = 20240601
CLINIC = "36100066"


def _order(exam: str, institution: str = CLINIC, sex: str = "F") -> ImagingOrder:
    return ImagingOrder(
        accession=f"RV{exam[:10]}",
        exam=exam,
        patient_id=f"600101-{2 if sex == 'F' else 1}234567",
        patient_name="남궁민수",
        sex=sex,
        birth_date=date(1960, 1, 1),
        institution_code=institution,
        institution_name="상무중앙영상의학과의원",
        study_datetime=datetime(2024, 6, 3, 9, 30),
        abnormal=True,
        visit_key="S000000777",
    )


@cache
def _study(exam: str, institution: str = CLINIC) -> tuple[pydicom.Dataset, ...]:
    """The study's instances as pydicom reads the uploaded files (pixels included)."""
    sex = "M" if exam == "PROSTATE_MR" else "F"
    study, _ = assemble(_order(exam, institution, sex), SEED)
    return tuple(pydicom.dcmread(io.BytesIO(o.data)) for o in study.objects)


def _first(exam: str, institution: str = CLINIC) -> pydicom.Dataset:
    return _study(exam, institution)[0]


def _clinic(monochrome1: bool) -> str:
    """An institution code whose CR reader writes MONOCHROME1 (or does not)."""
    codes = (f"361000{n:02d}" for n in range(100))
    return next(c for c in codes if site(SEED, c).cr_monochrome1 == monochrome1)


def _decoded(uri: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri[len(prefix) :]))))


def _by_name(ds: pydicom.Dataset) -> dict[str, Window]:
    return {w.name: w for w in render.windows(ds)}


def _spec(service: str) -> ImageSpec:
    spec = registry()[service].config.image
    assert spec is not None
    return spec


# Windows and pixels -------------------------------------------------------------------------


def test_a_radiograph_opens_in_its_header_window_as_the_model_saw_it() -> None:
    ds = _first("CXR_PA")
    assert ds.Modality == "DX" and ds.PhotometricInterpretation == "MONOCHROME2"
    listed = render.windows(ds)
    assert listed[0] == Window(float(ds.WindowCenter), float(ds.WindowWidth), "header")
    soft = "lung" if ds.get("BodyPartExamined") == "CHEST" else "soft_tissue"
    assert [w.name for w in listed] == ["header", "auto", soft, "bone", "full"]
    shown = render.windowed(ds)
    assert shown.dtype == np.uint8 and shown.shape == (ds.Rows, ds.Columns)
    assert np.array_equal(render.windowed(ds, 0, listed[0]), shown)
    # A 256-pixel square at model size 256 is not resampled: the display is the model's input.
    assert ds.Rows == ds.Columns == 256
    model, _ = image_input(ds, ImageSpec(size=256))
    assert np.abs(shown / 255.0 - model[0, 0]).max() <= 0.5 / 255 + 1e-6
    # Bone shows the dense half in more grey levels than lung does, and the other way round.
    pixels = render.pixels(ds)
    dense = pixels > np.percentile(pixels, 80)
    bone, lung = render.windowed(ds, 0, _by_name(ds)["bone"]), render.windowed(ds, 0, listed[2])
    assert bone[dense].std() > lung[dense].std()


def test_monochrome1_is_inverted_so_dense_stays_bright() -> None:
    """The same radiograph from a CR reader that stores MONOCHROME1 and from one that does not:
    stored values are mirrored, the display (default and every preset) is the same picture."""
    inverted, plain = _first("CXR_AP", _clinic(True)), _first("CXR_AP", _clinic(False))
    assert inverted.PhotometricInterpretation == "MONOCHROME1"
    assert plain.PhotometricInterpretation == "MONOCHROME2"
    top = (1 << int(plain.BitsStored)) - 1
    assert np.array_equal(inverted.pixel_array, top - plain.pixel_array)
    shown = render.windowed(inverted)
    assert np.abs(shown.astype(int) - render.windowed(plain)).max() <= 1
    assert np.abs(shown.astype(int) - (255 - render.windowed(plain))).mean() > 50
    for name in ("header", "auto", "soft_tissue", "bone", "full"):
        a = render.windowed(inverted, 0, _by_name(inverted).get(name))
        b = render.windowed(plain, 0, _by_name(plain).get(name))
        assert np.abs(a.astype(int) - b).max() <= 1, name
    model, _ = image_input(inverted, ImageSpec(size=256))
    assert np.abs(shown / 255.0 - model[0, 0]).max() <= 0.5 / 255 + 1e-6


def test_ct_slices_are_in_hounsfield_units_with_the_standard_presets() -> None:
    series = _study("BRAIN_CT")
    assert len(series) > 1 and all(ds.Modality == "CT" for ds in series)
    ds = series[len(series) // 2]
    hu = render.pixels(ds)
    assert hu.dtype == np.float32
    stored = ds.pixel_array.astype(np.float64)
    np.testing.assert_allclose(hu, stored * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    presets = _by_name(ds)
    assert render.windows(ds)[0].name == "header"
    for name, centre, width in (
        ("brain", 40, 80),
        ("subdural", 75, 200),
        ("soft_tissue", 40, 400),
        ("bone", 500, 2000),
        ("lung", -600, 1500),
    ):
        assert (presets[name].centre, presets[name].width) == (centre, width)
    brain = render.windowed(ds, 0, presets["brain"])
    assert (brain[hu <= 0] == 0).all() and (brain[hu >= 80] == 255).all()
    assert ((hu > 0) & (hu < 80)).any() and 0 < brain[(hu > 0) & (hu < 80)].mean() < 255
    for each in series:  # every instance of the series is one frame the viewer can scroll to
        assert render.frame_count(each) == 1
        assert render.windowed(each).shape == (each.Rows, each.Columns)


def test_an_enhanced_ct_frame_is_shown_in_hounsfield_units_in_its_own_window() -> None:
    """A scanner's enhanced CT keeps rescale and window per frame in its functional groups:
    each frame shows as the same slice stored alone does (HU, its header window first)."""
    from pydicom.filebase import DicomBytesIO

    from tests.multiframe import brain_ct, enhanced_ct, file_bytes

    slices = brain_ct().slices[:3]
    enhanced = pydicom.dcmread(DicomBytesIO(file_bytes(enhanced_ct(slices))))
    for index, stored in enumerate(enhanced.pixel_array):
        alone = next(s for s in slices if np.array_equal(s.pixel_array, stored))
        np.testing.assert_allclose(render.pixels(enhanced, index), render.pixels(alone))
        assert render.windows(enhanced, index)[0] == render.windows(alone)[0]
        assert "brain" in _by_name(enhanced)
        np.testing.assert_array_equal(render.windowed(enhanced, index), render.windowed(alone))


def test_mr_series_get_the_header_window_and_a_wider_one() -> None:
    series = _study("BRAIN_DWI")
    assert len({ds.SeriesInstanceUID for ds in series}) >= 1 and len(series) > 10
    for ds in series[:: max(1, len(series) // 4)]:
        listed = render.windows(ds)
        assert [w.name for w in listed] == ["header", "auto", "wide", "full"]
        auto, wide = listed[1], listed[2]
        assert wide.centre == auto.centre and wide.width == pytest.approx(1.5 * auto.width)
        shown = render.windowed(ds, 0, wide)
        assert shown.dtype == np.uint8 and shown.shape == (ds.Rows, ds.Columns)


def test_a_mammogram_offers_a_dense_window_after_its_header() -> None:
    ds = _first("MAMMO_SCREEN")
    listed = render.windows(ds)
    assert [w.name for w in listed] == ["header", "auto", "dense", "full"]
    assert listed[2].centre > listed[1].centre  # MONOCHROME2: the dense end is the high end


def test_colour_images_are_shown_as_stored_with_no_windows() -> None:
    for exam in ("FUNDUS", "GASTROSCOPY", "COLONOSCOPY"):
        ds = _first(exam)
        assert ds.PhotometricInterpretation == "RGB"
        assert render.windows(ds) == []
        shown = render.windowed(ds, 0, Window(40, 80, "brain"))  # ignored for colour
        assert shown.dtype == np.uint8 and shown.shape == (ds.Rows, ds.Columns, 3)
        assert np.array_equal(shown, ds.pixel_array.reshape(shown.shape))
        assert np.array_equal(render.blend(shown, None, 0.8), shown)


def test_frame_counts() -> None:
    assert render.frame_count(_first("CXR_PA")) == 1
    assert render.frame_count(_first("FUNDUS")) == 1  # NumberOfFrames 1, written
    assert render.frame_count(_first("ECG_12LEAD")) == 0  # a waveform has no pixels
    with pytest.raises(IndexError):
        render.pixels(_first("CXR_PA"), 1)


# The overlay and the model's geometry -------------------------------------------------------


@pytest.mark.parametrize(
    "shape", [(256, 256), (180, 360), (464, 152), (160, 120), (7, 5), (1, 300)]
)
@pytest.mark.parametrize("size", [64, 128])
def test_geometry_is_the_one_resize_padded_records(shape: tuple[int, int], size: int) -> None:
    _, expected = resize_padded(np.zeros(shape, dtype=np.float32), size)
    assert render.geometry(*shape, size) == expected


def _hot_cell(ds: pydicom.Dataset, spec: ImageSpec, at: tuple[float, float]) -> tuple[int, int]:
    """The heatmap cell over the source point ``at`` (fractions of columns and rows)."""
    placed = render.geometry(int(ds.Rows), int(ds.Columns), spec.size)
    x = at[0] * ds.Columns * placed.scale + placed.offset_x
    y = at[1] * ds.Rows * placed.scale + placed.offset_y
    return int(y // (spec.size / 8)), int(x // (spec.size / 8))


@pytest.mark.parametrize(
    ("exam", "service"),
    [("DENTAL_PANO", "dental"), ("LEG_LENGTH", "leg_length"), ("CXR_PA", "chest")],
)
@pytest.mark.parametrize("smooth", [True, False])
def test_a_lone_hot_cell_lands_inside_the_box_scoring_lists(
    exam: str, service: str, smooth: bool
) -> None:
    """Wide (padded above and below), tall (padded left and right) and square images."""
    ds, spec = _first(exam), _spec(service)
    _, (placed,) = image_input(ds, spec)  # the geometry scoring records for this instance
    heatmap = np.zeros((8, 8), dtype=np.float16)
    heatmap[_hot_cell(ds, spec, (0.3, 0.6))] = 1.0
    x0, y0, x1, y1 = scoring._hot_box(heatmap.astype(np.float32), placed, spec.size)
    heat = render.heat_on_source(heatmap, ds, spec, smooth=smooth)
    assert heat.dtype == np.float32 and heat.shape == (ds.Rows, ds.Columns)
    assert heat.min() >= 0.0 and heat.max() == pytest.approx(1.0, abs=0.05)
    rows, cols = np.nonzero(heat >= scoring.HOT)
    assert rows.size > 0
    centres_x, centres_y = cols + 0.5, rows + 0.5
    tolerance = 0.05  # the box is rounded to 0.1 pixel
    assert (centres_x >= x0 - tolerance).all() and (centres_x <= x1 + tolerance).all()
    assert (centres_y >= y0 - tolerance).all() and (centres_y <= y1 + tolerance).all()
    # ... and fills it: the hot pixels reach every side of the box, to within a pixel or two.
    assert cols.min() <= x0 + 1.5 and cols.max() + 1 >= x1 - 1.5
    assert rows.min() <= y0 + 1.5 and rows.max() + 1 >= y1 - 1.5
    peak_row, peak_col = np.unravel_index(int(np.argmax(heat)), heat.shape)
    assert x0 <= peak_col + 0.5 <= x1 and y0 <= peak_row + 0.5 <= y1


def test_a_hot_cell_over_the_padding_lights_nothing_on_the_source() -> None:
    ds, spec = _first("DENTAL_PANO"), _spec("dental")  # 180 x 360 in 128: rows 0-31 padding
    placed = render.geometry(int(ds.Rows), int(ds.Columns), spec.size)
    assert placed.offset_y >= spec.size / 8  # the whole first row of cells is padding
    heatmap = np.zeros((8, 8), dtype=np.float16)
    heatmap[0, 3] = 1.0
    for smooth in (True, False):
        assert render.heat_on_source(heatmap, ds, spec, smooth=smooth).max() == 0.0
    _, y0, _, y1 = scoring._hot_box(heatmap.astype(np.float32), placed, spec.size)
    assert y0 == y1 == 0.0  # scoring's box collapses onto the edge: nothing to show either


def test_the_chest_models_own_heatmap_agrees_with_its_box() -> None:
    """The real ONNX model on the real radiograph, its heatmap stored as scoring stores it."""
    ds, service = _first("CXR_PA"), registry()["chest"]
    spec = _spec("chest")
    arrays, (placed,) = image_input(ds, spec)
    outputs = scoring.Model(service, threads=1).run(arrays, None)
    heatmap = np.asarray(outputs["heatmap"][0], dtype=np.float32)
    buffer = io.BytesIO()
    np.save(buffer, heatmap.astype(np.float16))  # as scoring.finish saves it
    stored = np.load(io.BytesIO(buffer.getvalue()))
    box = scoring._hot_box(heatmap, placed, spec.size)
    assert scoring._hot_box(stored.astype(np.float32), placed, spec.size) == box
    heat = render.heat_on_source(stored, ds, spec, smooth=False)
    rows, cols = np.nonzero(heat >= scoring.HOT)
    x0, y0, x1, y1 = box
    assert cols.min() + 0.5 >= x0 and cols.max() + 0.5 <= x1 + 0.05
    assert rows.min() + 0.5 >= y0 and rows.max() + 0.5 <= y1 + 0.05
    assert cols.min() <= x0 + 1 and cols.max() + 1 >= x1 - 1
    assert rows.min() <= y0 + 1 and rows.max() + 1 >= y1 - 1


def test_a_flat_heatmap_locates_nothing() -> None:
    ds = _first("CXR_PA")
    heat = render.heat_on_source(np.full((8, 8), 0.3, np.float16), ds, _spec("chest"))
    assert heat.shape == (ds.Rows, ds.Columns) and heat.max() == 0.0


# Blending --------------------------------------------------------------------------------------


def _chest_with_heat() -> tuple[np.ndarray, np.ndarray]:
    ds, spec = _first("CXR_PA"), _spec("chest")
    heatmap = np.zeros((8, 8), dtype=np.float16)
    heatmap[_hot_cell(ds, spec, (0.3, 0.4))] = 1.0
    return render.windowed(ds), render.heat_on_source(heatmap, ds, spec, smooth=False)


def test_blend_at_opacity_zero_is_the_image_itself() -> None:
    grey, heat = _chest_with_heat()
    expected = np.repeat(grey[:, :, None], 3, axis=2)
    for out in (render.blend(grey, heat, 0.0), render.blend(grey, None, 1.0)):
        assert out.dtype == np.uint8 and np.array_equal(out, expected)


def test_blend_colours_the_hot_area_and_leaves_the_cold_one() -> None:
    grey, heat = _chest_with_heat()
    full, half = render.blend(grey, heat, 1.0), render.blend(grey, heat, 0.5)
    cold, hot = heat == 0, heat >= 0.99
    assert cold.any() and hot.any()
    assert np.array_equal(full[cold], np.repeat(grey[cold][:, None], 3, axis=1))
    # At full heat and opacity the pixel is viridis' top colour (yellow), whatever lay below.
    top = np.round(render.LUT[255]).astype(int)
    assert np.abs(full[hot].astype(int) - top).max() <= 1
    assert (full[hot].max(axis=1).astype(int) - full[hot].min(axis=1) > 100).all()  # in colour
    # Half opacity lies between the image and the colour.
    base = grey[hot].astype(int)[:, None]
    assert (np.abs(half[hot].astype(int) - (base + top) / 2) <= 1.5).all()


# Figures ---------------------------------------------------------------------------------------


def test_image_figure_sends_a_png_and_outlines_the_box() -> None:
    grey, heat = _chest_with_heat()
    rgb = render.blend(grey, heat, 0.6)
    box = (40.5, 60.0, 90.2, 120.7)
    figure = render.image_figure(rgb, box, "AI 의심 부위 / AI finding")
    go.Figure(figure.to_dict())  # plotly's own validation of everything we built
    (trace,) = figure.data
    assert trace.type == "image" and trace.z is None
    assert np.array_equal(_decoded(trace.source), rgb)
    assert (trace.x0, trace.y0, trace.dx, trace.dy) == (0.5, 0.5, 1, 1)  # pixel c on c + 0.5
    rects = [s for s in figure.layout.shapes if s.type == "rect"]
    assert len(rects) == 2 and {s.line.dash for s in rects} == {"dash", None}
    for shape in rects:
        assert (shape.x0, shape.y0, shape.x1, shape.y1) == box
        assert (shape.xref, shape.yref) == ("x", "y")
    (note,) = figure.layout.annotations
    assert note.text == "AI 의심 부위 / AI finding" and (note.x, note.y) == (box[0], box[1])
    layout = figure.layout
    assert list(layout.yaxis.range) == [rgb.shape[0], 0]  # rows run down, as in the image
    assert list(layout.xaxis.range) == [0, rgb.shape[1]]
    assert layout.yaxis.scaleanchor == "x" and layout.yaxis.scaleratio == 1
    assert layout.xaxis.visible is False and layout.yaxis.visible is False
    assert not layout.xaxis.fixedrange and not layout.yaxis.fixedrange  # zoom and pan
    assert layout.template.layout.font.family == theme.FONT


def test_image_figure_without_a_box_and_a_grey_image() -> None:
    grey, _ = _chest_with_heat()
    figure = render.image_figure(grey, None, "unused")
    assert np.array_equal(_decoded(figure.data[0].source), grey)
    assert not figure.layout.shapes and not figure.layout.annotations


def test_a_large_image_is_reduced_for_the_browser_in_source_coordinates() -> None:
    rows, columns = 3000, 2001
    rgb = np.zeros((rows, columns, 3), dtype=np.uint8)
    rgb[:, 1000:] = 200
    box = (1500.0, 2000.0, 1800.0, 2600.0)
    figure = render.image_figure(rgb, box, "AI", max_side=1024)
    (trace,) = figure.data
    sent = _decoded(trace.source)
    assert sent.shape == (1000, 667, 3)  # a block of 3 x 3 source pixels each
    assert (trace.x0, trace.dx) == (1.5, 3)
    assert list(figure.layout.xaxis.range) == [0, columns]
    assert figure.layout.shapes[0].x0 == box[0]  # the box stays in source pixels
    assert (sent[:, :333] == 0).all() and (sent[:, 334:] == 200).all()


def _leads_and_axes(figure: go.Figure) -> list[tuple[str, str]]:
    return [(t.name, t.xaxis) for t in figure.data]


def test_ecg_figure_draws_twelve_leads_in_millivolts_with_the_segments() -> None:
    ds = _first("ECG_12LEAD")
    # Scoring lists the map's cells one by one; the figure joins neighbours into stretches.
    contributions = np.zeros(10, dtype=np.float32)
    contributions[[2, 3, 7]] = 1.0
    segments = scoring._segments(contributions, 10.0)
    assert segments == [[2.0, 3.0], [3.0, 4.0], [7.0, 8.0]]
    figure = render.ecg_figure(ds, segments, "AI 기여 구간 / AI contribution")
    go.Figure(figure.to_dict())
    assert len(figure.data) == 12 and {t.type for t in figure.data} == {"scatter"}
    names = [t.name for t in figure.data]
    assert names == ["I", "II", "III", "aVR", "aVL", "aVF"] + [f"V{i}" for i in range(1, 7)]
    # The values are the model's input chain's (mV), on the file's own time base.
    rate = float(ds.WaveformSequence[0].SamplingFrequency)
    seconds = int(ds.WaveformSequence[0].NumberOfWaveformSamples) / rate
    model = waveform_input(ds, WaveformSpec(rate_hz=rate, seconds=seconds, leads=12))
    for k, trace in enumerate(figure.data):
        assert trace.x0 == 0 and trace.dx == pytest.approx(1 / rate)
        np.testing.assert_allclose(np.asarray(trace.y), model[k], atol=1e-4)
    assert 0.3 < float(np.ptp(model[1])) < 6  # an ECG in mV, not in uV
    # Limb leads share the left column's time axis, chest leads the right one's.
    layout = figure.layout
    for trace in figure.data[:6]:
        axis = layout["xaxis" + trace.xaxis[1:]]
        assert axis.matches == "x6" or trace.xaxis == "x6"
        assert axis.domain[1] < 0.5
    for trace in figure.data[6:]:
        axis = layout["xaxis" + trace.xaxis[1:]]
        assert axis.matches == "x12" or trace.xaxis == "x12"
        assert axis.domain[0] > 0.5
    # One shaded stretch per merged segment in each column, each with a bracket.
    rects = [s for s in layout.shapes if s.type == "rect"]
    brackets = [s for s in layout.shapes if s.type == "path"]
    stretches = [(2.0, 4.0), (7.0, 8.0)]
    assert sorted((s.xref, s.x0, s.x1) for s in rects) == sorted(
        (xref, a, b) for xref in ("x12", "x6") for a, b in stretches
    )
    assert all(s.line.dash == "dot" and s.yref == "paper" for s in rects)
    assert len(brackets) == len(rects)
    labels = [a for a in layout.annotations if a.text == "AI 기여 구간 / AI contribution"]
    assert sorted(a.xref for a in labels) == ["x12", "x6"] and all(a.x == 2.0 for a in labels)


def test_ecg_figure_reads_pydicoms_real_world_ecg() -> None:
    """A cart's file (1000 Hz, two multiplex groups) rather than the city's."""
    path = get_testdata_file("waveform_ecg.dcm")
    assert path is not None
    figure = render.ecg_figure(pydicom.dcmread(path), [], "AI")
    assert len(figure.data) == 12 and figure.data[3].name == "aVR"
    assert figure.data[0].dx == pytest.approx(1 / 1000)
    assert not figure.layout.shapes


def test_ecg_figure_opens_a_30_minute_holter_at_its_worst_window() -> None:
    """Issue 21: 2 leads in one column, only the 10 s around the first listed (worst) segment,
    on the recording's own time axis."""
    data, _ = recorded(HOLTER, seconds=1800)
    ds = pydicom.dcmread(io.BytesIO(data))
    segments = [[1083.0, 1084.0], [1084.0, 1085.0], [412.0, 413.0]]  # worst window's first
    figure = render.ecg_figure(ds, segments, "AI")
    assert [t.name for t in figure.data] == ["MLII", "V5"]
    for trace in figure.data:
        assert trace.x0 == 1080.0 and len(trace.y) == 3600  # 10 s at 360 Hz
    layout = figure.layout
    assert list(layout.xaxis.range) == [1080.0, 1090.0]
    assert layout.xaxis.domain[0] == 0 and layout.xaxis.domain[1] == 1  # one column
    rects = [(s.x0, s.x1) for s in layout.shapes if s.type == "rect"]
    assert rects == [(1083.0, 1085.0)]  # the stretch in view; 412-413 s is off screen
    assert layout.height < 760


def test_ecg_figure_draws_a_single_lead_patch() -> None:
    data, _ = recorded(PATCH, seconds=10)
    figure = render.ecg_figure(pydicom.dcmread(io.BytesIO(data)), [[2.0, 3.0]], "AI")
    assert [t.name for t in figure.data] == ["II"] and figure.data[0].dx == pytest.approx(1 / 250)
    assert list(figure.layout.xaxis.range) == [0.0, 10.0]


def test_mammography_views_are_found_by_view_and_side() -> None:
    study = _study("MAMMO_SCREEN")
    views = render.mammography_views(study)
    assert set(views) == {("CC", "R"), ("CC", "L"), ("MLO", "R"), ("MLO", "L")}
    for (view, side), ds in views.items():
        assert (ds.ViewPosition, ds.ImageLaterality) == (view, side)
    # Without ViewPosition the SNOMED view code says it; FOR PROCESSING copies are left out.
    coded = copy.deepcopy(views[("MLO", "L")])
    del coded.ViewPosition
    raw = copy.deepcopy(views[("CC", "R")])
    raw.PresentationIntentType = "FOR PROCESSING"
    again = render.mammography_views([raw, coded])
    assert list(again) == [("MLO", "L")] and again[("MLO", "L")] is coded


def _panels(figure: go.Figure) -> dict[str, tuple[float, float]]:
    """Subplot title -> the centre of the panel under it (paper coordinates)."""
    return {a.text: (a.x, a.y) for a in figure.layout.annotations if a.xref == "paper" and a.text}


def test_mammography_figure_hangs_four_views_right_then_left() -> None:
    views = render.mammography_views(_study("MAMMO_SCREEN"))
    images = {key: render.windowed(ds) for key, ds in views.items()}
    box = (20.0, 30.0, 60.0, 80.0)
    figure = render.mammography_figure(images, {("MLO", "L"): box}, "AI")
    go.Figure(figure.to_dict())
    titles = _panels(figure)
    assert set(titles) == {"R CC", "L CC", "R MLO", "L MLO"}
    assert titles["R CC"][0] < titles["L CC"][0] and titles["R CC"][1] == titles["L CC"][1]
    assert titles["R MLO"][0] < titles["L MLO"][0] and titles["R MLO"][1] < titles["R CC"][1]
    assert titles["R CC"][0] == titles["R MLO"][0]
    layout = figure.layout
    assert len(figure.data) == 4
    for trace in figure.data:  # each image sits under its own title
        x_domain = layout["xaxis" + trace.xaxis[1:]].domain
        y_domain = layout["yaxis" + trace.yaxis[1:]].domain
        title = next(
            t
            for t, (x, y) in titles.items()
            if x_domain[0] < x < x_domain[1] and y == pytest.approx(y_domain[1])
        )
        side, view = title.split()
        assert np.array_equal(_decoded(trace.source), images[(view, side)])
    (l_mlo,) = [t for t in figure.data if np.array_equal(_decoded(t.source), images["MLO", "L"])]
    rects = [s for s in layout.shapes if s.type == "rect"]
    assert len(rects) == 2
    assert all((s.xref, s.yref) == (l_mlo.xaxis, l_mlo.yaxis) for s in rects)
    assert all((s.x0, s.y0, s.x1, s.y1) == box for s in rects)


def test_a_missing_view_is_an_empty_panel_that_says_so() -> None:
    views = render.mammography_views(_study("MAMMO_SCREEN"))
    images = {key: render.windowed(ds) for key, ds in views.items() if key != ("MLO", "L")}
    figure = render.mammography_figure(images, None, "AI")
    assert len(figure.data) == 3
    (note,) = [a for a in figure.layout.annotations if a.text == "없음 / missing"]
    assert note.xref not in {t.xaxis for t in figure.data}
    x_domain = figure.layout["xaxis" + note.xref[1:]].domain
    y_domain = figure.layout["yaxis" + note.yref[1:]].domain
    assert x_domain[0] > 0.5 and y_domain[1] < 0.5  # bottom right: L MLO
    other = render.mammography_figure(images, None, "AI", missing="영상 없음")
    assert any(a.text == "영상 없음" for a in other.layout.annotations)
