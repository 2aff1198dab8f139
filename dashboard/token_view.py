"""The Trajectory page's token view: which value colours the tokens, and where the tokens come from.

Logged per-token arrays (``tokens``, ``token_logprobs``, ...; see ``core.store.queries.step_tokens``) are used
as they are. A step whose log has only text is split by a local tokenizer (default: the demo PRM's), so a
scheme's step credit and the PRM what-if can still be shown token by token.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import streamlit as st

from core.schema import TOKEN_COLUMN_NAMES
from core.serving import ServeAccess
from dashboard import resources as res
from dashboard.figures.tokens_html import (
    CREDIT,
    LOGGED_MODES,
    LOGPROB,
    WHATIF,
    legend_html,
    scale_for,
    token_block,
    token_spans,
    token_values,
)
from dashboard.formatting import md_escape
from dashboard.prm_panel import DEMO_PRM
from dashboard.whatif import RESULT_KEY

OFF = "off"
MODE_KEY, TOKENIZER_KEY = "traj_token_mode", "traj_tokenizer"


@st.cache_resource(show_spinner=False, max_entries=4)
def load_tokenizer(folder: str):  # noqa: ANN201 - a tokenizers.Tokenizer (imported lazily)
    """A local fast tokenizer (``tokenizer.json`` in a model folder); nothing is downloaded."""
    from tokenizers import Tokenizer

    file = Path(folder) / "tokenizer.json"
    if not file.is_file():
        raise FileNotFoundError(f"no tokenizer.json in {folder!r}")
    return Tokenizer.from_file(str(file))


def split_text(tokenizer, text: str) -> list[str]:  # noqa: ANN001 - a tokenizers.Tokenizer
    """``text`` cut at the tokenizer's token boundaries; the pieces join back to exactly ``text``.

    Characters between two tokens (spaces the tokenizer drops) go with the following token, as a leading
    space does in most vocabularies; whatever follows the last token goes with it.
    """
    offsets = [(a, b) for a, b in tokenizer.encode(text, add_special_tokens=False).offsets if b > a]
    if not offsets:
        return [text] if text else []
    starts = [0] + [a for a, _ in offsets[1:]]
    ends = [a for a, _ in offsets[1:]] + [len(text)]
    return [text[s:e] for s, e in zip(starts, ends, strict=True) if e > s]


def _logged(frame: pd.DataFrame, columns: tuple[str, ...]) -> bool:
    return all(column in frame and frame[column].notna().any() for column in columns)


def _what_if(run: str, traj_id: str) -> tuple[dict[int, str], dict[int, float]] | None:
    """Edited texts and new − old PRM score per step of the stored what-if of this trajectory, if any."""
    stored = st.session_state.get(RESULT_KEY)
    if stored is None or stored[0] != run or stored[1].traj_id != traj_id:
        return None
    result = stored[1]
    table = result.comparison()
    delta = dict(zip(table["step_idx"].astype(int), table["new_prm"] - table["old_prm"], strict=True))
    return dict(zip(result.step_idx, result.edited.steps, strict=True)), delta


def token_view(
    path: str, run: str, traj_id: str, steps: pd.DataFrame, credit: dict[int, float], scheme: str
) -> tuple[dict[int, str], dict[int, str]] | None:
    """Draw the token controls and legend; return each step's coloured first line and whole action, or None (off)."""
    arrays = res.trajectory_tokens(path, run, traj_id).set_index("step_idx")
    modes = [mode for mode, needs in LOGGED_MODES.items() if _logged(arrays, needs)]
    what_if = _what_if(run, traj_id)
    options = [OFF, *modes, CREDIT, *([WHATIF] if what_if else [])]
    names = {CREDIT: f"step credit ({scheme})"}
    left, right = st.columns([2, 3])
    mode = left.selectbox(
        "Colour tokens by",
        options,
        index=options.index(LOGPROB) if LOGPROB in options else 0,
        key=MODE_KEY,
        format_func=lambda m: names.get(m, m),
    )
    if mode == OFF:
        return None
    texts = dict(zip(steps["step_idx"].astype(int), steps["action"].fillna("").astype(str), strict=True))
    if mode == WHATIF and what_if:
        texts.update(what_if[0])
    logged_tokens = {int(i): t for i, t in arrays["tokens"].items() if t is not None} if "tokens" in arrays else {}
    # Logged tokens belong to the logged text; an edited step is split afresh.
    keep = {i: t for i, t in logged_tokens.items() if mode != WHATIF or texts[i] == "".join(t)}
    tokenizer, source = None, "tokens as logged"
    if any(i not in keep for i in texts):
        folder = right.text_input("Tokenizer for steps logged as text", value=DEMO_PRM, key=TOKENIZER_KEY)
        try:
            ServeAccess.from_env().check_model_folder(folder, shipped=(DEMO_PRM,))  # a path box, like Ingest's
            tokenizer = load_tokenizer(folder)
        except Exception as exc:  # a folder without a tokenizer: say so, keep the page
            st.warning(md_escape(f"Cannot split text into tokens: {exc}"))
            return None
        source = f"{'some' if keep else 'all'} steps split by the tokenizer in {Path(folder).name}"
    step_values = credit if mode == CREDIT else (what_if[1] if mode == WHATIF and what_if else {})
    rows: dict[int, tuple[list[str], list]] = {}
    for idx, text in texts.items():
        tokens = keep.get(idx) or split_text(tokenizer, text)
        step_arrays = {c: _cell(arrays, idx, c) for c in TOKEN_COLUMN_NAMES}
        values = token_values(mode, step_arrays, len(tokens), step_values.get(idx))
        if len(values) != len(tokens):  # arrays logged without their token texts: nothing to align them to
            values = [None] * len(tokens)
        rows[idx] = (tokens, values)
    scale = scale_for(mode, [v for _, values in rows.values() for v in values if v is not None])
    label = names.get(mode, mode)
    st.html(legend_html(scale, label, source))
    summaries = {i: token_spans(t, v, scale, label, first_line=True) for i, (t, v) in rows.items()}
    bodies = {i: token_block(t, v, scale, label) for i, (t, v) in rows.items()}
    return summaries, bodies


def _cell(arrays: pd.DataFrame, idx: int, column: str) -> list | None:
    if column not in arrays or idx not in arrays.index:
        return None
    value = arrays.at[idx, column]
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else list(value)
