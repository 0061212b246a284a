"""Drawing a study for a viewer: DICOM pixels and waveforms plus the AI overlay, to plotly.

Shared by every app that shows images (the clinician's viewer today, the citizen's own images
next). Numpy and plotly only (no Streamlit, no lakehouse reads), so a page calls these with
datasets it has already read and stays fast and testable. User-facing words come in as arguments
from the caller's message catalogue; only view codes ("R CC") are written here.

Display chain (greyscale), one module per step:

1. ``pixels``: one frame with the modality LUT applied (Rescale Slope / Intercept: CT in HU),
   the window presets (``windows``) and the windowed image (``windowed``).
2. ``overlay``: the AI heatmap on the source pixels (``heat_on_source``) and blended in viridis
   over the image (``blend``).
3. ``figure``: the image as a PNG (``png``) in a plotly figure with the AI's box
   (``image_figure``); ``mammography`` hangs four views in a 2 x 2 grid, ``ecg`` draws the
   leads with the AI's segments.

API (imported from this package):
    Window(centre, width, name)
    windows(ds, frame=0) -> list[Window]
    frame_count(ds) -> int
    pixels(ds, frame=0) -> ndarray      # H x W float32 (modality LUT), or H x W x 3 uint8
    windowed(ds, frame=0, window=None) -> ndarray   # H x W uint8, or H x W x 3 uint8 (colour)
    geometry(rows, columns, height, width) -> Geometry
    heat_on_source(heatmap, ds, spec, smooth=True) -> ndarray   # H x W float32 in 0..1
    blend(image, heat, opacity) -> ndarray                      # H x W x 3 uint8
    png_uri(image) -> str
    image_figure(rgb, box, label, height=640, max_side=2048) -> go.Figure
    merged(segments) -> list[tuple[float, float]]
    ecg_figure(ds, segments, label, height=760, leads=12) -> go.Figure
    mammography_views(datasets) -> dict[tuple[str, str], Dataset]   # (view, laterality)
    mammography_figure(views, boxes, label, missing="없음 / missing", height=760,
                       max_side=1024) -> go.Figure
"""

from apps.common.render.ecg import ecg_figure, merged
from apps.common.render.figure import image_figure
from apps.common.render.mammography import mammography_figure, mammography_views
from apps.common.render.overlay import LUT, blend, geometry, heat_on_source
from apps.common.render.pixels import Window, frame_count, pixels, windowed, windows
from apps.common.render.png import png_uri

__all__ = [
    "LUT",
    "Window",
    "blend",
    "ecg_figure",
    "frame_count",
    "geometry",
    "heat_on_source",
    "image_figure",
    "mammography_figure",
    "mammography_views",
    "merged",
    "pixels",
    "png_uri",
    "windowed",
    "windows",
]
