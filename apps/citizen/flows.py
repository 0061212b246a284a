"""The citizen's core flows, in the order the home page offers them: each a page of the app
(its file under ``app_pages/``), its icon and the catalogue key of its title. The router makes
one page of each and the home page one large tile, so every flow is one tap from home.
A new flow is one line here."""

from __future__ import annotations

from typing import Final, NamedTuple


class Flow(NamedTuple):
    """One core flow: ``page`` (relative to the router), ``icon`` (Material), ``title`` (the
    catalogue key of its title, also the tile's words)."""

    page: str
    icon: str
    title: str


FLOWS: Final = (
    Flow("app_pages/timeline.py", ":material/timeline:", "citizen.timeline.title"),
    Flow("app_pages/images.py", ":material/image:", "citizen.images.title"),
    Flow("app_pages/summary.py", ":material/emergency:", "citizen.summary.title"),
    Flow("app_pages/share.py", ":material/share:", "citizen.share.title"),
    Flow("app_pages/medicines.py", ":material/medication:", "citizen.medicines.title"),
    Flow("app_pages/insights.py", ":material/lightbulb:", "citizen.insights.title"),
    Flow("app_pages/measurements.py", ":material/monitor_heart:", "citizen.measurements.title"),
    Flow("app_pages/export.py", ":material/download:", "citizen.export.title"),
    Flow("app_pages/views.py", ":material/visibility:", "citizen.views.title"),
)
