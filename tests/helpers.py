"""Helpers shared by the tests: paths, running the CLI in a subprocess, checking its stderr.

Imported as `from tests.helpers import ...` (fixtures live in conftest.py, helpers here).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TINYPRUNE_SHARED_DATA", ROOT.parent / "shared" / "data"))
DEMO_MODEL = ROOT / "models" / "digits_cnn.h5"


def run_cli(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run the tinyprune CLI in a subprocess from the repository root; returns CompletedProcess (text)."""
    kwargs.setdefault("cwd", ROOT)
    kwargs.setdefault("timeout", 1800)
    return subprocess.run([sys.executable, "-m", "tinyprune", *args], capture_output=True, text=True, **kwargs)


def stderr_one_line(proc: subprocess.CompletedProcess) -> str:
    """Assert the process wrote exactly one non-empty line on stderr and return it."""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return lines[0]


def run_python(code: str, **kwargs) -> subprocess.CompletedProcess:
    """Run a Python snippet in a fresh interpreter from the repository root (text output)."""
    kwargs.setdefault("cwd", ROOT)
    kwargs.setdefault("timeout", 600)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, **kwargs)


def loaded_modules_after(statement: str) -> set[str]:
    """The top-level module names a fresh interpreter has loaded after running `statement`."""
    proc = run_python(f"{statement}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))")
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())
