import pytest

from core.ingest.split import resolve_splitter, split_steps, validate_splitter

STEP_TEXT = "Let me think.\n\nStep 1: add 2 and 3\nto get 5.\n**Step 2.** double it: 10\n\n## Step 3) answer 10"


def test_auto_prefers_step_markers_and_keeps_them():
    assert resolve_splitter(STEP_TEXT) == "step_k"
    assert split_steps(STEP_TEXT) == [
        "Let me think.",
        "Step 1: add 2 and 3\nto get 5.",
        "**Step 2.** double it: 10",
        "## Step 3) answer 10",
    ]


def test_auto_falls_back_to_blank_lines():
    text = "First paragraph\nstill first.\n\n\nSecond.\n   \nThird."
    assert resolve_splitter(text) == "blank_lines"
    assert split_steps(text) == ["First paragraph\nstill first.", "Second.", "Third."]


def test_step_marker_must_start_a_line():
    # "step 2:" inside a sentence is prose, not a marker
    text = "We do this in step 2: carefully.\n\nThen finish."
    assert resolve_splitter(text) == "blank_lines"


def test_lines_drops_blank_lines():
    assert split_steps("a = 1\n\n  b = 2  \nc = 3\n", "lines") == ["a = 1", "b = 2", "c = 3"]


def test_regex_separator_is_dropped_and_groups_are_not_inserted():
    assert split_steps("x --- y ---- z", "regex:(-{3,})") == ["x", "y", "z"]


def test_regex_lookahead_keeps_markers():
    assert split_steps("So. Answer: 4. Answer: 5", "regex:(?=Answer:)") == ["So.", "Answer: 4.", "Answer: 5"]


def test_none_keeps_text_whole():
    assert split_steps("a\n\nb", "none") == ["a\n\nb"]


@pytest.mark.parametrize("splitter", ["auto", "blank_lines", "lines", "step_k", "regex:\\n"])
def test_never_returns_no_steps(splitter):
    assert split_steps("\n\n", splitter) == ["\n\n"]
    assert split_steps("", splitter) == [""]


def test_step_k_without_markers_is_one_step():
    assert split_steps("no markers here\n\nat all", "step_k") == ["no markers here\n\nat all"]


def test_split_loses_only_separators():
    text = "Step 1: alpha\nbeta\nStep 2: gamma"
    assert "".join(split_steps(text, "step_k")).replace("\n", "") == text.replace("\n", "")


@pytest.mark.parametrize("bad", ["paragraphs", "regex:", "regex:(unclosed"])
def test_invalid_splitters_are_rejected(bad):
    with pytest.raises(ValueError):
        validate_splitter(bad)
    with pytest.raises(ValueError):
        split_steps("text", bad)
