"""state_graph and cluster_states: anchor states, transitions, loops, similarity merging."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tree_frames import AGENT_PATHS, build_steps

from core.errors import MissingInput
from core.trees import cluster_states, state_graph


def node_for(graph, room: str) -> str:
    return next(n for n, text in graph.nodes(data="state") if text == f"You are in room {room}.")


def test_one_node_per_distinct_state_with_visits_and_outcome_mix(agent_steps: pd.DataFrame) -> None:
    graph = state_graph(agent_steps)
    assert len(graph) == 5
    s0, s1, s3 = node_for(graph, "S0"), node_for(graph, "S1"), node_for(graph, "S3")
    assert graph.graph["starts"] == [s0]
    assert graph.nodes[s0]["visits"] == 5 and graph.nodes[s0]["occurrences"] == 6  # E comes back to S0
    assert graph.nodes[s0]["value"] == pytest.approx(3 / 5)
    assert (graph.nodes[s1]["n_success"], graph.nodes[s1]["n_fail"]) == (3, 1)  # A, B, E succeed; D fails
    assert graph.nodes[s3]["trajs"] == ["B", "C"] and graph.nodes[s3]["occurrences"] == 3
    assert sum(d["leaves"] for _, d in graph.nodes(data=True)) == len(AGENT_PATHS)


def test_transitions_count_actions_and_keep_loops(agent_steps: pd.DataFrame) -> None:
    graph = state_graph(agent_steps)
    s0, s1, s2, s3, s4 = (node_for(graph, f"S{i}") for i in range(5))
    assert graph.number_of_edges() == 8
    assert graph.edges[s0, s1]["count"] == 3
    assert graph.edges[s0, s1]["actions"] == {"go north": 2, "go N": 1}
    assert graph.edges[s1, s2]["trajs"] == ["A", "B", "E"]
    assert graph.has_edge(s3, s3) and graph.edges[s3, s3]["actions"] == {"wait": 1}  # C waits in place
    assert graph.has_edge(s0, s4) and graph.has_edge(s4, s0)  # E's cycle
    total_transitions = sum(len(states) - 1 for states, _, _ in AGENT_PATHS.values())
    assert sum(c for _, _, c in graph.edges(data="count")) == total_transitions


def test_terminal_nodes_show_last_actions(agent_steps: pd.DataFrame) -> None:
    graph = state_graph(agent_steps, terminals=True)
    assert len(graph) == 7
    success, fail = graph.nodes["end: success"], graph.nodes["end: fail"]
    assert success["visits"] == 3 and fail["visits"] == 2 and success["kind"] == "terminal"
    assert graph.edges[node_for(graph, "S2"), "end: success"]["actions"] == {"open door": 3}


def test_quantity_is_averaged_over_all_occurrences(agent_steps: pd.DataFrame) -> None:
    values = agent_steps["step_idx"].to_numpy(dtype=float)
    graph = state_graph(agent_steps, quantity="step index", values=values)
    s0 = graph.nodes[node_for(graph, "S0")]
    # S0 rows: step 0 of A..E, and step 2 of E.
    assert s0["q_count"] == 6 and s0["q_mean"] == pytest.approx(2 / 6)


def test_similarity_merges_near_identical_states() -> None:
    base = "You stand in the hall. A locked door is to the north; a key lies on the table."
    steps = build_steps(
        {
            "a": {
                "outcome": 1,
                "steps": [{"state": base, "action": "take key"}, {"state": "You hold a key.", "action": "go"}],
            },
            "b": {
                "outcome": 0,
                "steps": [{"state": base + " ", "action": "go"}, {"state": "Dark room.", "action": "x"}],
            },
        }
    )
    assert len(state_graph(steps)) == 4
    merged = state_graph(steps, similarity=0.9)
    assert len(merged) == 3
    hall = next(n for n, d in merged.nodes(data=True) if d["n_variants"] == 2)
    assert merged.nodes[hall]["state"] == base and merged.nodes[hall]["visits"] == 2
    assert merged.graph["similarity"] == 0.9 and "LCS" in merged.graph["similarity_method"]


def test_cluster_states_is_greedy_against_first_members() -> None:
    texts = ["aaaaaaaaab", "aaaaaaaabb", "aaaaaaabbb", "zzzz", "aaaaaaaaab"]
    labels, representatives = cluster_states(texts, similarity=0.85)
    # "aaaaaaabbb" is 0.8 similar to the first member, so it starts its own cluster even though it is
    # 0.9 similar to the second text (GiGPO compares with the representative only).
    assert list(labels) == [0, 0, 1, 2, 0]
    assert representatives == ["aaaaaaaaab", "aaaaaaabbb", "zzzz"]
    exact, _ = cluster_states(texts)
    assert list(exact) == [0, 1, 2, 3, 0]
    with pytest.raises(ValueError):
        cluster_states(texts, similarity=1.5)


def test_missing_states_join_the_initial_node_or_stand_alone(agent_steps: pd.DataFrame) -> None:
    steps = agent_steps.copy()
    first_rows = steps.index[steps["step_idx"] == 0]
    steps.loc[first_rows, "state"] = None  # adapters often leave the initial observation (the prompt) out
    later = steps.index[(steps["traj_id"] == "C") & (steps["step_idx"] == 2)][0]
    steps.loc[later, "state"] = None
    graph = state_graph(steps)
    assert graph.graph["starts"] == ["s:initial"]
    assert graph.nodes["s:initial"]["visits"] == 5 and graph.nodes["s:initial"]["occurrences"] == 5
    assert graph.nodes[f"s:unlogged:{later}"]["visits"] == 1
    # E's return to S0 is still logged, so the S0 node keeps that one occurrence.
    assert graph.nodes[node_for(graph, "S0")]["occurrences"] == 1
    assert len(graph) == 7  # initial, S0..S4, and C's unlogged last state
    with pytest.raises(MissingInput, match="none of the"):
        state_graph(steps.assign(state=None))
    with pytest.raises(MissingInput):
        state_graph(agent_steps.drop(columns=["state"]))


def test_shuffled_rows_give_the_same_graph(agent_steps: pd.DataFrame) -> None:
    shuffled = agent_steps.sample(frac=1.0, random_state=3)
    first, second = state_graph(agent_steps), state_graph(shuffled)
    assert set(first.edges) == set(second.edges)
    assert {n: d["visits"] for n, d in first.nodes(data=True)} == {n: d["visits"] for n, d in second.nodes(data=True)}
    assert {n: d["leaves"] for n, d in first.nodes(data=True)} == {n: d["leaves"] for n, d in second.nodes(data=True)}


def _lcs(a: str, b: str) -> int:
    row = [0] * (len(b) + 1)
    for x in a:
        diagonal = 0
        for j, y in enumerate(b, start=1):
            diagonal, row[j] = row[j], diagonal + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def _reference_clusters(texts: list[str], similarity: float) -> list[int]:
    """GiGPO's greedy rule written out: first cluster whose first member is >= similarity (2 LCS / total length)."""
    reps: list[str] = []
    labels = []
    for text in texts:
        total = [len(text) + len(rep) for rep in reps]
        hit = next(
            (i for i, rep in enumerate(reps) if (2 * _lcs(text, rep) / total[i] if total[i] else 1.0) >= similarity),
            None,
        )
        if hit is None:
            hit = len(reps)
            reps.append(text)
        labels.append(hit)
    return labels


@pytest.mark.parametrize("similarity", [0.5, 0.8, 0.9, 0.95, 1.0])
def test_cluster_states_follows_the_greedy_rule_exactly(similarity: float) -> None:
    rng = np.random.default_rng(int(similarity * 100))
    alphabet = list("abcdefghij klmnop,.")
    bases = ["".join(rng.choice(alphabet, size=int(rng.integers(5, 60)))) for _ in range(8)]
    texts = []
    for _ in range(120):
        chars = list(bases[int(rng.integers(0, len(bases)))])
        for _ in range(int(rng.integers(0, 8))):  # a few random edits: some texts land exactly on the threshold
            pos = int(rng.integers(0, len(chars) + 1))
            op = rng.integers(0, 3)
            if op == 0:
                chars.insert(pos, str(rng.choice(alphabet)))
            elif chars and pos < len(chars):
                if op == 1:
                    del chars[pos]
                else:
                    chars[pos] = str(rng.choice(alphabet))
        texts.append("".join(chars))
    texts += ["", "", "aaaa", "aaab"]  # empty texts (similarity 1 with each other) and an exact 0.75 tie
    labels, _ = cluster_states(texts, similarity=similarity)
    assert labels.tolist() == _reference_clusters(texts, similarity)
