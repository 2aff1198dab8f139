"""Browser helpers: wait for Streamlit to settle, find a plotted point on screen from the plot's axes, read the URL."""

from __future__ import annotations

import urllib.parse

from playwright.sync_api import Locator, Page, expect

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
WAIT_MS = 60_000  # generous: the machine running the suite may be busy with other work


def wait_idle(page: Page) -> None:
    """The script run finished and no placeholder is left."""
    page.wait_for_selector(IDLE, timeout=WAIT_MS)
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=WAIT_MS)


def open_url(page: Page, url: str) -> None:
    page.goto(url)
    wait_idle(page)


def no_exception(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)


def query(page: Page) -> dict[str, str]:
    """The current URL's query parameters (one value each)."""
    return {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query).items()}


# Where a data point of a trace is drawn, relative to the plot's top-left corner, from the axes' own
# data-to-pixel maps (plotly's _fullLayout), so the mouse goes where the browser really drew it.
_POINT_JS = """(gd, [name, want]) => {
  const index = gd.data.findIndex(t => t.name === name);
  if (index < 0) return null;
  const trace = gd._fullData[index], full = trace;  // full data: numbers sent as base64 arrays are decoded there
  const k = Array.from(trace.customdata).findIndex(c => JSON.stringify(c) === JSON.stringify(want));
  if (k < 0) return null;
  const xa = gd._fullLayout[full.xaxis.replace('x', 'xaxis')], ya = gd._fullLayout[full.yaxis.replace('y', 'yaxis')];
  const svg = gd.querySelector('.main-svg').getBoundingClientRect(), box = gd.getBoundingClientRect();
  return {x: svg.left - box.left + xa._offset + xa.d2p(trace.x[k]),
          y: svg.top - box.top + ya._offset + ya.d2p(trace.y[k])};
}"""


def chart(page: Page, key: str) -> Locator:
    """The plotly chart drawn by ``st.plotly_chart(..., key=key)``."""
    return page.locator(f".st-key-{key} .js-plotly-plot")


def customdata(plot: Locator, trace: str) -> list:
    """The ``customdata`` of a named trace, as the browser holds it."""
    return plot.evaluate("(gd, name) => Array.from(gd._fullData.find(t => t.name === name).customdata)", trace)


def click_point(plot: Locator, trace: str, want: object) -> dict[str, float]:
    """Move the mouse onto the point of ``trace`` whose customdata is ``want`` and click it; returns the position."""
    plot.scroll_into_view_if_needed()
    position = plot.evaluate(_POINT_JS, [trace, want])
    assert position is not None, f"no point {want!r} in trace {trace!r}"
    plot.hover(position=position)
    plot.click(position=position)
    return position


# The point of a trace farthest (in pixels) from every other point: clicking it cannot select a neighbour.
_ISOLATED_JS = """(gd, name) => {
  const index = gd.data.findIndex(t => t.name === name);
  const trace = gd._fullData[index], full = trace;
  const xa = gd._fullLayout[full.xaxis.replace('x', 'xaxis')], ya = gd._fullLayout[full.yaxis.replace('y', 'yaxis')];
  const px = Array.from(trace.x, v => xa.d2p(v)), py = Array.from(trace.y, v => ya.d2p(v));
  let best = -1, bestGap = -1;
  for (let i = 0; i < px.length; i++) {
    if (!isFinite(px[i]) || !isFinite(py[i])) continue;
    let gap = Infinity;
    for (let j = 0; j < px.length && gap > bestGap; j++) {
      if (j !== i) gap = Math.min(gap, Math.hypot(px[i] - px[j], py[i] - py[j]));
    }
    if (gap > bestGap) { bestGap = gap; best = i; }
  }
  return Array.from(trace.customdata)[best];
}"""


def isolated_point(plot: Locator, trace: str) -> object:
    """The customdata of the point of ``trace`` drawn farthest from all others."""
    return plot.evaluate(_ISOLATED_JS, trace)
