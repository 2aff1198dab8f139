"""End-to-end PRM check on a GPU machine: ingest, ``creditscope rescore`` twice (the second from the cache),
and the demo PRM's GPU scores (bf16, no padding mask) against its CPU scores (fp32) on the whole run.

    python bench/prm_gpu_check.py            # needs CUDA; --device cpu runs it anywhere
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

from core.cli import main as cli
from core.prm.rescore import Scope, load_trajectories
from core.prm.scorer import Scorer
from core.store.database import Store

ROOT = Path(__file__).resolve().parents[1]
DEMO = str(ROOT / "sample_data" / "models" / "demo-prm")
RUN_FILE = str(ROOT / "sample_data" / "runs" / "arithmetic.jsonl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    db = str(Path(tempfile.mkdtemp()) / "check.duckdb")
    assert cli(["ingest", RUN_FILE, "--db", db, "--run", "arith"]) == 0
    rescore = ["rescore", "--db", db, "--run", "arith", "--model", DEMO, "--family", "token-cls"]
    for attempt in (1, 2):
        started = time.perf_counter()
        assert cli([*rescore, "--device", args.device]) == 0
        print(f"rescore #{attempt}: {time.perf_counter() - started:.1f}s", flush=True)

    store = Store.open(db)
    _, _, trajectories = load_trajectories(store, "arith", Scope())
    store.close()
    device = Scorer.load(DEMO, "token-cls", device=args.device)
    reference = Scorer.load(DEMO, "token-cls", device="cpu")
    pairs = zip(device.score(trajectories), reference.score(trajectories), strict=True)
    gaps = [abs(x - y) for a, b in pairs for x, y in zip(a.scores, b.scores, strict=True)]
    print(
        f"{args.device} ({device.model.dtype}, batch_tokens {device.batch_tokens}, padding mask "
        f"{'kept' if device._padding_mask_needed else 'dropped'}; {device.stats.padded_tokens:,} padded / "
        f"{device.stats.tokens:,} real tokens) vs cpu fp32 on {len(gaps)} steps: "
        f"max |gap| {max(gaps):.4f}, mean {sum(gaps) / len(gaps):.5f}"
    )
    assert not any(math.isnan(g) for g in gaps) and max(gaps) < 0.05, "device scores disagree with the CPU"
    print("PRM GPU CHECK OK")


if __name__ == "__main__":
    main()
