"""The browser harness itself: a tiny Streamlit app served by `start_app`/`run_app`, driven in
Debian's Chromium. These fail if the server, the browser, the rerun wait, the Korean font, the
offline Plotly bundle, the screenshots or the cleanup break."""

from __future__ import annotations

import os
import socket
import textwrap
import time
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from gjh.bench.app_server import AppStartError, run_app
from gjh.bench.browser import exception_texts, open_app, rerun
from tests.apps.screenshots import shot

pytestmark = [pytest.mark.browser, pytest.mark.integration]

TITLE = "광주 공공보건 하네스 점검"

APP = textwrap.dedent(
    """
    import os
    import subprocess
    import time

    import plotly.graph_objects as go
    import streamlit as st

    st.set_page_config(page_title="하네스", layout="wide")
    st.title("광주 공공보건 하네스 점검")

    pid_file = os.environ.get("HARNESS_CHILD_PID_FILE")
    if pid_file and not os.path.exists(pid_file):
        # A child process, as an app that forks would leave: the harness must stop it too.
        child = subprocess.Popen(["sleep", "600"])
        with open(pid_file, "w") as f:
            f.write(str(child.pid))

    name = st.text_input("이름")
    if st.button("인사하기"):
        st.success(f"안녕하세요, {name}님")
    if st.button("천천히"):
        time.sleep(1.5)
        st.info("천천히 끝났습니다")

    fig = go.Figure(go.Bar(x=["동구", "서구", "남구", "북구", "광산구"], y=[3, 5, 2, 6, 4]))
    fig.update_layout(title="구별 건수")
    st.plotly_chart(fig)
    for i in range(40):
        st.write(f"{i + 1}번째 줄")
    """
)


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on ``port`` (the server, or nothing once gone)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "harness_app" / "streamlit_app.py"
    path.parent.mkdir()
    path.write_text(APP, encoding="utf-8")
    return path


def _fonts_used(page: Page, selector: str) -> dict[str, int]:
    """The platform fonts Chromium drew `selector`'s text with: family -> glyph count."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    cdp.detach()
    return {f["familyName"]: f["glyphCount"] for f in fonts}


def test_korean_title_input_echo_plotly_and_screenshots(
    start_app, page: Page, script: Path, tmp_path: Path
) -> None:
    app = start_app(script)
    foreign: list[str] = []
    page.on(
        "request",
        lambda r: None if r.url.startswith((app.url, "data:", "blob:")) else foreign.append(r.url),
    )
    open_app(page, app.url)

    expect(page.get_by_role("heading", name=TITLE)).to_be_visible()
    fonts = _fonts_used(page, "h1")
    assert any("CJK" in family for family in fonts), f"Korean drawn without a CJK font: {fonts}"

    page.get_by_label("이름").fill("광주 시민")
    with rerun(page):
        page.get_by_role("button", name="인사하기").click()
    # rerun() returned only once the run finished: no waiting assertion needed.
    assert page.get_by_text("안녕하세요, 광주 시민님").is_visible()

    # Plotly is bundled with Streamlit's frontend: it draws with no CDN.
    chart = page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot')
    expect(chart).to_have_count(1)
    expect(chart.locator("svg.main-svg").first).to_be_visible()
    expect(chart.locator("g.point")).to_have_count(5)
    assert foreign == [], f"the page fetched from outside the app: {foreign}"
    assert exception_texts(page) == []

    first = shot(page, "harness", "echo", out_dir=tmp_path / "shots")
    second = shot(page, "harness", "again", out_dir=tmp_path / "shots")
    assert first == tmp_path / "shots" / "harness" / "01-echo.png"
    assert second.name == "02-again.png"
    with Image.open(first) as img:
        assert img.format == "PNG"
        assert img.width == 1280
        # The app is taller than the viewport and scrolls inside stMain: the shot has it all.
        assert img.height > 1500, img.size
        colours = img.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is not None
        assert len(colours) > 50, "a near-blank screenshot"
    assert first.stat().st_size > 20_000
    assert page.viewport_size == {"width": 1280, "height": 900}


def test_rerun_waits_for_a_slow_run_and_times_out_without_one(
    start_app, page: Page, script: Path
) -> None:
    app = start_app(script)
    open_app(page, app.url)

    started = time.monotonic()
    with rerun(page):
        page.get_by_role("button", name="천천히").click()
    assert time.monotonic() - started >= 1.5
    assert page.get_by_text("천천히 끝났습니다").is_visible()

    # No interaction, no rerun: the wait fails instead of passing on the old page.
    with pytest.raises(PlaywrightTimeoutError), rerun(page, timeout_ms=1500):
        pass


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # a zombie waiting for init counts as gone


def test_server_and_its_children_are_gone_after_exit(page: Page, script: Path, tmp_path: Path):
    pid_file = tmp_path / "child.pid"
    with run_app(script, {"HARNESS_CHILD_PID_FILE": str(pid_file)}) as app:
        assert port_is_open(app.port)
        open_app(page, app.url)  # the script runs on a browser's visit: it forks its child
        expect(page.get_by_role("heading", name=TITLE)).to_be_visible()
        child = int(pid_file.read_text())
        assert not _gone(child)
        server = app.process
    page.close()

    assert server.returncode is not None, "the server was not reaped"
    with pytest.raises(ProcessLookupError):
        os.killpg(server.pid, 0)
    deadline = time.monotonic() + 5
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(child), "the app's child outlived the server"
    assert not port_is_open(app.port)
    assert not app.log.exists(), "the temporary log folder was not removed"


def test_start_failure_reports_the_apps_output(tmp_path: Path) -> None:
    with (
        pytest.raises(AppStartError, match=r"(?s)exited with code \d+.*does not exist"),
        run_app(tmp_path / "missing.py", timeout=30),
    ):
        pass
