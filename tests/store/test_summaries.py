"""Group statistics, coverage and the search index stay exactly what the rows say, across every way rows change."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from core.ingest.follow import poll_once
from core.ingest.runner import ingest
from core.store import queries, search, summaries
from core.store.database import Store
from core.store.migrations import SCHEMA_VERSION
from core.store.summaries import LONG_ACTIONS, MARK, MARK_STANDIN, SEPARATORS, rebuild_all, terms_sql
from core.synth import records

GROUP_KEY = ["iteration", "group_id"]

LEGACY_GROUPS = """
    SELECT t.iteration, t.group_id, count(*) AS n, avg(t.outcome) AS mean_outcome,
           coalesce(stddev_samp(t.outcome), 0) AS std_outcome, (max(t.outcome) = min(t.outcome)) AS zero_variance,
           avg(t.n_steps) AS mean_steps
    FROM trajectories t WHERE t.run_id = $run
    GROUP BY t.iteration, t.group_id ORDER BY t.iteration, t.group_id"""
"""The Groups table as computed from the trajectories themselves (what the summaries must equal)."""


def _write(path: Path, recs: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))


def _recs(env: str = "arithmetic", prompts: int = 4, iterations: int = 3, seed: int = 0) -> list[dict]:
    return list(records(env, prompts=prompts, iterations=iterations, seed=seed, run="r"))


def assert_consistent(store: Store) -> None:
    """Every summary equals a fresh aggregate of the canonical tables."""
    for run in store.query_df("SELECT DISTINCT run_id FROM trajectories")["run_id"]:
        expected = store.query_df(LEGACY_GROUPS, {"run": run})
        got = queries.groups(store, run)[expected.columns]
        pd.testing.assert_frame_equal(got, expected, check_dtype=False, rtol=1e-12)
    legacy_runs = store.query_df(
        """SELECT r.run_id, count(DISTINCT t.iteration) AS iterations, count(DISTINCT (t.iteration, t.group_id))
                  AS groups, count(*) AS trajectories, sum(t.n_steps)::BIGINT AS steps, avg(t.outcome) AS mean_outcome
           FROM runs r JOIN trajectories t USING (run_id) GROUP BY ALL ORDER BY r.run_id"""
    )
    runs = queries.runs_summary(store)[legacy_runs.columns]
    pd.testing.assert_frame_equal(runs, legacy_runs, check_dtype=False, rtol=1e-12)
    legacy_coverage = store.query_df(
        """SELECT run_id, count(*) AS steps, count(state) AS state, count(reward) AS reward, count(node_id) AS node_id,
                  count(parent_id) AS parent_id, count(label) AS label, count(valid) AS valid, count(prm) AS prm,
                  count(value) AS value
           FROM steps GROUP BY run_id ORDER BY run_id"""
    )
    pd.testing.assert_frame_equal(queries.column_coverage(store), legacy_coverage, check_dtype=False)
    # Postings name exactly the (group, token) pairs of the current rows.
    stale = store.query_df(
        """SELECT count(*) AS n FROM search_postings p
           ANTI JOIN trajectories t ON t.run_id = p.run_id AND t.iteration = p.iteration AND t.group_id = p.group_id
             AND t.source_id = p.source_id"""
    )["n"].iloc[0]
    assert stale == 0
    prompts = store.query_df("SELECT run_id, iteration, group_id, prompt FROM group_prompts ORDER BY ALL")
    expected = store.query_df(
        "SELECT DISTINCT run_id, iteration, group_id, prompt FROM trajectories WHERE prompt IS NOT NULL ORDER BY ALL"
    )
    pd.testing.assert_frame_equal(prompts, expected)
    # Exactly the sources whose actions are long free text are left out of the index, and have no postings.
    long_text = store.query_df(
        f"SELECT source_id FROM step_rows GROUP BY ALL HAVING avg(strlen(action)) > {LONG_ACTIONS} ORDER BY ALL"
    )["source_id"].tolist()
    assert store.query_df("SELECT source_id FROM search_unindexed ORDER BY ALL")["source_id"].tolist() == long_text
    assert (
        store.query_df("SELECT count(*) AS n FROM search_postings SEMI JOIN search_unindexed USING (source_id)")[
            "n"
        ].iloc[0]
        == 0
    )
    index = """SELECT source_id, run_id, iteration, group_id, term
               FROM search_postings JOIN search_vocab USING (term_id)
               UNION ALL SELECT source_id, NULL, NULL, NULL, 'unindexed' FROM search_unindexed ORDER BY ALL"""
    with store.writer() as cur:  # a from-scratch rebuild gives the same index as the incremental upkeep
        before = cur.execute(index).fetchall()
        rebuild_all(cur)
        after = cur.execute(index).fetchall()
    assert before == after


def test_summaries_follow_ingest_replace_and_removal(tmp_path: Path) -> None:
    store = Store.open(":memory:")
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    recs = _recs()
    # One group is split across the two files: its statistics must combine both.
    split_group = recs[0]["group"]
    in_b = [r for r in recs if r["group"] == split_group][:3]
    _write(a, [r for r in recs if r not in in_b])
    _write(b, in_b)
    ingest(store, [str(a), str(b)], run="r")
    assert_consistent(store)
    assert queries.groups(store, "r").set_index("group_id").loc[split_group, "n"] == 8

    # b rewritten without that group's rollouts (replace): the group shrinks back to a's five.
    other = _recs(env="tree", prompts=2, iterations=2, seed=5)
    for rec in other:
        rec["trajectory"], rec["group"] = "tree-" + rec["trajectory"], "tree-" + rec["group"]
    _write(b, other)
    ingest(store, [str(b)], run="r")
    assert_consistent(store)
    assert queries.groups(store, "r").set_index("group_id").loc[split_group, "n"] == 5

    # a rewritten with changed outcomes: every group of a is recomputed.
    flipped = [{**r, "outcome": 1.0 - r["outcome"]} for r in recs if r not in in_b]
    _write(a, flipped)
    ingest(store, [str(a)], run="r")
    assert_consistent(store)


def test_summaries_follow_appended_lines(tmp_path: Path) -> None:
    store = Store.open(":memory:")
    path = tmp_path / "grow.jsonl"
    recs = _recs(prompts=6, iterations=4)
    half = len(recs) // 2 + 3  # mid-group: the appended lines complete a group already loaded
    _write(path, recs[:half])
    poll_once(store, [str(path)])
    assert_consistent(store)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in recs[half:]))
    report = poll_once(store, [str(path)])
    assert [s.status for s in report.sources] == ["appended"]
    assert_consistent(store)
    assert len(queries.groups(store, "r")) == 6 * 4


def test_prm_coverage_follows_the_active_scorer(tmp_path: Path) -> None:
    store = Store.open(":memory:")
    path = tmp_path / "r.jsonl"
    _write(path, _recs())
    ingest(store, [str(path)])
    logged = int(queries.column_coverage(store)["prm"].iloc[0])
    assert logged > 0
    with store.writer() as cur:
        cur.execute("INSERT INTO prm_scorers VALUES ('s1', '{}', now())")
        cur.execute(
            """INSERT INTO prm_step_scores SELECT run_id, traj_id, step_idx, 's1', 0.5, false FROM step_rows
               WHERE step_idx = 0"""
        )
        cur.execute("INSERT INTO prm_active VALUES ('r', 's1')")
    assert_consistent(store)
    # The steps s1 did not score keep their logged score (schema version 6), so nothing is lost...
    assert int(queries.column_coverage(store)["prm"].iloc[0]) == logged
    with store.writer() as cur:  # ...and a step s1 scored as truncated shows s1's NULL, not the logged score
        cur.execute("UPDATE prm_step_scores SET score = NULL, truncated = true")
    assert_consistent(store)
    assert int(queries.column_coverage(store)["prm"].iloc[0]) < logged


def test_a_database_from_before_the_summaries_gets_them_on_open(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    store = Store.open(db)
    path = tmp_path / "r.jsonl"
    _write(path, _recs())
    ingest(store, [str(path)])
    expected = queries.groups(store, "r")
    with store.writer() as cur:  # back to schema 4: no summaries yet
        tables = ("group_sources", "group_stats", "source_coverage", "search_vocab", "search_postings")
        for table in (*tables, "group_prompts", "search_unindexed"):
            cur.execute(f"DROP TABLE {table}")
        cur.execute("DELETE FROM schema_version WHERE version >= 5")
    store.close()
    old = Store.open(db, read_only=True)  # read-only cannot migrate: the run list still works
    assert old.schema_version == 4
    assert queries.runs_summary(old)["trajectories"].tolist() == [len(_recs())]
    old.close()
    store = Store.open(db)
    pd.testing.assert_frame_equal(queries.groups(store, "r"), expected)
    assert_consistent(store)


def _legacy_search(store: Store, run: str, needle: str) -> list[tuple[int, str]]:
    frame = store.query_df(
        """SELECT DISTINCT t.iteration, t.group_id FROM trajectories t
           WHERE t.run_id = $run AND (contains(lower(t.prompt), lower($needle)) OR EXISTS (
               SELECT 1 FROM step_rows s WHERE s.run_id = t.run_id AND s.traj_id = t.traj_id
                 AND contains(lower(s.action), lower($needle))))
           ORDER BY 1, 2""",
        {"run": run, "needle": needle},
    )
    return list(frame.itertuples(index=False, name=None))


@pytest.fixture(scope="module")
def search_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    folder = tmp_path_factory.mktemp("search")
    recs = []
    for env in ("arithmetic", "agent", "tree"):
        for rec in records(env, prompts=3, iterations=3, seed=1, run="m"):
            rec["trajectory"] = f"{env}/{rec['trajectory']}"
            rec["group"] = f"{env}/{rec['group']}"
            for step in rec["steps"]:
                for key in ("node", "parent"):
                    if step.get(key):
                        step[key] = f"{env}/{step[key]}"
            recs.append(rec)
    # Text with non-ASCII letters, CJK, punctuation runs and separators at the edges.
    recs[0]["steps"][0]["action"] = "Ça marche: naïve café — 東京。 [x_1]* (2+2)=4!!"
    recs[1]["prompt"] = "  leading  spaces\tand\ttabs  "
    # Letters whose lower case is special (dotted I, sharp s, the Kelvin sign, Greek sigma): ILIKE and lower() agree.
    recs[2]["steps"][0]["action"] = "İstanbul STRASSE straße \u212a-band ΣΊΣΥΦΟΣ it's"
    # The private-use characters the index splits text with, inside words and beside separators.
    recs[3]["steps"][0]["action"] = "mark\ue000ed word, stand\ue001in \ue000 alone"
    _write(folder / "m.jsonl", recs)
    store = Store.open(":memory:")
    ingest(store, [str(folder / "m.jsonl")])
    return store


NEEDLES = [
    "garden", "GARDEN", "go garden", "17", "7 * 3", "= 5", "* ", " *", "*", " ", "take key", "key.", ".", "ça",
    "naïve café", "東京", "京。", "x_1]", "[x", "(2+2)=4!!", "!!", "start with", "with 1", "nothing like this",
    "an", "a", "r0", "s  a", "ading  spa", "\tand\t", "İSTANBUL", "straße", "STRASSE", "k-band", "σίσυφος", "ΣΊΣ",
    "it's", "'", "$needle", "'$needle'", "%'", "start with 1", "go to the", "the garden", "= 5", ": naïve café —",
    "k\ue000ed", "k\ue001ed", "\ue000", "\ue001", "d, stand\ue001i", " \ue000 ", "\ue000 alone", "word, stand",
]  # fmt: skip


@pytest.mark.parametrize("needle", NEEDLES)
def test_search_equals_a_literal_scan(search_store: Store, needle: str) -> None:
    got = queries.groups(search_store, "m", search=needle)
    assert list(got[GROUP_KEY].itertuples(index=False, name=None)) == _legacy_search(search_store, "m", needle)
    paged = queries.groups_page(search_store, "m", search=needle, limit=2, offset=1)
    rows = lambda frame: list(frame[GROUP_KEY].itertuples(index=False, name=None))  # noqa: E731
    assert (paged.total, rows(paged.frame)) == (len(got), rows(got)[1:3])
    backwards = queries.groups_page(search_store, "m", search=needle, descending=True, limit=3, offset=2)
    assert (backwards.total, rows(backwards.frame)) == (len(got), rows(got)[::-1][2:5])
    beyond = queries.groups_page(search_store, "m", search=needle, limit=2, offset=len(got))
    assert (beyond.total, len(beyond.frame)) == (len(got), 0)
    one_iteration = queries.groups(search_store, "m", 1, search=needle)
    assert rows(one_iteration) == [key for key in _legacy_search(search_store, "m", needle) if key[0] == 1]


def test_search_equals_a_literal_scan_on_random_substrings(search_store: Store) -> None:
    texts = search_store.query_df("SELECT action AS t FROM step_rows UNION ALL SELECT prompt FROM trajectories")["t"]
    rng = np.random.default_rng(0)
    for text in rng.choice(texts.to_numpy(), size=40, replace=False):
        start = int(rng.integers(0, max(1, len(text) - 1)))
        needle = text[start : start + int(rng.integers(1, 12))]
        needle = needle.upper() if rng.random() < 0.3 else needle
        got = queries.groups(search_store, "m", search=needle)
        assert list(got[GROUP_KEY].itertuples(index=False, name=None)) == _legacy_search(search_store, "m", needle)


@pytest.mark.parametrize("needle", ["İSTANBUL", "straße", "k-band", "ΣΊΣΥΦΟΣ", "it's"])
def test_search_finds_letters_with_special_lower_case(search_store: Store, needle: str) -> None:
    # The literal-scan comparison above would also pass if both sides missed these; they must be found.
    assert len(queries.groups(search_store, "m", search=needle)) == 1


def _terms(texts: list[str]) -> list[list[str]]:
    con = duckdb.connect()
    return [con.execute(f"SELECT {terms_sql('$t')}", {"t": text}).fetchone()[0] for text in texts]


def test_a_needle_with_at_most_one_separator_run_is_in_a_text_exactly_when_in_one_of_its_terms() -> None:
    # What lets the search answer such needles from the index alone (core.store.search), checked on random
    # texts of words, separator runs and the index's own splitting characters, against every substring.
    rng = np.random.default_rng(3)
    alphabet = list("ab1Z_é東") + list(" *,.-\t") + [MARK, MARK_STANDIN]
    texts = ["".join(rng.choice(alphabet, size=int(rng.integers(0, 14)))) for _ in range(300)]
    runs = re.compile(SEPARATORS + "+")
    checked = 0
    for text, terms in zip(texts, _terms(texts), strict=True):
        lowered = text.lower()
        indexed = lowered.replace(MARK, MARK_STANDIN)
        for start in range(len(text)):
            for end in range(start + 1, len(text) + 1):
                needle = lowered[start:end]
                if len(runs.findall(needle)) > 1 or MARK in needle or MARK_STANDIN in needle:
                    continue
                assert any(needle in term for term in terms) == (needle in indexed) == (needle in lowered)
                checked += 1
    assert checked > 4000


def test_terms_pair_each_separator_run_with_its_words() -> None:
    assert _terms(["17 * 3 = 51", " lead", "trail. ", "one", "", "a\ue000b c"]) == [
        ["17 * 3", "3 = 51"], [" lead"], ["trail. "], ["one"], [""], ["a\ue001b c"]
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("needle", "exact"),
    [
        ("garden", True),
        ("17 * 3", True),
        (" * ", True),
        ("*", True),
        ("start with 16", False),
        ("a\ue000b", False),
        ("\ue001", False),
    ],
)
def test_which_needles_the_index_decides_alone(needle: str, exact: bool) -> None:
    with Store.open(":memory:").reader() as cur:
        assert search.parse(cur, needle).exact_by_index is exact


def _old_database(tmp_path: Path, version: int) -> Path:
    """A database as an older version left it: no ``search_unindexed``; before 8 no ``group_prompts``, at 7 the
    prompts' pair terms indexed with the actions', at 6 a single-word index (faked) and groups in no order."""
    path, log = tmp_path / f"v{version}.duckdb", tmp_path / "m.jsonl"
    _write(log, _recs(prompts=3, iterations=3))
    store = Store.open(path)
    ingest(store, [str(log)], run="r")
    with store.writer() as cur:
        cur.execute("DROP TABLE search_unindexed")
        cur.execute(f"DELETE FROM schema_version WHERE version > {version}")
        if version < 8:
            cur.execute("DROP TABLE group_prompts")
        if version == 7:
            cur.execute(
                f"""CREATE TEMP TABLE p AS SELECT DISTINCT source_id, run_id, iteration, group_id, term
                    FROM (SELECT *, unnest({terms_sql("prompt")}) AS term FROM trajectories) WHERE term <> ''"""
            )
            cur.execute(
                """INSERT INTO search_vocab SELECT (SELECT max(term_id) FROM search_vocab) + row_number() OVER (), term
                   FROM (SELECT DISTINCT term FROM p) ANTI JOIN search_vocab USING (term)"""
            )
            cur.execute(
                """INSERT INTO search_postings SELECT source_id, run_id, iteration, group_id, term_id
                   FROM p JOIN search_vocab USING (term)"""
            )
        elif version == 6:
            cur.execute("DELETE FROM search_postings")
            cur.execute("DELETE FROM search_vocab")
            cur.execute("INSERT INTO search_vocab VALUES (1, 'start')")
            cur.execute(
                "INSERT INTO search_postings SELECT DISTINCT source_id, run_id, iteration, group_id, 1"
                " FROM trajectories"
            )
            cur.execute("CREATE TEMP TABLE g AS SELECT * FROM group_stats ORDER BY iteration DESC")
            cur.execute("DELETE FROM group_stats")
            cur.execute("INSERT INTO group_stats SELECT * FROM g ORDER BY iteration DESC")
    store.close()
    return path


@pytest.mark.parametrize("version", [6, 7, 8])
def test_an_older_database_gets_group_prompts_and_the_actions_index_on_open(tmp_path: Path, version: int) -> None:
    store = Store.open(_old_database(tmp_path, version))  # migrates to the current version
    assert store.schema_version == SCHEMA_VERSION
    assert_consistent(store)
    stored = store.query_df("SELECT iteration FROM group_stats")["iteration"].tolist()
    assert stored == sorted(stored) and len(set(stored)) == 3
    indexed = store.query_df("SELECT DISTINCT term FROM search_postings JOIN search_vocab USING (term_id)")["term"]
    actions = store.query_df(f"SELECT DISTINCT unnest({terms_sql('action')}) AS term FROM step_rows")["term"]
    assert set(indexed) == set(actions) - {""}
    for needle in ("start with", "17", " = ", "start with 16", "17 * 3"):
        got = queries.groups(store, "r", search=needle)
        assert list(got[GROUP_KEY].itertuples(index=False, name=None)) == _legacy_search(store, "r", needle)


@pytest.mark.parametrize("version", [6, 7, 8])
def test_an_older_database_opened_read_only_is_searched_by_its_text(tmp_path: Path, version: int) -> None:
    # It cannot be migrated read-only: it has no group_prompts, and at version 6 its single-word index would
    # answer "start with" with nothing.
    store = Store.open(_old_database(tmp_path, version), read_only=True)
    assert store.schema_version == version
    for needle in ("start with", "17", " = "):
        got = queries.groups_page(store, "r", search=needle, limit=5)
        expected = _legacy_search(store, "r", needle)
        assert got.total == len(expected) > 0
        assert list(got.frame[GROUP_KEY].itertuples(index=False, name=None)) == expected[:5]
        assert got.frame["matched_in"].notna().all()


def json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _postings(store: Store) -> list[tuple]:
    return (
        store.query_df(
            "SELECT source_id, run_id, iteration, group_id, term FROM search_postings JOIN search_vocab USING (term_id)"
            " ORDER BY ALL"
        )
        .to_records(index=False)
        .tolist()
    )


def test_the_index_splits_by_action_or_by_group_to_the_same_postings(tmp_path: Path, monkeypatch) -> None:
    """Repeated actions are split once per distinct action, others per group: the postings are the same."""
    agent = tmp_path / "agent.jsonl"
    _write(agent, list(records("agent", prompts=5, iterations=3, seed=1, run="a")))
    arithmetic = tmp_path / "arithmetic.jsonl"
    _write(arithmetic, [{**r, "steps": r["steps"] + [{"action": "", "label": 1.0}]} for r in _recs(seed=2)])
    made: list[str] = []
    original = summaries._add_to_vocab
    monkeypatch.setattr(summaries, "_add_to_vocab", lambda cur, table: made.append(table) or original(cur, table))
    postings = {}
    for way, repeats in (("by action", 0), ("by group", 10**9)):
        monkeypatch.setattr(summaries, "REPEATED_ACTIONS", repeats)
        store = Store.open(":memory:")
        made.clear()
        ingest(store, [str(tmp_path)])  # one load of two sources
        _write(agent, [{**r, "outcome": 1.0 - r["outcome"]} for r in json_lines(agent)])
        ingest(store, [str(agent)])  # one source
        loaded = _postings(store)
        with store.writer() as cur:
            rebuild_all(cur)
        assert _postings(store) == loaded
        assert set(made) == {"cs_action_terms" if way == "by action" else "cs_words"}
        postings[way] = loaded
        assert_consistent(store)
    assert postings["by action"] == postings["by group"]
    assert {"go kitchen", "take sword"} <= {term for *_, term in postings["by group"]}


def test_long_free_text_actions_stay_out_of_the_index_and_are_searched_literally(tmp_path: Path) -> None:
    """A source of long free-text actions is not indexed; its groups' actions are matched by reading them."""

    def rollout(group: str, traj: str, action: str) -> dict:
        return {"run": "r", "group": group, "prompt": f"task {group}", "trajectory": traj, "outcome": 1.0,
                "steps": [{"action": action}]}  # fmt: skip

    filler = " ".join(f"word{i}" for i in range(60))  # about 400 bytes: free text
    short = tmp_path / "short.jsonl"
    _write(short, [rollout("g1", "s1", "take key"), rollout("g2", "s2", "go north")])
    free = tmp_path / "free.jsonl"
    _write(free, [rollout("g2", "f1", f"{filler} then take key, 17 * 3 = 51"), rollout("g3", "f2", f"{filler} go")])
    store = Store.open(":memory:")
    ingest(store, [str(short), str(free)])
    assert_consistent(store)
    assert store.query_df("SELECT count(*) AS n FROM search_unindexed")["n"].iloc[0] == 1
    for needle in ("take key", "17 * 3", "word5 word6", "then take key", "word59 go", "go", "north", "zzz"):
        got = queries.groups(store, "r", search=needle)
        assert list(got[GROUP_KEY].itertuples(index=False, name=None)) == _legacy_search(store, "r", needle), needle
        if not got.empty:
            assert got["matched_in"].notna().all()
    assert queries.groups(store, "r", search="17 * 3")["matched_in"].tolist() == ["f1 step 0"]
    # One iteration searched alone, and the page of a paged search, say the same.
    assert queries.groups_page(store, "r", 0, "take key", limit=1).total == 2
    # The file rewritten with short actions is indexed again; removed, it leaves nothing behind.
    _write(free, [rollout("g3", "f2", "take key")])
    ingest(store, [str(free)])
    assert_consistent(store)
    assert store.query_df("SELECT count(*) AS n FROM search_unindexed")["n"].iloc[0] == 0
    assert queries.groups(store, "r", search="take key")["group_id"].tolist() == ["g1", "g3"]
