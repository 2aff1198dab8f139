"""The one-shot ingest stands alone; following is a layer above it (issue 12 item 7)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core"


def _imports(module: Path) -> set[str]:
    """Every module a file imports, at any level (including imports inside functions and TYPE_CHECKING)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_one_shot_path_never_imports_follow() -> None:
    for module in (CORE / "ingest" / "runner.py", *sorted((CORE / "store").glob("*.py"))):
        assert not {name for name in _imports(module) if "follow" in name}, module


def test_follow_builds_on_the_runner() -> None:
    assert "core.ingest.runner" in _imports(CORE / "ingest" / "follow.py")


def test_importing_the_runner_loads_nothing_of_follow() -> None:
    code = "import sys, core.ingest.runner; print('core.ingest.follow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=CORE.parent)
    assert done.stdout.strip() == "False"
