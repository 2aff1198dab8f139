"""Registry entries of the schemes driven by learned or log-probability signals: implicit PRM, PRIME, PBRS, SCOPE."""

from __future__ import annotations

from core.credit import confidence, dense, prime, shaping
from core.credit.registry_step import RECONSTRUCTED
from core.credit.spec import ParamSpec, SchemeSpec, gamma_param

_BETA = ParamSpec("beta", float, 0.05, "implicit reward scale (beta_train)", low=0.0, high=100.0)

SIGNAL_SCHEMES: tuple[SchemeSpec, ...] = (
    SchemeSpec(
        "implicit_prm",
        "Implicit PRM (OPRL / iStar)",
        "OPRL (Tongyi, code name iStar); Tongyi-Character CharacterRL-iStar/istar/core_istar.py",
        "H",
        ("logp_policy", "logp_ref"),
        (),
        (
            _BETA,
            ParamSpec("weight", float, 1.0, "step_advantage_w", low=0.0, high=100.0),
            ParamSpec("normalise", bool, True, "divide by the batch's largest |reward| + 1e-6 (istar_norm=batch_norm)"),
            ParamSpec(
                "step_baseline",
                str,
                "first_step",
                "RLOO baseline of the step part: code (first step "
                "of each trajectory) or true leave-one-out over all steps",
                choices=("first_step", "all_steps"),
            ),
            ParamSpec("process_only", bool, False, "drop the outcome part (use_process_only)"),
        ),
        dense.implicit_prm,
        "OPRL/iStar's istar_rloo: beta x (logp_policy - logp_ref) per step (columns hold per-step sums of token "
        "log-probs), RLOO over the group's steps plus the RLOO outcome advantage. PRIME's own advantage is the "
        "'prime' scheme.",
    ),
    SchemeSpec(
        "prime",
        "PRIME (implicit PRM + outcome, RLOO per source)",
        "Cui et al. 2025 (PRIME); PRIME-RL/PRIME core_algos.compute_rloo_returns @ 18ad596, verl recipe/prime "
        "compute_rloo_advantage_return",
        "H",
        ("logp_policy", "logp_ref"),
        (),
        (
            _BETA,
            ParamSpec(
                "normalise",
                bool,
                True,
                "prime_norm=batch_norm: divide by the batch's largest |reward-to-go| + 1e-6",
            ),
            ParamSpec(
                "rm_weight", float, 5.0, "weight of the implicit-PRM source (reward_dpo_coef 5)", low=0.0, high=1e6
            ),
            ParamSpec(
                "outcome_weight", float, 5.0, "weight of the outcome source (reward_gt_coef 5)", low=0.0, high=1e6
            ),
            ParamSpec(
                "rm_gamma", float, 1.0, "discount of the implicit-PRM source (reward_model_gamma)", low=0.0, high=1.0
            ),
            ParamSpec(
                "outcome_gamma", float, 1.0, "discount of the outcome source (verifier_gamma)", low=0.0, high=1.0
            ),
            ParamSpec(
                "whiten_over",
                str,
                "iteration",
                "whiten the returns within each training batch (run, iteration) or over all loaded rows",
                choices=("iteration", "all"),
            ),
        ),
        prime.prime,
        "Per source (implicit PRM on every step, outcome on the last step) PRIME's leave-one-out "
        "r n/(n-1) - sum_k mean_k/(n-1) over the group, discounted per source, weighted, summed into returns "
        "and whitened per batch. Each step counts as one token.",
    ),
    SchemeSpec(
        "pbrs",
        "PBRS (potential-based reward shaping)",
        "Ng, Harada & Russell 1999 (policy invariance); Robo-Dopamine-style progress potentials",
        "M",
        (),
        ("reward", "prm", "value"),
        (
            ParamSpec(
                "potential",
                str,
                "prm",
                "potential Phi: the active PRM's score of the state after a step, or the logged critic value",
                choices=("prm", "value"),
            ),
            gamma_param(1.0, "discount of the shaping term and of the returns"),
            ParamSpec(
                "base",
                str,
                "group_baseline",
                "advantage on the shaped rewards: return-to-go minus the group's mean shaped return, whitened "
                "per batch (GRPO-family baseline); GAE with the logged critic; or the raw shaped returns",
                choices=("group_baseline", "gae", "returns"),
            ),
            ParamSpec("lam", float, 1.0, "GAE lambda (base='gae')", low=0.0, high=1.0),
        ),
        shaping.pbrs,
        "r'_t = r_t + gamma Phi(s_(t+1)) - Phi(s_t) with terminal potential 0, so every trajectory's shaped "
        "return is its unshaped return minus Phi(s_0); advantages are computed on the shaped rewards.",
    ),
    SchemeSpec(
        "scope",
        "SCOPE (step confidence weighting)",
        "Wang et al. 2025 (SCOPE, arXiv 2512.15146), step-wise confidence",
        "L",
        (),
        ("logp_policy", "n_tokens"),
        (
            ParamSpec(
                "base",
                str,
                "grpo",
                RECONSTRUCTED + "outcome advantage that the confidence scales",
                choices=("grpo", "drgrpo", "rloo"),
            ),
            ParamSpec(
                "confidence",
                str,
                "mean_prob",
                RECONSTRUCTED + "step confidence: mean token probability or exp of the mean token log-prob "
                "(mean_prob needs per-token log-probs, else the geometric mean is used and the notes say so)",
                choices=("mean_prob", "geo_mean"),
            ),
            ParamSpec(
                "relative", bool, False, "divide confidences by their trajectory's mean (keeps the total credit)"
            ),
        ),
        confidence.scope,
        RECONSTRUCTED + "A step's credit is its outcome advantage times its confidence from token log-probs; "
        "without per-token log-probs the per-step logp_policy sum (over n_tokens) is used, said in the notes.",
    ),
)
"""Schemes computed from policy log-probabilities, PRM potentials and critic values."""
