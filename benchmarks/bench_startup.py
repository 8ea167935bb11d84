"""CLI start-up time: `tinyprune --help` must take under 1 s (it must not import TensorFlow).

Usage: .venv/bin/python benchmarks/bench_startup.py [--repeat N]
Prints a table of wall times (median, min, max over N runs) for commands that should be fast,
and the TensorFlow import cost for comparison.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 1.0  # issue: `tinyprune --help` under 1 s


def wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=True, cwd=ROOT)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    exe = shutil.which("tinyprune", path=str(Path(sys.executable).parent)) or "tinyprune"
    cases = {
        "tinyprune --help": [exe, "--help"],
        "tinyprune run --help": [exe, "run", "--help"],
        "python -c 'import tensorflow' (reference)": [sys.executable, "-c", "import tensorflow"],
    }
    print("| command | median s | min s | max s | runs |\n| --- | --- | --- | --- | --- |")
    for name, cmd in cases.items():
        times = [wall(cmd) for _ in range(args.repeat)]
        print(f"| `{name}` | {statistics.median(times):.3f} | {min(times):.3f} | {max(times):.3f} | {len(times)} |")
    print(f"\ntarget: `tinyprune --help` under {TARGET_S} s")


if __name__ == "__main__":
    main()
