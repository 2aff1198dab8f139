"""Registry entries of the step-level schemes (graph, tree, progress, dense and learned signals)."""

from __future__ import annotations

from core.credit import dense, progress, salt, spa, tree
from core.credit.outcome import gra
from core.credit.spec import ParamSpec, SchemeSpec, gamma_param

SOURCE = ParamSpec(
    "source",
    str,
    "tree",
    "state values from the rollout tree's Monte-Carlo values or from the prm column",
    choices=("tree", "prm"),
)
OUTPUT = ParamSpec(
    "output",
    str,
    "advantage",
    "advantage = the paper's last stage (PPO/GAE on the step rewards), reward = the step rewards alone",
    choices=("advantage", "reward"),
)
RECONSTRUCTED = (
    "Reconstructed from the paper's abstract (confidence L): no official code was found; verify before citing. "
)

STEP_SCHEMES: tuple[SchemeSpec, ...] = (
    SchemeSpec(
        "salt",
        "SALT",
        "arXiv 2510.20022 (Step-level Advantage Assignment via Trajectory Graph)",
        "L",
        ("action",),
        ("state",),
        (
            ParamSpec(
                "base",
                str,
                "grpo",
                RECONSTRUCTED + "trajectory advantage averaged over a node",
                choices=("grpo", "rloo"),
            ),
            ParamSpec(
                "node",
                str,
                "state_action",
                RECONSTRUCTED + "node identity: same (state, action) or same prefix",
                choices=("state_action", "prefix"),
            ),
            ParamSpec(
                "mix",
                float,
                0.0,
                RECONSTRUCTED + "weight of the step's own trajectory advantage mixed back in",
                low=0.0,
                high=1.0,
            ),
        ),
        salt.salt,
        RECONSTRUCTED + "A step's advantage is the mean base advantage of the distinct trajectories sharing its node.",
    ),
    SchemeSpec(
        "treeps",
        "TreePS-RAG",
        "arXiv 2601.06922 (tree-based process supervision for agentic RAG)",
        "L",
        (),
        ("node_id", "parent_id", "action"),
        (
            ParamSpec(
                "normalize",
                str,
                "none",
                RECONSTRUCTED + "standardise node advantages over the group's tree",
                choices=("none", "tree"),
            ),
            ParamSpec(
                "traj_weight",
                float,
                0.0,
                RECONSTRUCTED + "weight of the trajectory's GRPO advantage added",
                low=0.0,
                high=10.0,
            ),
        ),
        tree.treeps,
        RECONSTRUCTED
        + "V(n) = mean outcome of trajectories through node n; advantage V(n) - V(parent). Without node_id "
        "the prefix tree implied by shared action prefixes is used.",
    ),
    SchemeSpec(
        "treerl",
        "TreeRL",
        "Hou et al. ACL 2025 (TreeRL); THUDM/TreeRL tree_node.py + parallel_mcts.py",
        "H",
        (),
        ("node_id", "parent_id", "action"),
        (
            ParamSpec(
                "variant",
                str,
                "code",
                "official training-script path (default: what was trained) or the "
                "paper's (2V(n) - V(parent) - V(root))/sqrt(leaves)",
                choices=("code", "paper"),
            ),
        ),
        tree.treerl,
        "Segment advantage from leave-one-out leaf rewards backed up the rollout tree (code) or the paper formula.",
    ),
    SchemeSpec(
        "portool",
        "PORTool",
        "arXiv 2510.26020 (rewarded tree for tool-use LLMs)",
        "L",
        (),
        ("node_id", "parent_id", "action", "valid"),
        (
            ParamSpec(
                "correctness",
                str,
                "max",
                RECONSTRUCTED + "descendant correctness: best or mean outcome below the step",
                choices=("max", "mean"),
            ),
            ParamSpec(
                "tool_bonus",
                float,
                0.1,
                RECONSTRUCTED + "reward for a step whose tool call succeeded (valid)",
                low=0.0,
                high=10.0,
            ),
            ParamSpec(
                "fork_weight", float, 1.0, RECONSTRUCTED + "weight of the fork-relative advantage", low=0.0, high=10.0
            ),
        ),
        tree.portool,
        RECONSTRUCTED + "Trajectory GRPO advantage plus fork_weight x step reward standardised among its siblings.",
    ),
    SchemeSpec(
        "pav",
        "PAV (process advantage verifier)",
        "Setlur et al. 2024 (Rewarding Progress, arXiv 2410.08146)",
        "M",
        (),
        ("prm", "node_id", "action"),
        (
            ParamSpec(
                "alpha",
                float,
                1.0,
                "weight of the prover's progress (paper's RL value not verified)",
                low=0.0,
                high=100.0,
            ),
            ParamSpec(
                "source",
                str,
                "auto",
                "prover mu: auto = the PRM's scores when the log has them, else best_of_k; prm; best_of_k "
                "(pass@K of the policy from the state, the paper's complementary prover); policy (mu = pi, the "
                "policy's own success rate, which the paper argues against). All give P(success) in [0, 1]",
                choices=("auto", "prm", "best_of_k", "policy"),
            ),
            ParamSpec("k", int, 4, "K of the Best-of-K prover", low=1, high=1024),
            ParamSpec(
                "success_threshold",
                float,
                0.5,
                "outcome (>=) that counts as success for the tree-based provers",
                low=-1e9,
                high=1e9,
            ),
            ParamSpec(
                "outcome_term",
                str,
                "centred",
                "trajectory part: R - group mean, GRPO, or none",
                choices=("centred", "grpo", "none"),
            ),
        ),
        progress.pav,
        "Outcome advantage + alpha x (V(s_{h+1}) - V(s_h)) under a prover distinct from the policy by default: "
        "a PRM's scores (V before the first step: the group's mean first-step score), or Best-of-K of the "
        "policy over the rollout tree; mu = pi is an option. Every prover's values are success probabilities.",
    ),
    SchemeSpec(
        "gra",
        "G-RA (gated reward accumulation)",
        "Sun et al. 2025 (arXiv 2508.10548)",
        "M",
        ("reward",),
        (),
        (
            ParamSpec("threshold", float, 0.5, "outcome level (>=) that opens the gate", low=-1e9, high=1e9),
            ParamSpec("gated", bool, True, "G-RA; False gives direct accumulation (D-RA)"),
            ParamSpec("std", bool, True, "GRPO std normalisation of the accumulated totals"),
            ParamSpec(
                "terminal",
                str,
                "auto",
                "the last step's reward when the log also holds the outcome there: auto = drop it where it "
                "equals the outcome (else the outcome counts twice), exclude = always drop it, include = keep it",
                choices=("auto", "exclude", "include"),
            ),
        ),
        gra,
        "Trajectory total R_out + 1[R_out >= threshold] x sum of immediate step rewards, then GRPO over the "
        "group. A terminal reward that repeats the outcome is not an immediate reward (parameter terminal).",
    ),
    SchemeSpec(
        "spa",
        "SPA-RL (stepwise progress attribution)",
        "Wang et al. 2025 (arXiv 2505.20732); SPA-RL-Agent",
        "M",
        ("action",),
        ("valid",),
        (
            ParamSpec(
                "grounding",
                float,
                0.5,
                "weight of the grounding signal (code: 0.5 per executable action)",
                low=0.0,
                high=10.0,
            ),
            ParamSpec("ridge", float, 1.0, "L2 penalty of the progress estimator fit", low=1e-9, high=1e6),
            ParamSpec("code_weighting", bool, False, "multiply step t by (T - t - 1) like the released PPO trainer"),
            OUTPUT,
            gamma_param(1.0, "GAE discount of the step-level PPO (TRL PPOTrainer default 1.0)"),
            ParamSpec("lam", float, 0.95, "GAE lambda (TRL PPOTrainer default 0.95)", low=0.0, high=1.0),
        ),
        spa.spa,
        "Progress estimator fitted on the loaded data (ridge on action identity) so contributions sum to the "
        "outcome; step reward = contribution + grounding x (valid or last step); by default the paper's "
        "step-level PPO advantage on it (GAE with the logged critic, V = 0 without one, whitened).",
    ),
    SchemeSpec(
        "vsrm",
        "VSRM (verifiable stepwise reward)",
        "1benwu1/VSRM-Efficient-LRMs compute_step_reward",
        "H",
        (),
        ("node_id", "action", "prm"),
        (
            gamma_param(0.7, "discount of a look-ahead change (0.7 in the code)"),
            ParamSpec("lookahead", int, 4, "maximum flat steps to look across (4, hard-coded)", low=0, high=1000),
            SOURCE,
            OUTPUT,
            ParamSpec("ppo_gamma", float, 1.0, "GAE discount of the PPO stage (verl default 1.0)", low=0.0, high=1.0),
            ParamSpec("lam", float, 1.0, "GAE lambda of the PPO stage (verl default 1.0)", low=0.0, high=1.0),
        ),
        progress.vsrm,
        "Change in the accuracy of the state across each step, looking ahead over flat steps; accuracies are "
        "the rollout tree's Monte-Carlo values (group mean outcome before the first step). By default the "
        "official training path follows: the outcome overwrites the last step's reward, then GAE (logged "
        "critic, V = 0 without one) whitened per batch.",
    ),
    SchemeSpec(
        "mc_value",
        "Math-Shepherd MC estimate",
        "Wang et al. 2024 (Math-Shepherd)",
        "M",
        (),
        ("node_id", "action"),
        (
            ParamSpec(
                "estimate",
                str,
                "soft",
                "soft = share of continuations that succeed; hard = any succeeds",
                choices=("soft", "hard"),
            ),
            ParamSpec("success_threshold", float, 0.5, "outcome (>=) that counts as correct", low=-1e9, high=1e9),
        ),
        progress.mc_value,
        "Probability-like label of each step from the outcomes of the trajectories continuing its prefix.",
        score_kind="probability",
    ),
    SchemeSpec(
        "prm",
        "PRM scores",
        "Lightman et al. 2023; Math-Shepherd; spec section 11b",
        "H",
        ("prm",),
        (),
        (
            ParamSpec(
                "dense",
                str,
                "score",
                "per-step reward p_i, telescoping p_i - p_(i-1), or none "
                "(aggregate per trajectory, centred on the group)",
                choices=("score", "delta", "none"),
            ),
            ParamSpec(
                "aggregate", str, "min", "trajectory score when dense='none'", choices=("min", "last", "prod", "mean")
            ),
        ),
        dense.prm,
        "Process-reward-model scores as dense step rewards or aggregated into a trajectory score.",
        score_kind_for=lambda p: "probability" if p["dense"] == "score" else "advantage",
    ),
    SchemeSpec(
        "gae",
        "GAE (critic)",
        "Schulman et al. 2016; verl compute_gae_advantage_return",
        "H",
        (),
        ("reward", "value", "prm"),
        (
            gamma_param(1.0, "discount (verl default 1.0)"),
            ParamSpec("lam", float, 1.0, "GAE lambda (verl default 1.0; TRL/OpenRLHF 0.95)", low=0.0, high=1.0),
            ParamSpec(
                "value_source",
                str,
                "value",
                "critic values from the value column or PRM scores",
                choices=("value", "prm"),
            ),
            ParamSpec("whiten_batches", bool, True, "whiten advantages per (run, iteration) like verl"),
        ),
        dense.gae,
        "delta_t = r_t + gamma V_(t+1) - V_t, A_t = delta_t + gamma lam A_(t+1), one value per step.",
    ),
    SchemeSpec(
        "mc_return",
        "Monte-Carlo return",
        "discounted return G_t = sum_k gamma^k r_(t+k)",
        "H",
        (),
        ("reward",),
        (gamma_param(1.0, "discount"),),
        dense.mc_return,
        "Discounted return of each step (rewards, or the outcome on the last step), no baseline.",
    ),
)
"""Schemes whose credit varies between the steps of one trajectory (plus G-RA, which gates step rewards)."""
