"""Benchmark: magnitude pruning + compression TFLM decodes (PRUNE, LUT, auto) on MNIST.

An MNIST CNN of about 200 KB int8 (defined below) is trained once, dense; copies are then
magnitude-pruned to 0/50/80/90% (polynomial schedule, short fine-tune). Each pruned int8 model
is PRUNE-compressed (bitmask + non-zero values, lossless), and each pruned model is clustered to
2^k values per channel (k = 4 and 2; also 3 at 80%) and compressed twice: LUT only, and auto
(per tensor the smaller of LUT and PRUNE). For every model it prints: int8 bytes, bytes after
compression, TFLM arena (32-bit target), and top-1 accuracy in the real TFLM interpreter on
MNIST test images, and whether the compressed model's outputs equal its uncompressed source's.

Run (needs ../shared/data/mnist):
    .venv/bin/python benchmarks/bench_magnitude.py [--eval 10000] [--finetune-samples 20000]

Target from issue 4: at 80% sparsity with 4-bit LUT, flash <= 45% of the dense int8 model's,
with accuracy within 1 point of it. The script prints whether it was met for LUT alone, for
auto at 4 bits (clustered to 16 values, LUT or PRUNE per tensor) and for PRUNE alone.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"
SPARSITIES = (0.0, 0.5, 0.8, 0.9)
BITS = (4, 2)
EXTRA_BITS = {0.8: (3,)}  # 3-bit at 80% as well: the step between the two asked for
SEED = 0


def build_cnn(keras):
    """~199k weights -> ~200 KB int8. Convs keep their bias so tfmot clusters them per channel."""
    inp = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inp)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(56, activation="relu", name="fc1")(x)
    out = keras.layers.Dense(10, name="classes")(x)
    return keras.Model(inp, out, name="mnist_cnn")


def tflm_accuracy(tflite: bytes, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    from firmware_export.tflm import run

    out = run(tflite, x)
    return float((out.argmax(axis=1) == y).mean()), out


def compressed_row(s: float, label: str, source: bytes, method: str, bits: int, x, y) -> tuple:
    """(sparsity, label, source int8 bytes, flash, arena, extra arena, accuracy, same outputs, seconds)."""
    from firmware_export.compress import compress_model

    t = time.time()
    comp = compress_model(source, method, bits)
    src_acc, src_out = tflm_accuracy(source, x, y)
    acc, out = tflm_accuracy(comp.data, x, y)
    used = "+".join(comp.to_dict()["formats_used"])
    return (s, f"{label} ({used})" if method == "auto" else label, len(source), comp.compressed_bytes,
            comp.compressed_arena.target_bytes, comp.extra_arena_bytes, acc, bool(np.array_equal(src_out, out)),
            time.time() - t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2, help="dense training epochs")
    ap.add_argument("--finetune-epochs", type=int, default=2, help="pruning fine-tune epochs")
    ap.add_argument("--cluster-epochs", type=int, default=1, help="clustering fine-tune epochs")
    ap.add_argument("--finetune-samples", type=int, default=20000, help="training images used for fine-tuning")
    ap.add_argument("--eval", type=int, default=10000, help="test images evaluated in TFLM")
    args = ap.parse_args()
    if not MNIST.is_dir():
        print(f"MNIST not found at {MNIST}", file=sys.stderr)
        return 2

    t0 = time.time()
    from firmware_export.tflm import measure_arena
    from tinyprune import training
    from tinyprune.prune.clustering import cluster_model
    from tinyprune.load.data import Dataset
    from tinyprune.prune.magnitude import Schedule, prune_magnitude
    from tinyprune.quantize.int8 import quantize_int8
    from tinyprune.tfsetup import keras, tf

    tf.random.set_seed(SEED)
    with np.load(MNIST / "mnist_train.npz") as f:
        x_tr, y_tr = f["x"].astype(np.float32)[..., None] / 255.0, f["y"].astype(np.int64)
    with np.load(MNIST / "mnist_test.npz") as f:
        x_te, y_te = f["x"].astype(np.float32)[..., None] / 255.0, f["y"].astype(np.int64)
    full = Dataset("mnist", x_tr, y_tr, x_te, y_te)
    rng = np.random.default_rng(SEED)
    idx = rng.permutation(len(x_tr))[: args.finetune_samples]
    ft = Dataset("mnist-ft", x_tr[idx], y_tr[idx], x_te, y_te)
    x_ev, y_ev = x_te[: args.eval], y_te[: args.eval]

    dense = build_cnn(keras)
    training.compile_for(dense, full)
    t = time.time()
    training.train(dense, full, args.epochs, 128, description="dense training")
    print(f"dense training: {time.time() - t:.0f} s, keras test accuracy {training.evaluate(dense, full):.4f}")

    rows = []
    dense_bytes = None
    for s in SPARSITIES:
        t = time.time()
        if s == 0:
            pruned = dense
        else:
            pruned = prune_magnitude(dense, ft, Schedule(final_sparsity=s), epochs=args.finetune_epochs,
                                     batch_size=64).model
        int8 = quantize_int8(pruned, x_tr)
        dense_bytes = dense_bytes or len(int8)
        acc, _ = tflm_accuracy(int8, x_ev, y_ev)
        arena = measure_arena(int8).target_bytes
        rows.append((s, "int8", len(int8), len(int8), arena, 0, acc, None, time.time() - t))
        print(rows[-1])
        if s > 0:
            rows.append(compressed_row(s, "PRUNE", int8, "prune", 4, x_ev, y_ev))
            print(rows[-1])
        for bits in BITS + EXTRA_BITS.get(s, ()):
            t = time.time()
            cl = cluster_model(pruned, ft, bits=bits, epochs=args.cluster_epochs, batch_size=64)
            cl_int8 = quantize_int8(cl.model, x_tr)
            print(f"clustering to {bits} bits: {time.time() - t:.0f} s")
            for method, label in (("lut", f"LUT {bits}-bit"), ("auto", f"auto {bits}-bit")):
                rows.append(compressed_row(s, label, cl_int8, method, bits, x_ev, y_ev))
                print(rows[-1])

    base_acc = rows[0][6]
    print()
    print(f"machine: {platform.machine()}, {platform.processor() or '?'}, Python {platform.python_version()}; "
          f"TFLM accuracy on {len(x_ev)} MNIST test images; total {time.time() - t0:.0f} s")
    print("| sparsity | model | int8 bytes | flash bytes | flash / dense int8 | arena B (32-bit) | extra arena B "
          "| accuracy (TFLM) | Δ acc vs dense | outputs == uncompressed | time s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for s, kind, i8, fl, arena, extra, acc, same, secs in rows:
        print(f"| {s:.0%} | {kind} | {i8:,} | {fl:,} | {fl / dense_bytes:.1%} | {arena:,} | {extra:,} | {acc:.2%} "
              f"| {100 * (acc - base_acc):+.2f} | {'-' if same is None else ('yes' if same else 'NO')} | {secs:.0f} |")
    print()
    for prefix in ("LUT 4-bit", "auto 4-bit", "PRUNE"):
        target = [r for r in rows if r[0] == 0.8 and r[1].startswith(prefix)][0]
        met_flash = target[3] / dense_bytes <= 0.45
        met_acc = base_acc - target[6] <= 0.01
        print(f"target (80% + {target[1]}): flash {target[3] / dense_bytes:.1%} of dense (<= 45%: {met_flash}), "
              f"accuracy {100 * (target[6] - base_acc):+.2f} points (within 1: {met_acc})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
