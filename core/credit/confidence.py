"""SCOPE-style step confidence weighting (confidence L: reconstructed, see below).

Reconstruction. SCOPE (Wang et al., arXiv 2512.15146, "Beyond Majority Voting") scores each reasoning step
by the model's confidence in its own tokens and uses it to weigh reasoning paths. No official code was
read. Here a step's credit is its base advantage (GRPO, Dr.GRPO or RLOO on the outcome) multiplied by
the step's confidence c_t in [0, 1], computed from the log-probabilities of the tokens the policy sampled:

- ``confidence="mean_prob"``: the mean token probability ``mean_i exp(logp_i)``;
- ``confidence="geo_mean"``: ``exp(mean_i logp_i)``, the geometric mean (what a per-step sum of
  log-probabilities and a token count give).

With ``relative=True`` confidences are divided by their trajectory's mean, which keeps a trajectory's
total credit and only moves it between steps.

Inputs, in order of preference (the notes say which was used):

1. per-token log-probs of the step: the per-step summaries ``token_mean_prob`` / ``token_mean_logprob`` that
   ``core.store.queries.steps(with_token_stats=True)`` computes from the stored ``token_logprobs`` arrays, or a
   ``token_logprobs`` column holding one list per step (frames built in Python);
2. the per-step sum ``logp_policy`` divided by ``n_tokens``: only the geometric mean can be formed, so
   ``mean_prob`` falls back to it;
3. ``logp_policy`` without ``n_tokens``: the step counts as one token, so c_t is the probability of the
   whole step (shorter steps look more confident).
"""

from __future__ import annotations

import numpy as np

from core.credit.dense import complete_column
from core.credit.ops import leave_one_out, segment_sum
from core.credit.outcome import group_advantage
from core.credit.prepared import PreparedSteps
from core.errors import MissingInput
from core.schema import TOKEN_STAT_INPUTS

TOKEN_LOGPROBS = "token_logprobs"
"""Column holding each step's per-token log-probabilities (a list per row) when the log carries them."""


def _from_token_lists(prep: PreparedSteps, confidence: str) -> np.ndarray:
    """Confidence per sorted row from per-token log-prob lists; a step without tokens is NaN."""
    lists = prep.frame[TOKEN_LOGPROBS].to_numpy()[prep.order]
    arrays = [
        np.asarray(v, dtype=np.float64) if isinstance(v, list | tuple | np.ndarray) else np.zeros(0) for v in lists
    ]
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    flat = np.concatenate(arrays) if arrays else np.zeros(0)
    owner = np.repeat(np.arange(prep.n), lengths)
    values = np.exp(flat) if confidence == "mean_prob" else flat
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = segment_sum(values, owner, prep.n) / lengths
    return mean if confidence == "mean_prob" else np.exp(mean)


def _complete_or_refuse(values: np.ndarray, source: str) -> np.ndarray:
    missing = int(np.isnan(values).sum())
    if missing:
        # Mixing per-token confidences with a fallback on other steps would put two scales in one run.
        raise MissingInput(f"scheme 'scope' needs token log-probs on every step; {missing} steps have none in {source}")
    return values


def step_confidence(prep: PreparedSteps, notes: list[str], confidence: str) -> np.ndarray:
    """Confidence c_t in [0, 1] per sorted row, from the best log-prob input available (see module docstring)."""
    mean_prob, mean_logprob = TOKEN_STAT_INPUTS
    if prep.has(mean_prob) and prep.has(mean_logprob):
        column = mean_prob if confidence == "mean_prob" else mean_logprob
        values = _complete_or_refuse(prep.floats(column), f"'{column}'")
        notes.append(f"confidence = {confidence} of the stored per-token log-probs")
        return values if confidence == "mean_prob" else np.exp(values)
    if TOKEN_LOGPROBS in prep.frame.columns and prep.has(TOKEN_LOGPROBS):
        conf = _complete_or_refuse(_from_token_lists(prep, confidence), f"'{TOKEN_LOGPROBS}'")
        notes.append(f"confidence = {confidence} of the per-token log-probs in '{TOKEN_LOGPROBS}'")
        return conf
    if not prep.has("logp_policy"):
        raise MissingInput(
            "scheme 'scope' needs token log-probabilities: per-token lists in column "
            f"'{TOKEN_LOGPROBS}', or per-step sums in 'logp_policy' (with 'n_tokens'); the log has neither"
        )
    total = complete_column(prep, "logp_policy", "scope")
    if prep.has("n_tokens"):
        tokens = np.maximum(complete_column(prep, "n_tokens", "scope"), 1.0)
        how = "exp(logp_policy / n_tokens), the geometric mean token probability"
    else:
        tokens = np.ones(prep.n)
        how = "exp(logp_policy): no n_tokens, so each step counts as one token (probability of the whole step)"
    fallback = " (mean_prob needs per-token log-probs)" if confidence == "mean_prob" else ""
    notes.append(f"no per-token log-probs: confidence = {how}{fallback}")
    return np.exp(total / tokens)


def scope(prep: PreparedSteps, notes: list[str], *, base: str, confidence: str, relative: bool) -> np.ndarray:
    """Base outcome advantage × step confidence (see the module docstring)."""
    conf = step_confidence(prep, notes, confidence)
    if relative:
        mean = segment_sum(conf, prep.traj, prep.n_traj) / prep.traj_len
        conf = conf / np.maximum(mean[prep.traj], 1e-12)
    if base == "rloo":
        advantage = leave_one_out(prep.traj_outcome, prep.traj_group, prep.n_groups)[prep.traj]
    else:
        advantage = group_advantage(prep, prep.traj_outcome, std=base == "grpo", stats_over="trajectories")
    return advantage * conf
