"""What running TFLM in a child process costs: isolated vs in-process, per call.

Usage: .venv/bin/python benchmarks/bench_tflm_isolation.py [--repeats 5] [--rows 100]

For the demo int8 model (built here) and each MLPerf Tiny .tflite in ../shared/data/mlperf_tiny
(when present), the median wall time of:
- `measure_arena`: firmware_export.tflm.measure_arena (validate + fork + pickle, arena cache
  cleared each time) vs tflm._measure_arena in this process (the same TFLM work, unprotected);
- `run` on --rows inputs: tflm.run vs tflm._run;
- an empty isolated call (`_isolated` of a no-op): the bare fork + pipe round trip;
- `run` on --parallel-rows inputs in 1 child vs split over one child per CPU (the default;
  the outputs are checked equal), and the speed-up.
Prints markdown tables.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def _noop() -> int:
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rows", type=int, default=100)
    ap.add_argument("--parallel-rows", type=int, default=1000)
    args = ap.parse_args()

    from benchmarks.fuzz_inputs import _demo_int8
    from firmware_export import tflm
    from tests.helpers import SHARED

    models = {"demo int8": _demo_int8()}
    mlperf = SHARED / "mlperf_tiny"
    for p in sorted(mlperf.glob("*.tflite")) if mlperf.is_dir() else []:
        models[p.name] = p.read_bytes()

    print(f"empty isolated call (fork + pipe + wait): {_median_ms(lambda: tflm._isolated('x', _noop), 20):.1f} ms\n")
    print("| model | bytes | measure_arena isolated ms | in-process ms | overhead ms | "
          f"run x{args.rows} isolated ms | in-process ms | overhead ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    inputs = {}
    for name, data in models.items():
        def isolated_arena():
            tflm._ARENA_CACHE.clear()
            tflm.measure_arena(data)

        a_iso = _median_ms(isolated_arena, args.repeats)
        a_in = _median_ms(lambda: tflm._measure_arena(data), args.repeats)
        detail = tflm.input_detail(data)
        dtype = np.dtype(detail["dtype"])
        shape = (args.rows, *detail["shape"][1:])
        rng = np.random.default_rng(0)
        if dtype.kind in "iu":
            x = rng.integers(np.iinfo(dtype).min, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)
            quantized = True
        else:
            x, quantized = rng.standard_normal(shape).astype(np.float32), False
        r_iso = _median_ms(lambda: tflm.run(data, x, quantized), args.repeats)
        r_in = _median_ms(lambda: tflm._run(data, x, quantized), args.repeats)
        print(f"| {name} | {len(data):,} | {a_iso:.0f} | {a_in:.0f} | {a_iso - a_in:+.0f} | "
              f"{r_iso:.0f} | {r_in:.0f} | {r_iso - r_in:+.0f} |")
        inputs[name] = (data, np.resize(x, (args.parallel_rows, *x.shape[1:])), quantized)

    cpus = tflm.default_processes()
    print(f"\n| model | run x{args.parallel_rows}, 1 child ms | {cpus} children ms | speed-up | outputs equal |")
    print("| --- | ---: | ---: | ---: | --- |")
    for name, (data, x, quantized) in inputs.items():
        one = _median_ms(lambda: tflm.run(data, x, quantized, processes=1), max(1, args.repeats // 2))
        many = _median_ms(lambda: tflm.run(data, x, quantized), max(1, args.repeats // 2))
        same = np.array_equal(tflm.run(data, x, quantized, processes=1), tflm.run(data, x, quantized))
        print(f"| {name} | {one:.0f} | {many:.0f} | {one / many:.2f}x | {same} |")


if __name__ == "__main__":
    main()
