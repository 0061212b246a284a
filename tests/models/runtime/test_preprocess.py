"""The input chain the models see, on real DICOM files: pydicom's CT, MR, RGB and 12-lead ECG."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from apps.common import render
from models.runtime.preprocess import (
    ImageSpec,
    InputError,
    WaveformSpec,
    image_input,
    resize_padded,
    waveform_input,
    window_linear,
)


def _file(name: str) -> pydicom.Dataset:
    path = get_testdata_file(name)
    assert path is not None, name
    return pydicom.dcmread(path)


def test_windowing_matches_a_hand_computed_ct_case() -> None:
    """CT_small stores HU + 1024 (RescaleIntercept -1024). A brain window, centre 40 and width
    80, maps HU by PS3.3 C.11.2.1.2.1: y = (x - 39.5) / 79 + 0.5, clipped to 0..1."""
    ds = _file("CT_small.dcm")
    assert float(ds.RescaleIntercept) == -1024
    stored = np.array([[1024, 1064], [1104, 1000]], dtype=np.int16)  # HU 0, 40, 80, -24
    ds.Rows, ds.Columns = stored.shape
    ds.PixelData = stored.tobytes()
    ds.WindowCenter, ds.WindowWidth = 40, 80
    arrays, (geometry,) = image_input(ds, ImageSpec(size=2))
    expected = np.array([[0.0, (40 - 39.5) / 79 + 0.5], [1.0, 0.0]], dtype=np.float32)
    assert arrays.shape == (1, 1, 2, 2)
    np.testing.assert_allclose(arrays[0, 0], expected, atol=1e-6)
    assert geometry.scale == 1.0
    assert window_linear(np.array([39.5]), 40, 80)[0] == pytest.approx(0.5)


def test_a_monochrome1_image_is_inverted() -> None:
    """MONOCHROME1 shows low values bright; the model always sees higher as brighter."""
    ds = _file("MR_small.dcm")
    normal, _ = image_input(ds, ImageSpec(size=32))
    ds.PhotometricInterpretation = "MONOCHROME1"
    inverted, _ = image_input(ds, ImageSpec(size=32))
    np.testing.assert_allclose(inverted[0, 0], 1.0 - normal[0, 0], atol=1e-6)
    assert normal[0, 0].std() > 0.05  # a real image, not a blank one


def test_resize_keeps_the_aspect_and_maps_back_to_source_pixels() -> None:
    image = np.zeros((100, 50), dtype=np.float32)
    image[40:60, 10:20] = 1.0
    square, geometry = resize_padded(image, 20)
    assert square.shape == (20, 20)
    assert square[:, :5].max() == 0 and square[:, 15:].max() == 0  # padding either side
    assert square.sum() == pytest.approx(image.sum() * (20 / 100) ** 2, rel=1e-5)  # area kept
    assert geometry.to_source(5 + 2, 8) == pytest.approx((10, 40))


def test_colour_images_are_scaled_and_channels_first() -> None:
    ds = _file("SC_rgb_dcmtk_+eb+cr.dcm")  # RLE-compressed RGB, decoded by pydicom
    arrays, _ = image_input(ds, ImageSpec(size=16, channels=3))
    assert arrays.shape == (1, 3, 16, 16)
    assert arrays.min() >= 0 and arrays.max() <= 1 and arrays.max() > 0.5
    with pytest.raises(InputError, match="greyscale"):
        image_input(ds, ImageSpec(size=16, channels=1))


def test_a_ybr_jpeg_is_converted_to_rgb_once() -> None:
    """pydicom returns YBR JPEG pixels as RGB already; a second conversion would tint them."""
    ds = _file("SC_rgb_jpeg_dcmtk.dcm")
    assert ds.PhotometricInterpretation.startswith("YBR")
    arrays, _ = image_input(ds, ImageSpec(size=100, channels=3))
    red = arrays[0, :, 2, 50]  # the test image's top band is pure red
    assert red[0] > 0.9 and red[1] < 0.1 and red[2] < 0.1, red


def test_the_ecg_from_pydicoms_test_files_becomes_model_input() -> None:
    ds = _file("waveform_ecg.dcm")
    signal = waveform_input(ds, WaveformSpec(rate_hz=250, seconds=10, leads=12))
    assert signal.shape == (12, 2500)
    assert np.isfinite(signal).all()
    amplitude = np.percentile(np.abs(signal), 99, axis=1)
    assert ((amplitude > 0.05) & (amplitude < 10)).all()  # millivolts, every lead recorded


def test_objects_that_cannot_be_model_input_say_why() -> None:
    ds = _file("CT_small.dcm")
    del ds.PixelData
    with pytest.raises(InputError, match="no pixel data"):
        image_input(ds, ImageSpec())
    with pytest.raises(InputError, match="no waveform"):
        waveform_input(_file("CT_small.dcm"), WaveformSpec())
    broken = _file("CT_small.dcm")
    broken.PixelData = broken.PixelData[:100]
    with pytest.raises(InputError, match="cannot be decoded"):
        image_input(broken, ImageSpec())


# The declared input contract (a vendor's model, models/README.md) -----------------------------


def test_a_vendor_contract_shapes_the_same_pixels_into_its_own_tensor() -> None:
    """Grey replicated to 3 channels in BGR order, 0..255, per-channel mean/std, channels last:
    the reference chain's pixels, transformed exactly so."""
    ds = _file("MR_small.dcm")
    (reference,), _ = image_input(ds, ImageSpec(size=32))
    mean, std = (10.0, 20.0, 30.0), (2.0, 4.0, 8.0)
    spec = ImageSpec(
        size=32, channels=3, reads="grey", order="BGR", layout="NHWC",
        intensity=(0, 255), mean=mean, std=std,
    )  # fmt: skip
    (vendor,), _ = image_input(ds, spec)
    assert vendor.shape == (32, 32, 3) and vendor.dtype == np.float32
    for c in range(3):
        np.testing.assert_allclose(
            vendor[:, :, c], (reference[0] * 255 - mean[c]) / std[c], rtol=1e-5
        )
    (as_bytes,), _ = image_input(ds, ImageSpec(size=32, intensity=(0, 255), dtype="uint8"))
    assert as_bytes.dtype == np.uint8
    np.testing.assert_array_equal(as_bytes, np.rint(reference * 255).astype(np.uint8))
    colour = _file("SC_rgb_dcmtk_+eb+cr.dcm")
    (rgb,), _ = image_input(colour, ImageSpec(size=16, channels=3))
    (bgr,), _ = image_input(colour, ImageSpec(size=16, channels=3, order="BGR"))
    np.testing.assert_array_equal(bgr, rgb[::-1])


def test_a_non_square_input_keeps_the_aspect_and_maps_back() -> None:
    image = np.zeros((100, 50), dtype=np.float32)
    image[40:60, 10:20] = 1.0
    placed, geometry = resize_padded(image, 96, 128)
    assert placed.shape == (96, 128)
    assert geometry.scale == pytest.approx(0.96)  # the height binds: 100 rows into 96
    assert (geometry.offset_x, geometry.offset_y) == (40.0, 0.0)  # 48 columns centred in 128
    assert placed[:, :40].max() == 0 and placed[:, 88:].max() == 0
    assert placed.sum() == pytest.approx(image.sum() * 0.96**2, rel=1e-5)
    assert geometry.to_source(40 + 10 * 0.96, 40 * 0.96) == pytest.approx((10, 40))
    assert render.geometry(100, 50, 96, 128) == geometry  # the viewer's overlay places it so
    ds = _file("MR_small.dcm")
    arrays, (placed_mr,) = image_input(ds, ImageSpec(height=48, width=64))
    assert arrays.shape == (1, 1, 48, 64) and placed_mr.offset_x == 8.0


def test_a_fixed_window_and_a_percentile_range_replace_the_header() -> None:
    """A fixed window is in the modality LUT's units (HU for CT), whatever the header says."""
    ds = _file("CT_small.dcm")
    stored = np.array([[1024, 1064], [1104, 1000]], dtype=np.int16)  # HU 0, 40, 80, -24
    ds.Rows, ds.Columns = stored.shape
    ds.PixelData = stored.tobytes()
    ds.WindowCenter, ds.WindowWidth = 400, 2000
    fixed, _ = image_input(ds, ImageSpec(size=2, window="fixed", window_centre=40, window_width=80))
    expected = np.array([[0.0, (40 - 39.5) / 79 + 0.5], [1.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(fixed[0, 0], expected, atol=1e-6)
    full, _ = image_input(ds, ImageSpec(size=2, window="range", percentiles=(0, 100)))
    np.testing.assert_allclose(full[0, 0], [[24 / 104, 64 / 104], [1.0, 0.0]], atol=1e-6)


def test_an_enhanced_ct_frame_is_prepared_as_its_single_frame_slice() -> None:
    """A scanner's enhanced CT keeps rescale and window in functional groups: each frame must
    reach the model exactly as the same slice stored on its own does (before, frames stayed in
    stored values and were windowed by their own range, and normal slices scored as abnormal)."""
    from pydicom.filebase import DicomBytesIO

    from tests.multiframe import brain_ct, enhanced_ct, file_bytes

    slices = brain_ct().slices[:4]
    enhanced = pydicom.dcmread(DicomBytesIO(file_bytes(enhanced_ct(slices))))
    assert "RescaleIntercept" not in enhanced  # only in the functional groups
    spec = ImageSpec(size=64)
    frames_in, _ = image_input(enhanced, spec)
    # highdicom orders the frames by position: pair each frame with its slice by its pixels.
    order = [
        next(s for s in slices if np.array_equal(s.pixel_array, stored))
        for stored in enhanced.pixel_array
    ]
    alone = np.concatenate([image_input(s, spec)[0] for s in order])
    np.testing.assert_allclose(frames_in, alone, atol=1e-6)
