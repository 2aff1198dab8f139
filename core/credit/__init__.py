"""The credit-assignment engine: recompute per-step advantages of logged rollouts under many schemes.

Usage::

    from core.credit import compute, SCHEMES
    adv = compute(steps, "gigpo", gamma=0.95, omega=1.0, mode="mean_norm")

``steps`` is a canonical step frame (any row order). To run many schemes on one frame, pass
``prepare(steps)`` instead: rows are sorted and the rollout tree is built once. Formulas follow
``shared/specs/credit-schemes.md``; each scheme's confidence (H/M/L) is in :data:`SCHEMES`.
"""

from core.credit.engine import CreditInfo, compute, compute_with_info, get_scheme
from core.credit.evaluate import (
    FirstErrorScore,
    agreement_table,
    first_error_f1,
    rank_schemes,
    roc_auc,
    sign_agreement,
    spearman,
)
from core.credit.prepared import PreparedSteps, prepare
from core.credit.registry import SCHEMES
from core.credit.spec import InvalidParameter, ParamSpec, SchemeSpec

__all__ = [
    "SCHEMES",
    "CreditInfo",
    "FirstErrorScore",
    "InvalidParameter",
    "ParamSpec",
    "PreparedSteps",
    "SchemeSpec",
    "agreement_table",
    "compute",
    "compute_with_info",
    "first_error_f1",
    "get_scheme",
    "prepare",
    "rank_schemes",
    "roc_auc",
    "sign_agreement",
    "spearman",
]
