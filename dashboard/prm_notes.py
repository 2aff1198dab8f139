"""What the Rescore page says about partial scopes, as pure functions (no Streamlit) so tests can read them.

After a rescore of part of a run, ``steps.prm`` shows the new scorer on that part and the logged scores
elsewhere (``prm_source`` says which); the page says so before scoring and beside the evaluation.
"""

from __future__ import annotations

from core.prm.evaluate import SourceCoverage
from core.schema import LOGGED_PRM


def partial_scope_note(kind: str, n_scope: int, n_run: int, n_logged_outside: int) -> str | None:
    """Before scoring: what a scope smaller than the run will leave in ``steps.prm`` (None for a whole run)."""
    if kind == "run" or n_scope >= n_run:
        return None
    rest = n_run - n_scope
    outside = (
        f"the other {rest:,} keep their logged scores ({n_logged_outside:,} steps, marked `{LOGGED_PRM}` in "
        "`prm_source`)"
        if n_logged_outside
        else f"the other {rest:,} have no logged score, so their `prm` stays empty"
    )
    return (
        f"This {kind} is {n_scope:,} of the run's {n_run:,} trajectories. After scoring, `steps.prm` shows this "
        f"scorer on them and {outside}; the evaluation below then covers only the steps this scorer scored."
    )


def coverage_note(coverage: SourceCoverage, name: str) -> str | None:
    """Beside the evaluation: which part of the run it judges, when ``steps.prm`` mixes sources (else None)."""
    if not coverage.partial:
        return None
    others = ", ".join(
        f"{n:,} {'with no score' if source is None else 'logged' if source == LOGGED_PRM else f'from {source}'}"
        for source, n in sorted(coverage.other_sources.items(), key=lambda kv: -kv[1])
    )
    return (
        f"Judged on the {coverage.n_steps:,} steps of {coverage.n_trajectories:,} of {coverage.n_run_trajectories:,} "
        f"trajectories that {name} scored. The run's other steps ({others}) are left out: their `prm` is "
        "not this scorer's."
    )
