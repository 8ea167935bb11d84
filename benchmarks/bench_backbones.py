"""Benchmark structured filter removal on the keras.applications backbones that fit a microcontroller.

For each family of tests/prune/backbones.py (tf_keras.applications, weights=None, 32x32x3,
smallest width, GAP + Dense(4) head, randomized BatchNorm statistics), at ratio 0.3 (l1,
per-group ranking): parameters before/after, the layers that were boundaries and why (grouped by
reason), the largest difference from the zeroed-channel reference, the wall time of
`prune_structured` (graph + scoring + rebuild + weight copy), and the int8 .tflite size and
whether it runs in the TFLM interpreter (every family, the big ones included; calibration on 16
random inputs). A family that fails at any step is reported with its one-line error.

Prints one markdown table (docs/structured.md and docs/benchmarks.md hold a copy).

Usage: PYTHONPATH=. .venv/bin/python benchmarks/bench_backbones.py [--only NAME ...] [--no-tflm]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RATIO = 0.3
CALIBRATION = 16


def _boundaries(notes: list[str]) -> str:
    """The graph's notes grouped by class and reason: 'Conv2D (is a grouped convolution) x13; ...'."""
    kinds: Counter = Counter()
    for note in notes:
        m = re.match(r"layer '[^']*' \((\w+)\) (.*?)(; treated as a boundary.*|: its output channels are kept)?$", note)
        if not m:
            kinds[note] += 1
            continue
        kinds[f"{m.group(1)} ({m.group(2)})"] += 1
    return "; ".join(f"{k} x{v}" for k, v in kinds.most_common()) or "none"


def main() -> None:
    from tests.prune.backbones import FAMILIES, build, inputs

    ap = argparse.ArgumentParser()
    ap.add_argument("--only", nargs="*", default=None, help="family names (default: all)")
    ap.add_argument("--no-tflm", action="store_true", help="skip int8 conversion and the TFLM run")
    args = ap.parse_args()

    from firmware_export import tflm
    from tinyprune.prune.structured import masked_equivalent, prune_structured
    from tinyprune.quantize.int8 import quantize_int8
    from tinyprune.tfsetup import keras

    rows = []
    for name in args.only or FAMILIES:
        keras.backend.clear_session()
        row = {"family": name}
        try:
            model = build(name)
            t0 = time.perf_counter()
            r = prune_structured(model, RATIO)
            row["seconds"] = time.perf_counter() - t0
            ref = masked_equivalent(model, r.graph, r.group_kept)
            x = inputs(model, 4)
            row["diff"] = float(np.abs(np.asarray(r.model(x, training=False)) - np.asarray(ref(x, training=False))).max())
            row.update(before=r.params_before, after=r.params_after, boundaries=_boundaries(r.notes))
            if not args.no_tflm:
                data = quantize_int8(r.model, inputs(model, CALIBRATION, seed=1), num_calibration=CALIBRATION)
                row["int8"] = len(data)
                try:
                    tflm.run(data, x[:1])
                    row["tflm"] = "runs"
                except Exception as e:  # report what TFLM says, per family
                    row["tflm"] = f"fails: {str(e).splitlines()[0][:160]}"
        except Exception as e:
            row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
        rows.append(row)
        print(f"done {name}: {row}", file=sys.stderr, flush=True)

    print(f"| family | params before | params after (ratio {RATIO}) | after/before | max diff vs zeroed reference "
          "| prune + rebuild s | int8 bytes | TFLM | boundaries (class, why, count) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        if "error" in row:
            print(f"| {row['family']} | - | - | - | - | - | - | - | error: {row['error']} |")
            continue
        int8 = f"{row['int8']:,}" if "int8" in row else "-"
        print(f"| {row['family']} | {row['before']:,} | {row['after']:,} | {row['after'] / row['before']:.2f} "
              f"| {row['diff']:.1e} | {row['seconds']:.1f} | {int8} | {row.get('tflm', '-')} | {row['boundaries']} |")


if __name__ == "__main__":
    main()
