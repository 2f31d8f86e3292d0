"""Pages opened in a real headless Chromium, with nothing allowed to leave the machine.

For any test that shows a page (the HTML reports, the live page):

    from tests.browser import offline_page

    def test_the_page_draws(tmp_path: Path) -> None:
        with offline_page(tmp_path) as page:      # skips, with the reason, without Chromium
            page.open(tmp_path / "index.html")    # a file, or http://127.0.0.1:PORT/...
            page.wait_for_plots(["equity"])       # plotly divs drawn (their SVG exists)
            traces = page.plot_traces("equity")   # [{name, type, x, y}, ...] as drawn
            page.screenshot("page.png")           # under tmp_path
        # on leaving: fails if any request left the machine or the page threw an error

It drives the system's Chromium (`chromium`, `chromium-browser`, or $MICRO_CHROMIUM) through
playwright, never a browser playwright downloads; `.ci/run` installs the system package when it
is missing. Every request the page makes is intercepted: file:, data:, blob: and the loopback
(127.0.0.1, localhost, [::1]) go through, anything else is refused and recorded in `left`, and
`offline_page` fails the test on leaving when `left` or the page's own JavaScript errors are not
empty (`check=False` to inspect them yourself).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
LOCAL_SCHEMES = ("file", "data", "blob", "about")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
TIMEOUT_MS = 30_000


def chromium_path() -> str | None:
    """The system's Chromium: $MICRO_CHROMIUM, else the first of `CHROMIUM_NAMES` on PATH."""
    given = os.environ.get("MICRO_CHROMIUM")
    if given:
        return given if Path(given).is_file() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def skip_reason() -> str | None:
    """Why no browser test can run here (None: they can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (make installs the test extras)"
    if chromium_path() is None:
        return (
            "no system Chromium (apt-get install chromium, as .ci/run does, or set "
            "MICRO_CHROMIUM to its path)"
        )
    return None


def is_local(url: str) -> bool:
    """Whether a request to `url` stays on this machine."""
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or (parts.hostname or "") in LOOPBACK


class OfflinePage:
    """A playwright page whose requests must stay on the machine (see the module docstring)."""

    def __init__(self, page: Any, folder: Path) -> None:
        self.page = page
        self.folder = folder
        self.requests: list[str] = []  # every URL asked for
        self.left: list[str] = []  # URLs refused because they would leave the machine
        self.errors: list[str] = []  # the page's uncaught errors and console errors
        page.set_default_timeout(TIMEOUT_MS)
        page.route("**/*", self._route)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: self.errors.append(f"console: {msg.text}") if msg.type == "error" else None,
        )

    def _route(self, route: Any) -> None:
        url = route.request.url
        self.requests.append(url)
        if is_local(url):
            route.continue_()
        else:
            self.left.append(url)
            route.abort("blockedbyclient")

    def open(self, target: Path | str) -> None:
        """Load a file (path) or a URL and wait until it and its resources have loaded."""
        url = Path(target).resolve().as_uri() if isinstance(target, Path) else target
        self.page.goto(url, wait_until="load")

    def wait_for_plots(self, div_ids: list[str]) -> None:
        """Wait until plotly has drawn every div of `div_ids` (its layout and SVG exist)."""
        self.page.wait_for_function(
            """ids => ids.every(id => {
                const gd = document.getElementById(id);
                return gd && gd._fullLayout && gd.querySelector('.main-svg');
            })""",
            arg=div_ids,
        )

    def plot_ids(self) -> list[str]:
        """The ids of every plotly chart on the page, in page order."""
        ids: list[str] = self.page.evaluate(
            "() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => d.id)"
        )
        return ids

    def plot_traces(self, div_id: str) -> list[dict[str, Any]]:
        """The traces plotly drew in `div_id`: name, type, and x/y as plain lists."""
        traces: list[dict[str, Any]] = self.page.evaluate(
            """id => document.getElementById(id)._fullData.map(t => ({
                name: t.name, type: t.type,
                x: t.x ? Array.from(t.x) : [], y: t.y ? Array.from(t.y) : [],
                hovertext: t.hovertext ? Array.from([].concat(t.hovertext)) : [],
            }))""",
            div_id,
        )
        return traces

    def drawn_markers(self, div_id: str, trace_name: str) -> int:
        """Marker symbols in the SVG of the scatter trace `trace_name` in `div_id` (rendered,
        not just data); one subplot charts only."""
        count: int = self.page.evaluate(
            """([id, name]) => {
                const gd = document.getElementById(id);
                const scatter = gd._fullData.filter(t => t.type === 'scatter' && t.visible);
                const k = scatter.findIndex(t => t.name === name);
                if (k < 0) return -1;
                const layer = gd.querySelectorAll('.scatterlayer .trace')[k];
                return layer ? layer.querySelectorAll('path.point').length : -1;
            }""",
            [div_id, trace_name],
        )
        return count

    def screenshot(self, name: str) -> Path:
        """A full-page PNG under the test's folder; its path."""
        path = self.folder / name
        self.page.screenshot(path=str(path), full_page=True)
        return path


@contextmanager
def offline_page(
    folder: Path, width: int = 1280, height: int = 900, check: bool = True
) -> Iterator[OfflinePage]:
    """An `OfflinePage` in the system's headless Chromium; skips the test (with the reason)
    where there is none. With `check`, fails on leaving if a request left the machine or the
    page threw an error."""
    reason = skip_reason()
    if reason is not None:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            context = browser.new_context(viewport={"width": width, "height": height})
            offline = OfflinePage(context.new_page(), folder)
            yield offline
        finally:
            browser.close()
    if check:
        assert not offline.left, f"requests left the machine: {offline.left}"
        assert not offline.errors, f"the page reported errors: {offline.errors}"
