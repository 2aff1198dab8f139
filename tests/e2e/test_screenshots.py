"""The README's pictures, taken by this suite's browser so they stay current: a 64-rollout Group heatmap and a
40-step Trajectory with the token view. Also checks the token view's hover values in the browser."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from .helpers import chart, open_url
from .showcase import SHOWCASE_GROUP, SHOWCASE_RUN, showcase_records

pytestmark = pytest.mark.e2e
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
MAX_BYTES = 400_000


def _same_picture(old: bytes, new: bytes) -> bool:
    """Whether two screenshots show the same thing: same size, and under 0.05 % of pixels clearly different."""
    a, b = (np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=float) for data in (old, new))
    return a.shape == b.shape and float((np.abs(a - b) > 40).mean()) < 0.0005


def _save(locator, name: str) -> Path:  # noqa: ANN001 - a playwright Locator
    """Write the picture for the README, unless the committed one already shows the same (keeps checkouts clean)."""
    DOCS.mkdir(parents=True, exist_ok=True)
    path = DOCS / name
    picture = locator.screenshot(animations="disabled")
    assert 10_000 < len(picture) < MAX_BYTES, (name, len(picture))
    if not (path.exists() and _same_picture(path.read_bytes(), picture)):
        path.write_bytes(picture)
    return path


def test_group_heatmap_of_64_rollouts(page: Page, served_app: str) -> None:
    page.set_viewport_size({"width": 1200, "height": 1000})
    open_url(page, f"{served_app}/group?run={SHOWCASE_RUN}&iteration=0&group={SHOWCASE_GROUP}")
    plot = chart(page, "group_heatmap")
    expect(plot.locator(".legendtext").filter(has_text="first error")).to_have_count(1)
    labels = plot.evaluate("gd => gd._fullLayout.yaxis.ticktext.length")
    assert labels == 64
    # Plotly fits the figure to its container after the first draw: wait until it has.
    page.wait_for_function(
        "el => { const svg = el.querySelector('.main-svg');"
        " return svg && Math.abs(svg.getBoundingClientRect().width - el.getBoundingClientRect().width) < 2; }",
        arg=plot.element_handle(),
        timeout=30_000,
    )
    _save(page.locator(".st-key-group_heatmap"), "group-heatmap-64.png")


def test_trajectory_of_40_steps_with_the_token_view(page: Page, served_app: str) -> None:
    page.set_viewport_size({"width": 1200, "height": 1000})
    record = showcase_records()[7]
    step = 12
    open_url(page, f"{served_app}/trajectory?run={SHOWCASE_RUN}&traj={record['trajectory']}&step={step}")
    expect(page.locator(".cs-steps details")).to_have_count(40)
    # Each token's hover (its title) gives the logged log-prob of that token.
    tokens = page.locator(f"#cs-step-{step} .cs-tokens .cs-tok")
    logged = record["steps"][step]
    expect(tokens).to_have_count(len(logged["tokens"]))
    for i, (text, logprob) in enumerate(zip(logged["tokens"], logged["token_logprobs"], strict=True)):
        title = tokens.nth(i).get_attribute("title")
        assert title.startswith(repr(text)) and float(re.search(r"log-prob (\S+)$", title).group(1)) == pytest.approx(
            logprob, abs=1e-3
        )
    tokens.last.hover()
    expect(page.locator(".cs-legend")).to_contain_text("log-prob")
    page.set_viewport_size({"width": 1200, "height": 2400})  # the whole list on screen: nothing left unpainted
    legend_and_steps = page.locator("[data-testid='stVerticalBlock']").filter(has=page.locator(".cs-steps")).last
    _save(legend_and_steps, "trajectory-tokens-40.png")
