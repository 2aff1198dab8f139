"""Compare opens on one iteration; the whole run is streamed (progress bar) and ranks every step exactly."""

from __future__ import annotations

import os

import pandas as pd

from core.credit import prepare, rank_schemes
from core.credit.streaming import needs_whole_run
from core.store import queries
from dashboard.resources import get_store


def test_compare_opens_on_an_iteration_and_streams_the_whole_run(open_page) -> None:
    at = open_page("app_pages/compare.py", run="arithmetic")
    assert at.selectbox(key="cmp_scope").value == 0  # not the whole run: a big run would take minutes
    at.selectbox(key="cmp_scope").set_value("whole run").run()
    assert not at.exception
    assert len(at.get("plotly_chart")) >= 1  # heatmaps of the sampled groups
    at.session_state["cmp_view"] = "Ranking vs labels"  # hidden tabs draw nothing
    at.run()
    ranking = next(df.value for df in at.dataframe if "auc" in df.value.columns).set_index("scheme")
    steps = queries.steps(get_store(os.environ["CREDITSCOPE_DB"]), run_id="arithmetic", with_token_stats=True)
    expected = rank_schemes(prepare(steps)).set_index("scheme")
    streamable = [name for name in expected.index if needs_whole_run(name) is None]
    columns = ["auc", "first_error_f1"]
    pd.testing.assert_frame_equal(ranking.loc[streamable, columns], expected.loc[streamable, columns])
    caption = " ".join(c.value for c in at.caption)
    assert f"cover all {len(steps):,} steps" in caption
