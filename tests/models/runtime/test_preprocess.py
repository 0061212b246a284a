"""The input chain the models see, on real DICOM files: pydicom's CT, MR, RGB and 12-lead ECG."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

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
