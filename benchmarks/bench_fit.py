"""Wall time of `tinyprune fit MODEL --all` (target for vww_96_int8.tflite: < 1.5 s on 2 cores).

Usage:
    .venv/bin/python benchmarks/bench_fit.py [--repeat N]

Each run is a fresh process (`python -m tinyprune fit ...`), so the time includes Python start-up,
imports, parsing the flatbuffer, allocating the model in the real TFLM interpreter (the arena
measurement) and the estimates for all board profiles. Prints a markdown table of min / median /
max wall seconds per command and the exit codes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TINYPRUNE_SHARED_DATA", ROOT.parent / "shared" / "data"))
TARGET_S = 1.5


def wall(args: list[str]) -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tinyprune", *args], capture_output=True, cwd=ROOT)
    return time.perf_counter() - t0, proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    mlperf = SHARED / "mlperf_tiny"
    commands = [
        ["fit", str(mlperf / "vww_96_int8.tflite"), "--all"],
        ["fit", str(mlperf / "vww_96_int8.tflite"), "--all", "--json", "--layers"],
        ["fit", str(mlperf / "pretrainedResnet_quant.tflite"), "--all"],
        ["fit", str(mlperf / "ad01_int8.tflite"), "--all"],
        ["boards"],
    ]
    wall(commands[0])  # warm the file cache once
    print("| command | runs | min s | median s | max s | exit |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    verdict = True
    for cmd in commands:
        runs = [wall(cmd) for _ in range(args.repeat)]
        times = [t for t, _ in runs]
        shown = " ".join(Path(a).name if "/" in a else a for a in cmd)
        print(f"| tinyprune {shown} | {len(times)} | {min(times):.3f} | {statistics.median(times):.3f} | "
              f"{max(times):.3f} | {runs[0][1]} |")
        if cmd is commands[0]:
            verdict = statistics.median(times) < TARGET_S
    print(f"\nvww_96_int8 --all median under {TARGET_S} s: {'PASS' if verdict else 'FAIL'} "
          f"({os.cpu_count()} CPUs visible)")


if __name__ == "__main__":
    main()
