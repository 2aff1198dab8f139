"""Log text is text on every page: no Markdown, HTML, LaTeX or link in a log is interpreted, and nothing is fetched.

The hostile run's prompt, states, actions, group and trajectory ids (and its run id) hold bold, an image
pointing at a local server that counts requests, a javascript: link, inline LaTeX and an HTML tag.
"""

from __future__ import annotations

import urllib.parse

import pytest
from playwright.sync_api import Page, expect

from .helpers import no_exception, open_url, wait_idle
from .showcase import HOSTILE_RUN, hostile_records, hostile_texts

pytestmark = pytest.mark.e2e


def assert_nothing_rendered(page: Page, port: int) -> None:
    main = page.get_by_test_id("stMain")
    expect(main.locator(f"img[src*='{port}']")).to_have_count(0)
    expect(page.locator("a[href^='javascript']")).to_have_count(0)
    expect(main.locator(".katex, .katex-display, mjx-container")).to_have_count(0)
    expect(main.locator("strong, b").filter(has_text="bold")).to_have_count(0)
    expect(main.locator("b").filter(has_text="b")).to_have_count(0)


def test_every_page_shows_log_text_literally_and_fetches_nothing(page: Page, served_app: str, request_counter) -> None:  # noqa: ANN001
    page.set_viewport_size({"width": 1400, "height": 1000})
    port = request_counter.port
    record = hostile_records(port)[0]
    state = {"run": HOSTILE_RUN, "iteration": "0", "group": record["group"], "traj": record["trajectory"]}
    open_url(page, f"{served_app}/?" + urllib.parse.urlencode(state))
    hrefs = page.get_by_test_id("stSidebarNav").locator("a").evaluate_all("links => links.map(a => a.href)")
    assert len(hrefs) >= 7, hrefs  # Runs, Groups, Group, Trajectory, Compare, Rescore, Ingest (and any newer page)
    visited = []
    for href in hrefs:
        open_url(page, href.split("?")[0] + "?" + urllib.parse.urlencode(state))
        path = urllib.parse.urlparse(page.url).path
        visited.append(path)
        no_exception(page)
        assert_nothing_rendered(page, port)
        if path.endswith("/group") or path.endswith("/trajectory"):
            for text in hostile_texts(port):
                expect(page.get_by_text(text, exact=False).first).to_be_visible()
        elif path.rstrip("/").rsplit("/", 1)[-1] in ("groups", "compare", "rescore"):
            expect(page.get_by_role("combobox", name="Run").first).to_have_value(HOSTILE_RUN)  # the run picker
        assert request_counter.paths == [], f"{path} made the browser fetch {request_counter.paths}"

    # The Runs page plots the run with its id in the legend, as text.
    open_url(page, served_app)
    picker = page.locator(".st-key-runs_plot input")
    picker.fill("hostile")
    picker.press("Enter")
    wait_idle(page)
    expect(page.locator(".js-plotly-plot .legendtext").filter(has_text=HOSTILE_RUN)).to_have_count(1)
    assert_nothing_rendered(page, port)
    assert request_counter.paths == []
    assert {"/group", "/trajectory", "/compare"} <= {"/" + p.rstrip("/").rsplit("/", 1)[-1] for p in visited}
