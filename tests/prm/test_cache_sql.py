"""core/store/prm_cache.py against a plain DuckDB holding the four PRM tables."""

from __future__ import annotations

import math

import pandas as pd

from core.store import prm_cache


def cache_frame(rows):
    return pd.DataFrame(rows, columns=["content_hash", "score", "truncated"])


def test_lookup_returns_only_hits_and_keeps_truncations_as_null(prm_db):
    prm_cache.insert_cached(prm_db, "s1", cache_frame([("h1", 0.25, False), ("h2", math.nan, True)]))
    prm_cache.insert_cached(prm_db, "s2", cache_frame([("h3", 0.5, False)]))
    found = prm_cache.lookup_cached(prm_db, "s1", ["h1", "h2", "h3", "h1"]).set_index("content_hash")
    assert sorted(found.index) == ["h1", "h2"]
    assert found.loc["h1", "score"] == 0.25 and not found.loc["h1", "truncated"]
    assert pd.isna(found.loc["h2", "score"]) and found.loc["h2", "truncated"]
    assert prm_db.execute("SELECT count(*) FROM prm_cache WHERE score IS NULL").fetchone()[0] == 1


def test_insert_keeps_the_first_score_of_a_hash(prm_db):
    prm_cache.insert_cached(prm_db, "s1", cache_frame([("h1", 0.25, False)]))
    prm_cache.insert_cached(prm_db, "s1", cache_frame([("h1", 0.9, False), ("h4", 0.1, False)]))
    found = prm_cache.lookup_cached(prm_db, "s1", ["h1", "h4"]).set_index("content_hash")["score"].to_dict()
    assert found == {"h1": 0.25, "h4": 0.1}


def test_step_scores_upsert_active_scorer_and_listing(prm_db):
    prm_cache.register_scorer(prm_db, "s1", {"family": "token-cls", "model": "/old/place/demo"})
    created = prm_db.execute("SELECT created_at FROM prm_scorers WHERE scorer_id = 's1'").fetchone()
    prm_cache.register_scorer(prm_db, "s1", {"family": "token-cls", "model": "/new/place/demo"})
    # Same content, new folder: the latest path is kept (it is the one likeliest to exist), the row is not duplicated.
    assert prm_cache.scorer_spec(prm_db, "s1") == {"family": "token-cls", "model": "/new/place/demo"}
    assert prm_db.execute("SELECT created_at FROM prm_scorers WHERE scorer_id = 's1'").fetchall() == [created]
    first = pd.DataFrame(
        {
            "run_id": "r",
            "traj_id": ["a", "a", "b"],
            "step_idx": [0, 1, 0],
            "score": [0.1, math.nan, 0.3],
            "truncated": [False, True, False],
        }
    )
    prm_cache.upsert_step_scores(prm_db, "s1", first)
    prm_cache.upsert_step_scores(prm_db, "s1", first.assign(score=[0.7, math.nan, 0.3]).iloc[:1])
    got = prm_cache.step_scores(prm_db, "r", "s1")
    assert got["score"].tolist()[0] == 0.7 and pd.isna(got["score"].tolist()[1]) and got["score"].tolist()[2] == 0.3
    assert prm_cache.step_scores(prm_db, "r", "s1", traj_ids=["b"])["traj_id"].tolist() == ["b"]

    assert prm_cache.get_active(prm_db, "r") is None
    prm_cache.set_active(prm_db, "r", "s1")
    assert prm_cache.get_active(prm_db, "r") == "s1"
    listing = prm_cache.list_scorers(prm_db, "r")
    row = listing.iloc[0]
    assert (row.scorer_id, row.family, row.n_steps, row.n_truncated, bool(row.active)) == (
        "s1",
        "token-cls",
        3,
        1,
        True,
    )
    assert row.mean_score == (0.7 + 0.3) / 2  # the NULL of the truncated step does not count
    prm_cache.set_active(prm_db, "r", None)
    assert prm_cache.get_active(prm_db, "r") is None
