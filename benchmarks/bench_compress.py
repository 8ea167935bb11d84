"""Benchmark: TFLM PRUNE compression of the MLPerf Tiny int8 models (flash, arena, time; no TensorFlow).

A format and memory check, not an accuracy benchmark: each model's int8 weight tensors get their
smallest-magnitude fraction S set to zero (no retraining, so the accuracy of these models is not
meaningful), then `firmware_export.compress.compress_model(..., "prune")` stores them as bitmask
+ non-zero values. For each model and S it prints the .tflite bytes before and after, the TFLM
arena (32-bit target) before and after, the compression time, and whether TFLM's outputs on
random inputs are identical (they must be: PRUNE is lossless).

Run (needs ../shared/data/mlperf_tiny):
    .venv/bin/python benchmarks/bench_compress.py
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MLPERF = ROOT.parent / "shared" / "data" / "mlperf_tiny"
MODELS = ("vww_96_int8.tflite", "pretrainedResnet_quant.tflite", "kws_ref_model.tflite", "ad01_int8.tflite")
SPARSITIES = (0.5, 0.7, 0.9)


def zero_smallest(data: bytes, sparsity: float) -> bytes:
    """`data` with the smallest-magnitude `sparsity` of every int8 weight tensor (ndim >= 2) set to 0."""
    from firmware_export.compress import read_model

    model = read_model(data)
    for t in (t for sg in model.subgraphs for t in sg.tensors):
        if t.buffer is not None and t.buffer.data and t.array.dtype == np.int8 and t.array.ndim >= 2:
            a = t.array.copy()
            mag = np.abs(a.astype(np.int16))
            a[mag <= np.quantile(mag, sparsity)] = 0
            t.buffer.data = a.tobytes()
    return bytes(model.build())


def main() -> int:
    if not MLPERF.is_dir():
        print(f"MLPerf Tiny models not found at {MLPERF}", file=sys.stderr)
        return 2
    from firmware_export.compress import compress_model, same_outputs

    print(f"machine: {platform.machine()}, Python {platform.python_version()}")
    print("| model | zeros | int8 bytes | PRUNE bytes | flash / int8 | arena B (32-bit) | PRUNE arena B "
          "| extra arena B | compress s | outputs identical |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in MODELS:
        path = MLPERF / name
        if not path.is_file():
            continue
        for s in SPARSITIES:
            sparse = zero_smallest(path.read_bytes(), s)
            t = time.perf_counter()
            comp = compress_model(sparse, "prune")
            secs = time.perf_counter() - t
            same = same_outputs(sparse, comp.data, samples=4)
            print(f"| {name} | {s:.0%} | {len(sparse):,} | {comp.compressed_bytes:,} | {comp.flash_fraction:.1%} "
                  f"| {comp.dense_arena.target_bytes:,} | {comp.compressed_arena.target_bytes:,} "
                  f"| {comp.extra_arena_bytes:+,} | {secs:.2f} | {'yes' if same else 'NO'} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
