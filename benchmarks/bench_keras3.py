"""Keras 3 translation time: keras.applications.MobileNetV2 (Keras 3) to tf_keras and back.

Usage: .venv/bin/python benchmarks/bench_keras3.py [--repeat N] [--size 32,96]
Prints one row per input size: parameters, layers, TensorFlow + Keras 3 import (once), then the
median and min over N runs of `from_keras3` (config rewrite, tf_keras rebuild, weight copy, the
output check on random inputs) and `to_keras3` (the way back, also checked). Target (issue 14):
from_keras3 under 2 s after the TensorFlow import.
"""

from __future__ import annotations

import argparse
import statistics
import time

TARGET_S = 2.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", default="32,96", help="input sizes (square, 3 channels), comma separated")
    args = ap.parse_args()
    t = time.perf_counter()
    from tinyprune.load.keras3 import from_keras3, keras3, to_keras3

    keras = keras3()
    import_s = time.perf_counter() - t
    print(f"TensorFlow + tf_keras + Keras 3 import: {import_s:.1f} s (once per process)")
    print("| model | params | layers | from_keras3 median s | min s | to_keras3 median s | min s | target |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for size in (int(s) for s in args.size.split(",")):
        model = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=0.35, weights=None, classes=10)
        there, back = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            tfk = from_keras3(model)
            there.append(time.perf_counter() - t)
            t = time.perf_counter()
            to_keras3(tfk)
            back.append(time.perf_counter() - t)
        med = statistics.median(there)
        print(f"| MobileNetV2 0.35 {size}x{size} | {model.count_params():,} | {len(model.layers)} | {med:.2f} | "
              f"{min(there):.2f} | {statistics.median(back):.2f} | {min(back):.2f} | "
              f"{'met' if med < TARGET_S else 'MISSED'} (< {TARGET_S:g} s) |")


if __name__ == "__main__":
    main()
