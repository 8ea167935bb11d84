"""Helpers shared by the tests: paths, running the CLI in a subprocess, checking its stderr.

Imported as `from tests.helpers import ...` (fixtures live in conftest.py, helpers here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TINYPRUNE_SHARED_DATA", ROOT.parent / "shared" / "data"))
REFERENCE = SHARED.parent / "reference"  # ../shared/reference: measured sizes and latencies
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


HEAVY_MODULES = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization")
_REPORT = "@@cli-report@@"


def cli_in_fresh_interpreter(*argvs: list[str], **kwargs) -> tuple[list[int], list[str], subprocess.CompletedProcess]:
    """Run `tinyprune` once per argv inside one fresh interpreter, the way the console script does.

    Returns (exit codes, the heavy ML modules that interpreter ended up importing, the process),
    so a test can assert that a command on a .tflite, or a refusal, never started TensorFlow."""
    code = (f"import json, sys\nfrom tinyprune.cli import main\ncodes = []\n"
            f"for argv in {[list(map(str, a)) for a in argvs]!r}:\n"
            "    try:\n        main(argv)\n    except SystemExit as e:\n        codes.append(e.code)\n"
            f"heavy = [m for m in {HEAVY_MODULES!r} if m in sys.modules]\n"
            f"print({_REPORT!r} + json.dumps({{'codes': codes, 'heavy': heavy}}), file=sys.stderr)\n")
    proc = run_python(code, **kwargs)
    line = next((ln for ln in reversed(proc.stderr.splitlines()) if ln.startswith(_REPORT)), None)
    assert line is not None, proc.stderr[-3000:]
    report = json.loads(line[len(_REPORT):])
    return report["codes"], report["heavy"], proc


def subclassed_model(units: int = 3, inputs: int = 4):
    """A built subclassed tf_keras model (tinyprune refuses these: no config to check or rebuild)."""
    import numpy as np

    from tinyprune.tfsetup import keras

    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = keras.layers.Dense(units)

        def call(self, x):
            return self.d(x)

    net = Net()
    net(np.zeros((1, inputs), np.float32))
    return net
