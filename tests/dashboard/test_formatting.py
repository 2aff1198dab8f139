"""Pure formatting helpers of the pages: chat prompts as text, Runs table order and default curves."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dashboard.formatting import default_plot_runs, prompt_text, run_table_columns


def test_chat_prompt_becomes_role_prefixed_text_with_real_line_breaks() -> None:
    logged = json.dumps(
        [
            {"role": "system", "content": "Play Wordle.\nGuess in <guess> tags."},
            {"role": "user", "content": [{"type": "text", "text": "Begin."}, {"type": "text", "text": "Go"}]},
        ]
    )
    assert prompt_text(logged) == "system: Play Wordle.\nGuess in <guess> tags.\n\nuser: Begin.\nGo"


@pytest.mark.parametrize(
    "prompt",
    ["Start with 6, then apply * 5.", "[1, 2, 3] is a list", '[{"no_role": 1}]', "[not json", "[]"],
)
def test_other_prompts_are_shown_unchanged(prompt: str) -> None:
    assert prompt_text(prompt) == prompt


@pytest.mark.parametrize("missing", [None, np.nan, pd.NA, ""])
def test_missing_prompt_says_so(missing: object) -> None:
    assert prompt_text(missing) == "(no prompt logged)"


def test_runs_table_puts_counts_before_path_and_timestamp() -> None:
    columns = ["run_id", "source_format", "source_path", "ingested_at", "iterations", "groups", "steps", "extra"]
    assert run_table_columns(columns) == [
        "run_id",
        "source_format",
        "iterations",
        "groups",
        "steps",
        "source_path",
        "ingested_at",
        "extra",
    ]


def test_default_curves_prefer_runs_with_many_iterations() -> None:
    summary = pd.DataFrame(
        {"run_id": ["agentgym", "agent", "arithmetic", "popularity", "tree"], "iterations": [1, 10, 10, 1, 10]}
    )
    assert default_plot_runs(summary) == ["agent", "arithmetic", "tree"]
    assert default_plot_runs(summary.iloc[[0, 3]]) == ["agentgym", "popularity"]
