"""The scheme registry: names (part of the public contract), citations, inputs and typed parameters."""

from __future__ import annotations

from core.credit import gigpo, outcome
from core.credit.registry_signals import SIGNAL_SCHEMES
from core.credit.registry_step import STEP_SCHEMES
from core.credit.spec import ParamSpec, SchemeSpec, gamma_param

_STATS_OVER = ParamSpec(
    "stats_over",
    str,
    "trajectories",
    "group statistics over one outcome per trajectory (paper) or over step rows "
    "(verl-agent's compute_mean_std_cross_steps=True, longer trajectories weigh more)",
    choices=("trajectories", "steps"),
)
_UNIT = ParamSpec(
    "unit",
    str,
    "step",
    "what whitening counts: each step once, each trajectory once, or each token (needs column n_tokens; "
    "verl whitens over tokens)",
    choices=("step", "trajectory", "token"),
)
_WHITEN_OVER = ParamSpec(
    "whiten_over",
    str,
    "iteration",
    "whiten within each training batch (run, iteration) as verl does, or over all loaded rows",
    choices=("iteration", "all"),
)
_SCHEMES: tuple[SchemeSpec, ...] = (
    SchemeSpec(
        "grpo",
        "GRPO",
        "Shao et al. 2024 (DeepSeekMath); verl core_algos.compute_grpo_outcome_advantage",
        "H",
        (),
        (),
        (
            ParamSpec("std", bool, True, "divide by the group std (norm_adv_by_std_in_grpo, verl default True)"),
            ParamSpec("eps", float, 1e-6, "added to the std before dividing (verl 1e-6)", low=0.0, high=1.0),
            _STATS_OVER,
        ),
        outcome.grpo,
        "(R - group mean) / (group std + eps) with ddof=1, broadcast to every step. A one-trajectory group "
        "keeps its raw outcome (verl: mean 0, std 1); an all-equal group gives 0.",
    ),
    SchemeSpec(
        "drgrpo",
        "Dr.GRPO",
        "Liu et al. 2025 (Understanding R1-Zero-like training); verl norm_adv_by_std=False",
        "H",
        (),
        (),
        (_STATS_OVER,),
        outcome.drgrpo,
        "R - group mean, broadcast to every step (the loss-aggregation change of Dr.GRPO is out of scope).",
    ),
    SchemeSpec(
        "rloo",
        "RLOO",
        "Ahmadian et al. 2024; verl compute_rloo_outcome_advantage",
        "H",
        (),
        (),
        (),
        outcome.rloo,
        "R minus the mean outcome of the other trajectories of the group; a singleton keeps R.",
    ),
    SchemeSpec(
        "reinforce_pp",
        "REINFORCE++",
        "Hu 2025; verl compute_reinforce_plus_plus_outcome_advantage",
        "H",
        (),
        ("n_tokens",),
        (gamma_param(1.0, "discount of the returns (verl default 1.0)"), _UNIT, _WHITEN_OVER),
        outcome.reinforce_pp,
        "Outcome on the last step, discounted returns, then whitened over the batch (no group baseline).",
    ),
    SchemeSpec(
        "reinforce_pp_baseline",
        "REINFORCE++-baseline",
        "Hu 2025; verl compute_reinforce_plus_plus_baseline_outcome_advantage",
        "H",
        (),
        ("n_tokens",),
        (_UNIT, _WHITEN_OVER),
        outcome.reinforce_pp_baseline,
        "R - group mean (singleton: mean 0), then whitened over the batch.",
    ),
    SchemeSpec(
        "gigpo",
        "GiGPO",
        "Feng et al. 2025 (Group-in-Group Policy Optimization); verl-agent gigpo/core_gigpo.py",
        "H",
        ("state",),
        ("reward", "valid"),
        (
            gamma_param(0.95, "discount of the step returns (0.95 in every GiGPO script)"),
            ParamSpec("omega", float, 1.0, "weight of the step advantage (step_advantage_w)", low=0.0, high=100.0),
            ParamSpec(
                "mode",
                str,
                "mean_norm",
                "normalisation of both parts (config default mean_norm)",
                choices=("mean_norm", "mean_std_norm"),
            ),
            ParamSpec(
                "episode_stats",
                str,
                "steps",
                "episode mean/std over the group's step rows (code default) or one score per trajectory, its first "
                "row's (paper Eq. 3; verl-agent compute_mean_std_cross_steps=False)",
                choices=("steps", "trajectories"),
            ),
            ParamSpec(
                "invalid_penalty",
                float,
                0.1,
                "subtracted from the score and return of a step with valid=False (0.1 in the scripts)",
                low=0.0,
                high=100.0,
            ),
            ParamSpec(
                "similarity",
                float,
                0.0,
                "0 = exact anchor-state matching (default); otherwise the difflib ratio (candidate state first, "
                "cluster representative second, as verl-agent) that merges similar states (slow: Python loop "
                "over distinct states)",
                low=0.0,
                high=0.999,
            ),
        ),
        gigpo.gigpo,
        "Episode advantage over the group's rows plus omega x step advantage over anchor-state clusters "
        "(identical state text within the group) of discounted step returns; singleton clusters give 0.",
    ),
)

SCHEMES: dict[str, SchemeSpec] = {spec.name: spec for spec in (*_SCHEMES, *STEP_SCHEMES, *SIGNAL_SCHEMES)}
"""Every scheme by name; iteration order is the display order."""
