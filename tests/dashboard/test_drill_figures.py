"""Pure builders of the drill-in views: heatmap grid, limits and marks; the compact step list; escaping; defaults."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from dashboard.drill import clicked_step
from dashboard.figures.heatmap import CLICK_LAYER, NEUTRAL, heatmap_figure, heatmap_grid, robust_limit, row_height
from dashboard.figures.steps_html import credit_colour, first_line, scroll_script, step_list_html
from dashboard.figures.text import hover_text, hover_texts
from dashboard.formatting import default_scheme, md_escape, parse_iteration

HOSTILE = "**bold** ![x](http://127.0.0.1:9/x.png) [l](javascript:alert(1)) $x^2$ <b>b</b> <script>x()</script> &amp;"


def steps_frame(rows: list[dict]) -> pd.DataFrame:
    base = {"run_id": "r", "iteration": 0, "group_id": "g", "state": None, "reward": None, "label": None,
            "valid": None, "prm": None, "node_id": None}  # fmt: skip
    return pd.DataFrame([{**base, **row} for row in rows])


def group(n: int = 3, length: int = 4) -> pd.DataFrame:
    rows = []
    for t in range(n):
        for s in range(length - (t == 0)):  # the first trajectory is one step shorter
            rows.append({"traj_id": f"t{t}", "step_idx": s, "action": f"a{t}.{s}", "outcome": float(t % 2),
                         "label": 0.0 if (t, s) == (1, 2) else 1.0, "valid": (t, s) != (2, 1)})  # fmt: skip
    return steps_frame(rows)


def trace(figure, name: str):  # noqa: ANN001, ANN201 - plotly objects
    return next(t for t in figure.data if t.name == name)


def test_grid_orders_by_outcome_and_marks_first_errors() -> None:
    steps = group()
    grid = heatmap_grid(steps, np.arange(len(steps), dtype=float))
    assert grid.traj_ids == ["t1", "t0", "t2"]  # best outcome first, then id
    assert np.isnan(grid.z[1, 3])  # t0 has no step 3
    assert grid.first_errors() == [(0, 2), (2, 1)]  # t1: label 0 at step 2; t2: invalid at step 1


def test_robust_limit_ignores_one_outlier() -> None:
    values = np.r_[np.linspace(-0.1, 0.1, 500), 1.8]
    assert robust_limit(values) == pytest.approx(0.1, abs=0.01)
    assert robust_limit(np.zeros(4)) == 1.0 and robust_limit(np.array([np.nan])) == 1.0


def test_heatmap_saturated_cells_are_marked_and_clicks_land_on_cells() -> None:
    steps = group(3, 4)
    values = np.full(len(steps), 0.1)
    values[5] = 5.0  # an outlier
    figure = heatmap_figure(steps, values, title="s")
    assert trace(figure, "credit").zmax == pytest.approx(robust_limit(values))
    saturated = trace(figure, "beyond the colour limit")
    assert len(saturated.x) == 1
    layer = trace(figure, CLICK_LAYER)
    cells = {(row, x): tuple(c) for row, x, c in zip(layer.y, layer.x, layer.customdata, strict=True)}
    assert len(cells) == 3 * 4  # one invisible marker per cell, the short row's missing cell included
    assert cells[(1, 3)] == ("t0", "2")  # past t0's end: its own last step, not a neighbour's
    assert cells[(0, 2)] == ("t1", "2")
    assert figure.layout.hoverdistance == -1 and trace(figure, "credit").hoverinfo == "skip"
    assert set(trace(figure, "label = 0").x) == {2} and set(trace(figure, "valid = false").x) == {1}
    fixed = heatmap_figure(steps, values, title="s", limit=10.0)
    assert trace(fixed, "credit").zmax == 10.0 and not any(t.name == "beyond the colour limit" for t in fixed.data)


def test_constant_group_gets_a_neutral_colour_bar_and_rows_get_labels() -> None:
    steps = group(3, 2)
    figure = heatmap_figure(steps, np.zeros(len(steps)), title="s")
    credit = trace(figure, "credit")
    assert {c[1] for c in credit.colorscale} == {NEUTRAL} and list(credit.colorbar.ticktext) == ["0 (all)"]
    assert "constant" in figure.layout.title.text
    assert list(figure.layout.yaxis.ticktext) == ["t1 · R=1", "t0 · R=0", "t2 · R=0"]


@pytest.mark.parametrize(("rows", "px"), [(8, 28), (64, 15), (128, 10), (1000, 10)])
def test_row_height_adapts(rows: int, px: int) -> None:
    assert row_height(rows) == px


def test_ids_in_heatmap_labels_and_hover_are_escaped() -> None:
    steps = steps_frame([{"traj_id": "<b>b</b> [l](javascript:x)", "step_idx": 0, "action": HOSTILE, "outcome": 1.0}])
    figure = heatmap_figure(steps, [0.5], title=HOSTILE)
    shown = [figure.layout.title.text, *figure.layout.yaxis.ticktext, *trace(figure, CLICK_LAYER).hovertext]
    assert all("<b>b" not in s and "<script>" not in s for s in shown)
    assert "&lt;b&gt;b&lt;/b&gt;" in shown[1]


def test_clicked_step_reads_the_pair_and_skips_other_points() -> None:
    event = {"selection": {"points": [{"customdata": "node-id"}, {"customdata": ["t1", "7"]}]}}
    assert clicked_step(event) == ("t1", 7)
    assert clicked_step({"selection": {"points": []}}) is None and clicked_step(None) is None


class _Collector(HTMLParser):
    """Every tag and every text node of a piece of markup."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_step_list_shows_log_text_as_text() -> None:
    steps = steps_frame([{"traj_id": "t", "step_idx": i, "action": f"{HOSTILE}\nsecond line", "state": HOSTILE,
                          "outcome": 1.0, "label": float(i), "valid": bool(i)} for i in range(2)])  # fmt: skip
    markup = step_list_html(steps, {0: -0.5, 1: 0.5}, scheme="grpo", limit=0.5, current=1)
    parsed = _Collector()
    parsed.feed(markup)
    assert set(parsed.tags) <= {"style", "div", "span", "details", "summary", "pre"}
    text = "".join(parsed.text)
    assert HOSTILE in text and f"{HOSTILE}\nsecond line" in text  # full action and state, character for character
    assert markup.count("<details") == 2 and 'id="cs-step-1" class="cs-current" open' in markup
    assert 'id="cs-step-0" class="" >' not in markup and "cs-bad" in markup  # label 0 / invalid flagged


def test_expand_modes_and_credit_colours() -> None:
    steps = steps_frame([{"traj_id": "t", "step_idx": i, "action": "a", "outcome": 1.0} for i in range(3)])
    assert step_list_html(steps, {}, scheme="s", limit=1, expand="all").count(" open>") == 3
    assert step_list_html(steps, {}, scheme="s", limit=1, current=1, expand="none").count(" open>") == 0
    red, _ = credit_colour(-1.0, 1.0)
    blue, _ = credit_colour(2.0, 1.0)  # saturates at the limit
    assert red.startswith("rgb(") and red != blue and credit_colour(None, 1.0) == ("transparent", "inherit")


def test_first_line_and_scroll_script() -> None:
    assert first_line("\n  \nfirst\nsecond") == "first…"
    assert first_line(None) == "" and first_line("x" * 200, 10) == "x" * 10 + "…"
    script = scroll_script(12)
    # The sanitiser in front of st.html drops a script whose text contains "<" followed by a word character.
    assert '"cs-step-12"' in script and not re.search(r"<[/\w!]", script.removeprefix("<script>")[:-9])


def test_md_escape_makes_markdown_literal() -> None:
    escaped = md_escape(HOSTILE + " :smile: http://x.y/a_b")
    assert re.sub(r"\\(.)", r"\1", escaped) == HOSTILE + " :smile: http://x.y/a_b"
    assert not re.search(r"(?<!\\)[*\[\]()$<>:&]", escaped)  # every markup character carries its backslash
    assert md_escape("needs column 'value'") == "needs column 'value'"


def test_parse_iteration() -> None:
    assert parse_iteration("3", [1, 3]) == (3, None)
    assert parse_iteration(None, [1]) == (None, None)
    assert parse_iteration("x", [1])[1] == "Iteration 'x' in the URL is not a number"
    assert parse_iteration("7", [1, 3])[1] == "This run has no iteration 7 (its iterations: 1 to 3)"


def test_default_scheme_follows_the_data() -> None:
    flat = steps_frame([{"traj_id": f"t{t}", "step_idx": s, "action": "a", "outcome": 1.0, "state": "same prompt"}
                        for t in range(2) for s in range(2)])  # fmt: skip
    assert default_scheme(flat) == "grpo"  # one state everywhere: no anchor states
    anchors = flat.assign(state=["s0", "room", "s0", "room"])
    assert default_scheme(anchors) == "gigpo"
    assert default_scheme(anchors.assign(node_id=["n0", "n1", "n0", "n2"])) == "treerl"
    assert html.escape("<") == "&lt;"


def test_the_prm_cell_says_where_the_score_comes_from() -> None:
    steps = steps_frame([{"traj_id": "t", "step_idx": 0, "action": "a", "outcome": 1.0, "prm": 0.5,
                          "prm_source": "logged"},
                         {"traj_id": "t", "step_idx": 1, "action": "b", "outcome": 1.0, "prm": 0.25,
                          "prm_source": "token-cls:abc"}])  # fmt: skip
    markup = step_list_html(steps, {}, scheme="grpo", limit=1.0)
    assert 'title="prm from the log">0.500<' in markup
    assert 'title="prm from token-cls:abc">0.250<' in markup


def test_md_unescape_reads_back_what_md_escape_wrote() -> None:
    from dashboard.formatting import md_unescape

    for text in [HOSTILE, "a\\b", "- item\n1. one", ""]:
        assert md_unescape(md_escape(text)) == text


def test_hover_texts_equals_hover_text_value_by_value() -> None:
    values = ["plain", "<b>bold</b> & co", "line\nbreak", "x" * 500, "<" * 300, None, "", "é\n<img src=x>"]
    for max_chars in (10, 160, 400):
        assert hover_texts(pd.Series(values), max_chars).tolist() == [hover_text(v, max_chars) for v in values]
