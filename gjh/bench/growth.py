"""Growth: each stage's time and peak memory against the city's size, from several reports of
``gjh bench`` (one per size), as a plotly figure (written as a PNG with kaleido) and a Markdown
table for docs/performance.md. Pure functions of the reports, apart from writing the image."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

PALETTE = qualitative.Plotly
HEIGHT: Final = 720  # the panels and, below them, the legend's rows


def series(reports: list[dict[str, Any]]) -> dict[str, list[tuple[int, float, float]]]:
    """Each stage's (citizens, seconds, peak MiB) points, sizes ascending, in the stages' order."""
    found: dict[str, list[tuple[int, float, float]]] = {}
    for report in sorted(reports, key=lambda r: int(r["size"]["citizens"])):
        for row in report["stages"]:
            found.setdefault(row["stage"], []).append(
                (int(report["size"]["citizens"]), float(row["seconds"]), row["peak_rss_mib"])
            )
    return found


def figure(reports: list[dict[str, Any]], title: str = "") -> go.Figure:
    """Two panels side by side: time and peak memory of every stage against citizens (log-log,
    so a straight line of slope one is linear growth); ``title`` says where it was measured."""
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("time (s)", "peak memory, all processes (MiB)")
    )
    for i, (stage, points) in enumerate(series(reports).items()):
        sizes = [p[0] for p in points]
        for col, values in ((1, [p[1] for p in points]), (2, [p[2] for p in points])):
            fig.add_trace(
                go.Scatter(
                    x=sizes,
                    y=values,
                    name=stage,
                    legendgroup=stage,
                    showlegend=col == 1,
                    mode="lines+markers",
                    # One colour per stage in both panels, and a marker of its own: a stage is
                    # told apart by its marker too, not by colour alone.
                    line={"color": PALETTE[i % len(PALETTE)]},
                    marker={"symbol": i % 24, "size": 9},
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(type="log", title_text="citizens")
    fig.update_yaxes(type="log")
    # The legend below the panels, in rows: every stage shows however many there are (beside
    # them, fifteen stages ran past the figure's foot).
    fig.update_layout(
        width=1100,
        height=HEIGHT,
        template="plotly_white",
        title_text=title,
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "xanchor": "left", "x": 0},
        margin={"b": 200},
    )
    return fig


def write_png(reports: list[dict[str, Any]], path: Path) -> Path:
    """The growth figure as a PNG (kaleido), titled with the load the runs met."""
    path.parent.mkdir(parents=True, exist_ok=True)
    loaded = any(r["machine"]["loaded"] for r in reports)
    title = "gjh bench growth" + (" (loaded machine: times are upper bounds)" if loaded else "")
    figure(reports, title).write_image(str(path), format="png")
    return path


def markdown(reports: list[dict[str, Any]]) -> str:
    """One line per stage: its time and peak memory at each size."""
    ordered = sorted(reports, key=lambda r: int(r["size"]["citizens"]))
    sizes = [int(r["size"]["citizens"]) for r in ordered]
    head = " | ".join(f"{n:,} citizens" for n in sizes)
    lines = [
        f"| stage | {head} |",
        "| --- |" + " ---: |" * len(sizes),
    ]
    for stage, points in series(reports).items():
        at = {p[0]: p for p in points}
        cells = [f"{at[n][1]:,.1f} s, {at[n][2]:,.0f} MiB" if n in at else "—" for n in sizes]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
