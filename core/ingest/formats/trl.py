"""TRL ``GRPOTrainer`` completion logs: ``{output_dir}/completions/completions_{global_step:05d}.parquet``.

Checked against huggingface/trl @ f2cd5771 (``grpo_trainer.py`` ``log()``, parquet output since v0.28.0,
log-formats.md B.3). No real file was available; the fixture is built from that layout.

Columns: ``step``, ``prompt``, ``completion``, one column per reward function, user ``log_extra``
columns, and ``advantage``.

Mapping:

- iteration: ``step`` per row. traj_id: ``{file stem}/{row number (1-based)}``.
- group_id: ``{step}:{sha1(prompt)[:12]}`` (TRL stores no group key; completions of one prompt are
  identical-prompt rows). With ``options.extra["num_generations"] = n`` the contiguous blocks of n
  rows are used instead (``{step}:block{k}``), which separates repeated prompts.
- reward columns: ``options.extra["reward_columns"]`` when given, else every numeric column except
  ``step`` and ``advantage``. They are kept per component in ``meta["reward_components"]``; a NaN
  component (a reward function that returned None for that sample) is stored as null.
- outcome: the sum of the non-NaN components, as TRL combines them (``nansum``) with the default
  weight 1 per function; with ``options.extra["reward_weights"]`` (name -> weight) a weighted sum. A row
  whose components are all NaN, or any infinite value, is an error naming the row and column.
- steps: tool-using completions are split at surviving role words (as for verl), other completions
  with ``options.splitter``; step k's state is the prompt plus the earlier steps.
- meta: ``advantage`` (GRPO's per-completion advantage) and every other column; ``split`` is
  ``options.split`` or ``train`` (TRL logs training batches only).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import IngestError
from core.ingest.base import AdapterOptions, Rollouts
from core.ingest.formats._frames import FrameBuilder, text_key
from core.ingest.formats._steps import render_prompt, turns_or_split
from core.ingest.split import validate_splitter

if TYPE_CHECKING:
    import pandas as pd

NAME = "trl"
PRIORITY = 20
CHECKED_AGAINST = "huggingface/trl f2cd5771 (GRPOTrainer log_completions parquet, v0.28+)"

REQUIRED_COLUMNS: tuple[str, ...] = ("step", "prompt", "completion")
_NOT_REWARDS = frozenset({"step", "advantage"})


def detect(path: Path, head: bytes) -> str | None:
    """Accept a parquet file whose schema has ``step``, ``prompt`` and ``completion`` columns."""
    if path.suffix != ".parquet":
        return "not a .parquet file"
    try:
        import pyarrow as pa  # imported here: detection runs for every file, pyarrow costs ~0.2 s to import
        import pyarrow.parquet as pq

        names = set(pq.read_schema(path).names)
    except (pa.ArrowException, OSError) as exc:
        return f"unreadable parquet schema ({exc})"
    missing = [column for column in REQUIRED_COLUMNS if column not in names]
    return f"parquet lacks columns {'/'.join(missing)}" if missing else None


def _reward_columns(frame: pd.DataFrame, options: AdapterOptions, path: Path) -> list[str]:
    """The configured reward columns, else every numeric column except step/advantage."""
    import pandas as pd  # imported here: a native JSONL load never needs pandas

    configured = options.extra.get("reward_columns")
    if configured is not None:
        absent = [column for column in configured if column not in frame.columns]
        if absent:
            raise IngestError(str(path), f"reward_columns not in the file: {', '.join(absent)}")
        return list(configured)
    return [
        column
        for column in frame.columns
        if column not in _NOT_REWARDS
        and pd.api.types.is_numeric_dtype(frame[column])
        and not pd.api.types.is_bool_dtype(frame[column])
    ]


def _outcome(components: dict[str, float | None], weights: dict[str, float], path: Path, row: int) -> float:
    """Weighted sum of the non-NaN components (TRL's nansum); all-NaN is an error."""
    present = {name: value for name, value in components.items() if value is not None}
    if not present:
        raise IngestError(str(path), "every reward column is NaN, so the total is undefined", row, "reward columns")
    return sum(value * weights.get(name, 1.0) for name, value in present.items())


def _components(record: dict[str, Any], columns: list[str], path: Path, row: int) -> dict[str, float | None]:
    """Per-function rewards of one row; NaN -> None, infinities -> error."""
    components: dict[str, float | None] = {}
    for column in columns:
        value = record[column]
        if value is None or (isinstance(value, float) and math.isnan(value)):
            components[column] = None
        elif isinstance(value, int | float) and math.isfinite(value):
            components[column] = float(value)
        else:
            raise IngestError(str(path), f"reward must be a finite number, got {value!r}", row, column)
    return components


def _group_ids(frame: pd.DataFrame, options: AdapterOptions, path: Path) -> list[str]:
    """Per-row group ids: contiguous ``num_generations`` blocks within each step, else identical prompts."""
    generations = options.extra.get("num_generations")
    if generations is None:
        pairs = zip(frame["step"], frame["prompt"], strict=True)
        return [f"{step}:{text_key(render_prompt(prompt))}" for step, prompt in pairs]
    if not isinstance(generations, int) or generations < 1:
        raise IngestError(str(path), f"num_generations must be a positive integer, got {generations!r}")
    position_in_step = frame.groupby("step", sort=False).cumcount()
    pairs = zip(frame["step"], position_in_step, strict=True)
    return [f"{step}:block{position // generations}" for step, position in pairs]


def read(path: Path, options: AdapterOptions) -> Rollouts:
    """Read one TRL completions parquet; see the module docstring for the mapping.

    Raises:
        IngestError: Unreadable parquet, missing columns, non-string completions, infinite rewards or
            rows whose rewards are all NaN (naming the 1-based row and column).
    """
    import pandas as pd  # imported here: a native JSONL load never needs pandas
    import pyarrow.parquet as pq

    validate_splitter(options.splitter)
    try:
        table = pq.read_table(path)
        table.validate(full=True)  # a damaged page can hold bad UTF-8 that pandas would only trip over later
        frame = table.to_pandas()
    except Exception as exc:  # noqa: BLE001 - a damaged file fails in pyarrow, in its pandas metadata, anywhere
        raise IngestError(str(path), f"cannot read parquet ({type(exc).__name__}: {exc})") from exc
    missing = [column for column in REQUIRED_COLUMNS if column not in frame.columns]
    if missing:
        raise IngestError(str(path), f"missing columns {', '.join(missing)}")
    if frame.empty:
        raise IngestError(str(path), "file holds no rows")
    reward_columns = _reward_columns(frame, options, path)
    weights = dict(options.extra.get("reward_weights") or {})
    group_ids = _group_ids(frame, options, path)
    builder = FrameBuilder()
    for index, record in enumerate(frame.to_dict(orient="records")):
        row = index + 1
        completion = record["completion"]
        if not isinstance(completion, str):
            raise IngestError(str(path), f"expected text, got {type(completion).__name__}", row, "completion")
        step = record["step"]
        if pd.isna(step):
            raise IngestError(str(path), "step is missing", row, "step")
        prompt = render_prompt(record["prompt"])
        components = _components(record, reward_columns, path, row)
        steps, how = turns_or_split(prompt, completion, options.splitter, path, row, "completion")
        meta = {key: value for key, value in record.items() if key not in {*REQUIRED_COLUMNS, *reward_columns}}
        meta.update(reward_components=components, step_split=how)
        builder.add(
            traj_id=f"{path.stem}/{row}",
            iteration=int(step),
            group_id=group_ids[index],
            prompt=prompt,
            split=options.split or "train",
            outcome=_outcome(components, weights, path, row),
            meta=meta,
            steps=steps,
        )
    return builder.rollouts(
        options,
        run_config={"splitter": options.splitter, "trl_reward_columns": reward_columns, "trl_reward_weights": weights},
        default_run=path.parent.parent.name if path.parent.name == "completions" else path.parent.name,
    )
