"""Benchmark structured filter removal on the MLPerf Tiny models in ../shared/data/mlperf_tiny.

Prints two markdown tables:
1. int8 .tflite bytes and TFLM arena before/after, at ratios 0.25 and 0.5 (l1, per-group
   ranking), for each model; every pruned model is also run once in the TFLM interpreter.
   Calibration uses random inputs (sizes do not depend on the calibration values).
2. Wall time to build the dependency graph, and to prune + rebuild vww_96.h5 at ratio 0.5
   (graph, scoring, new model, weight copy), after TensorFlow is imported and the model loaded;
   best and median of REPEATS runs.

Usage: .venv/bin/python benchmarks/bench_structured.py [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

MODELS = ["pretrainedResnet.h5", "vww_96.h5", "ad01.h5", "str_ww_ref_model.h5"]
RATIOS = (0.25, 0.5)
CALIBRATION = 32  # random samples: enough for the converter, sizes do not depend on them
REPEATS = 5


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    args = ap.parse_args()
    folder = Path(args.shared) / "mlperf_tiny"

    t0 = time.perf_counter()
    from tinyprune.tfsetup import tf  # noqa: F401  (import cost reported separately)
    t_import = time.perf_counter() - t0

    from firmware_export import tflm
    from tinyprune.load.model import load_model
    from tinyprune.quantize.int8 import quantize_int8
    from tinyprune.prune.structured import build_graph, prune_structured

    rows = []
    for name in MODELS:
        model = load_model(folder / name)
        x = np.random.default_rng(0).uniform(0, 1, (CALIBRATION, *model.input_shape[1:])).astype(np.float32)
        base = quantize_int8(model, x, CALIBRATION)
        base_arena = tflm.measure_arena(base).target_bytes
        for ratio in RATIOS:
            r = prune_structured(model, ratio)
            data = quantize_int8(r.model, x, CALIBRATION)
            tflm.run(data, x[:1])
            arena = tflm.measure_arena(data).target_bytes
            rows.append((name, ratio, r.params_before, r.params_after, len(base), len(data), base_arena, arena))

    print("| model | ratio | params before | params after | int8 bytes before | int8 bytes after | after/before "
          "| arena before | arena after |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, ratio, p0, p1, b0, b1, a0, a1 in rows:
        print(f"| {name} | {ratio} | {p0:,} | {p1:,} | {b0:,} | {b1:,} | {b1 / b0:.0%} | {a0:,} | {a1:,} |")

    vww = load_model(folder / "vww_96.h5")
    graph_t, prune_t = [], []
    for _ in range(REPEATS):
        t = time.perf_counter()
        build_graph(vww)
        graph_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        prune_structured(vww, 0.5)
        prune_t.append(time.perf_counter() - t)
    print()
    print(f"TensorFlow import: {t_import:.1f} s (not counted below)")
    print("| vww_96.h5 | best (s) | median (s) |")
    print("|---|---|---|")
    print(f"| build_graph | {min(graph_t):.2f} | {statistics.median(graph_t):.2f} |")
    print(f"| prune_structured(ratio=0.5): graph + l1 scores + rebuild + weight copy | {min(prune_t):.2f} "
          f"| {statistics.median(prune_t):.2f} |")


if __name__ == "__main__":
    main()
