"""The token view: logged per-token arrays, text split by a local tokenizer, step credit and PRM what-if per token."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest

from core.prm.types import Trajectory, TrajectoryScores
from core.prm.whatif import WhatIfResult
from dashboard import resources as res
from dashboard.figures.tokens_html import CREDIT, ENTROPY, LOGPROB, RATIO, WHATIF, Scale, scale_for, token_spans
from dashboard.prm_panel import DEMO_PRM
from dashboard.token_view import MODE_KEY, OFF, TOKENIZER_KEY, load_tokenizer, split_text
from dashboard.whatif import RESULT_KEY

SPAN = re.compile(r'<span class="cs-tok" style="[^"]*" title="([^"]*)">([^<]*)</span>', re.S)


def html_body(at) -> str:  # noqa: ANN001 - an AppTest
    def walk(node):  # noqa: ANN001, ANN202
        for child in getattr(node, "children", {}).values():
            yield child
            yield from walk(child)

    return "".join(el.proto.body for el in walk(at.main) if getattr(el, "type", "") == "html")


def token_blocks(body: str) -> list[list[tuple[str, str]]]:
    """Per step (in order), the (hover title, token text) of each token of its whole-action block."""
    blocks = re.findall(r'<div class="cs-tokens">(.*?)</div>', body, re.S)
    return [[(html.unescape(t), html.unescape(x)) for t, x in SPAN.findall(block)] for block in blocks]


def test_logged_tokens_are_coloured_by_their_log_probs(open_page) -> None:
    at = open_page("app_pages/trajectory.py", run="arithmetic", traj="it0-p0-r3")
    mode = at.selectbox(key=MODE_KEY)
    assert mode.value == LOGPROB and {LOGPROB, ENTROPY, RATIO, f"{CREDIT} (gigpo)"} <= set(mode.options)
    tokens = res.trajectory_tokens(str(res.db_path()), "arithmetic", "it0-p0-r3")
    steps = res.trajectory(str(res.db_path()), "arithmetic", "it0-p0-r3")[1]
    blocks = token_blocks(html_body(at))
    assert len(blocks) == len(steps)
    for block, logged, logprobs, action in zip(
        blocks, tokens["tokens"], tokens["token_logprobs"], steps["action"], strict=True
    ):  # noqa: E501
        assert [text for _, text in block] == logged and "".join(logged) == action
        assert [float(title.rsplit(" ", 1)[1]) for title, _ in block] == pytest.approx(logprobs, abs=1e-3)
    assert "log-prob:" in html_body(at) and "tokens as logged" in html_body(at)  # the legend
    assert not any(e.key == TOKENIZER_KEY for e in at.text_input)  # every step logged its tokens


def test_text_only_steps_are_split_by_the_demo_tokenizer_and_show_step_credit(open_page) -> None:
    at = open_page("app_pages/trajectory.py", run="samples_prm800k", traj=_first_traj("samples_prm800k"))
    assert at.selectbox(key=MODE_KEY).value == OFF and "cs-tok" not in html_body(at)
    at.selectbox(key=MODE_KEY).set_value(CREDIT).run()
    assert at.text_input(key=TOKENIZER_KEY).value == DEMO_PRM
    steps = res.trajectory(str(res.db_path()), "samples_prm800k", _first_traj("samples_prm800k"))[1]
    blocks = token_blocks(html_body(at))
    for block, action in zip(blocks, steps["action"], strict=True):
        assert "".join(text for _, text in block) == action  # the pieces join back to the logged text
        assert len(block) > 1 and len({title.rsplit(" ", 1)[1] for title, _ in block}) == 1  # one step value
    at.text_input(key=TOKENIZER_KEY).set_value("/no/such/folder").run()
    assert any("no tokenizer.json" in re.sub(r"\\(.)", r"\1", w.value) for w in at.warning)
    assert "cs-tok" not in html_body(at)


def test_served_to_other_machines_the_tokenizer_box_reads_only_the_demo_prm_or_a_data_root(
    open_page, tmp_path, monkeypatch
) -> None:  # noqa: ANN001
    import shutil

    from core.serving import REMOTE_ENV, ROOTS_ENV

    monkeypatch.setenv(REMOTE_ENV, "1")
    monkeypatch.setenv(ROOTS_ENV, "")
    copied = shutil.copytree(DEMO_PRM, tmp_path / "elsewhere")  # a real tokenizer, outside every data root
    at = open_page("app_pages/trajectory.py", run="samples_prm800k", traj=_first_traj("samples_prm800k"))
    at.selectbox(key=MODE_KEY).set_value(CREDIT).run()
    assert "cs-tok" in html_body(at)  # the shipped demo tokenizer is allowed
    at.text_input(key=TOKENIZER_KEY).set_value(str(copied)).run()
    assert any("only from the demo PRM" in re.sub(r"\\(.)", r"\1", w.value) for w in at.warning)
    assert "cs-tok" not in html_body(at)


def test_prm_what_if_is_shown_per_token_on_the_edited_text(open_page) -> None:
    at = open_page("app_pages/trajectory.py", run="arithmetic", traj="it0-p0-r3")
    steps = res.trajectory(str(res.db_path()), "arithmetic", "it0-p0-r3")[1]
    texts = tuple(steps["action"])
    edited = (texts[0], "17 * 3 = 51 edited", *texts[2:])
    n = len(texts)
    result = WhatIfResult(
        traj_id="it0-p0-r3",
        step_idx=list(range(n)),
        original=Trajectory("p", texts),
        edited=Trajectory("p", edited),
        old=TrajectoryScores([0.9] * n, [False] * n, 10),
        new=TrajectoryScores([0.9, 0.2, *[0.8] * (n - 2)], [False] * n, 10),
    )
    at.session_state[RESULT_KEY] = ("arithmetic", result)
    at.run()
    assert at.selectbox(key=MODE_KEY).options[-1] == WHATIF
    at.selectbox(key=MODE_KEY).set_value(WHATIF).run()
    blocks = token_blocks(html_body(at))
    assert "".join(text for _, text in blocks[1]) == "17 * 3 = 51 edited"  # split afresh by the tokenizer
    assert {title.rsplit(" ", 1)[1] for title, _ in blocks[1]} == {"-0.7"}
    assert {title.rsplit(" ", 1)[1] for title, _ in blocks[2]} == {"-0.1"}


def _first_traj(run: str) -> str:
    return str(res.run_steps(str(res.db_path()), run)["traj_id"].iloc[0])


def test_split_text_joins_back_exactly() -> None:
    tokenizer = load_tokenizer(DEMO_PRM)
    for text in ["17 * 3 = 51", "  two  spaces\nand a line <b>x</b> ", "", "ünïcødé ∑"]:
        assert "".join(split_text(tokenizer, text)) == text


def test_token_markup_escapes_and_colours() -> None:
    scale = Scale("diverging", -1.0, 1.0)
    markup = token_spans(['<b>"x"', " &amp;", "\nnext"], [-1.0, 0.0, 0.5], scale, "credit")
    assert "<b>" not in markup and "&lt;b&gt;" in markup and "&amp;amp;" in markup
    assert f'title="{html.escape(repr(chr(60) + "b>" + chr(34) + "x" + chr(34)), quote=True)} · credit -1"' in markup
    first = token_spans(["a", " b\nc", " d"], [0.1, 0.2, 0.3], scale, "credit", first_line=True)
    assert first.endswith("…") and " d" not in first and ">a<" in first
    assert scale.colour(-1.0)[0].startswith("rgba(178,24,43,") and scale.colour(None) == ("transparent", "inherit")
    logprob = scale_for(LOGPROB, list(np.linspace(-5, 0, 101)))
    assert logprob.kind == "low_is_bad" and logprob.low == pytest.approx(-4.95)
    assert scale_for(ENTROPY, []).high == 1.0
