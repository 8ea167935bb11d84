"""Keras 3 translation time: keras.applications.MobileNetV2 (Keras 3) to tf_keras and back.

Usage: .venv/bin/python benchmarks/bench_keras3.py [--repeat N] [--size 32,96]
Prints the TensorFlow + Keras 3 import time (once), then per input size the median over N runs
of `from_keras3` (wall and CPU seconds of this process), its stages (config rewrite, tf_keras
rebuild, weight copy, the output check on random inputs: both models run once), and
`to_keras3` (the way back, also checked). Target (issue 14): from_keras3 under 2 s after the
TensorFlow import. CPU seconds are the better figure on a machine shared with other jobs.
"""

from __future__ import annotations

import argparse
import statistics
import time

TARGET_S = 2.0


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def one_run(k3, keras, tk, model) -> dict[str, float]:
    """One translation there and back, with the stages of the way there timed apart."""
    row: dict[str, float] = {}
    tfk, row["wall"], row["cpu"] = timed(lambda: k3.from_keras3(model))
    side = k3._Side(keras, tk, True)
    (_, cfg), row["cfg"], _ = timed(lambda: k3._model_config("Functional", model.get_config(), side))
    built, row["build"], _ = timed(lambda: tk.Model.from_config(cfg))
    row["copy"] = timed(lambda: k3._copy_weights(model, built))[1]
    row["check"] = timed(lambda: k3.max_difference(model, built, k3._inputs_for(model)))[1]
    _, row["bwall"], row["bcpu"] = timed(lambda: k3.to_keras3(tfk))
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", default="32,96", help="input sizes (square, 3 channels), comma separated")
    args = ap.parse_args()
    t = time.perf_counter()
    from tinyprune.load import keras3 as k3

    keras = k3.keras3()
    from tinyprune.tfsetup import keras as tk

    print(f"TensorFlow + tf_keras + Keras 3 import: {time.perf_counter() - t:.1f} s (once per process)")
    print("| model | layers | from_keras3 wall s | CPU s | config rewrite | tf_keras rebuild | weight copy "
          "| output check | to_keras3 wall s | CPU s | target (wall) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for size in (int(s) for s in args.size.split(",")):
        model = keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=0.35, weights=None, classes=10)
        rows: dict[str, list[float]] = {k: [] for k in ("wall", "cpu", "cfg", "build", "copy", "check", "bwall",
                                                        "bcpu")}
        for _ in range(args.repeat):
            row = one_run(k3, keras, tk, model)
            for key, value in row.items():
                rows[key].append(value)
        med = {k: statistics.median(v) for k, v in rows.items()}
        print(f"| MobileNetV2 0.35 {size}x{size} ({model.count_params():,} params) | {len(model.layers)} | "
              f"{med['wall']:.2f} | {med['cpu']:.2f} | {med['cfg']:.2f} | {med['build']:.2f} | {med['copy']:.2f} | "
              f"{med['check']:.2f} | {med['bwall']:.2f} | {med['bcpu']:.2f} | "
              f"{'met' if med['wall'] < TARGET_S else 'missed'} (< {TARGET_S:g} s) |")


if __name__ == "__main__":
    main()
