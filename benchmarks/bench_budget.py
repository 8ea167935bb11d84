"""Prune for a budget on MNIST, side by side with two baselines; and ResNet-8 to 48 KB.

Usage: .venv/bin/python benchmarks/bench_budget.py [--epochs 2] [--train 60000] [--skip-resnet]

1. Trains an MNIST CNN of about 200 KB int8 (Conv-BN-ReLU x3, two max-pools, Dense 48, Dense 10)
   on ../shared/data/mnist/mnist_train.npz, and evaluates on mnist_test.npz (10,000 images).
2. For flash budgets 50%, 25%, 12.5% of its int8 size, with the same fine-tuning epochs:
   - tinyprune's budget search (`prune_for_budget`);
   - uniform L1 structured pruning: one ratio for every group, the smallest that meets the
     same budget (found with the size predictor, checked on the real artifact);
   - tfmot magnitude pruning to sparsity 1 - budget (its int8 bytes do not shrink).
   Accuracy is the int8 model's in the real TFLM interpreter on the 10,000 test images.
3. pretrainedResnet.h5 (MLPerf Tiny ResNet-8, 96 KB int8) to a 48 KB flash budget. There is no
   CIFAR-10 here, so the data are 4,000 uniform-noise images labelled by the original model:
   the search and fine-tuning then keep the pruned model agreeing with the original; the table
   reports that agreement, not CIFAR accuracy, and that the artifact fits.
Prints markdown tables and wall times.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
BUDGETS = ("50%", "25%", "12.5%")


def build_cnn(keras):
    inp = keras.Input((28, 28, 1), name="image")
    x = inp
    for i, (filters, pool) in enumerate(((32, False), (64, True), (64, True)), start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
        if pool:
            x = keras.layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(48, activation="relu", name="fc1")(x)
    out = keras.layers.Dense(10, activation="softmax", name="classes")(x)
    return keras.Model(inp, out, name="mnist_cnn")


def mnist(n_train: int):
    from tinyprune.load.data import Dataset

    tr, te = np.load(SHARED / "mnist" / "mnist_train.npz"), np.load(SHARED / "mnist" / "mnist_test.npz")
    x_tr = (tr["x"][:n_train].astype(np.float32) / 255.0)[..., None]
    x_te = (te["x"].astype(np.float32) / 255.0)[..., None]
    return Dataset("mnist", x_tr, tr["y"][:n_train].astype(np.int64), x_te, te["y"].astype(np.int64))


def tflm_accuracy(tflite: bytes, ds) -> float:
    from firmware_export import tflm
    from tinyprune import training

    return training.score(tflm.run(tflite, ds.x_val), ds.y_val)


def uniform_baseline(model, ds, budget_bytes: float, epochs: int, predictor, graph):
    """Smallest uniform ratio whose predicted bytes meet the budget, pruned by L1, fine-tuned."""
    from tinyprune import training
    from tinyprune.quantize.int8 import quantize_int8
    from tinyprune.prune.structured.pruner import prune_structured, round_keep

    def keep_at(r):
        return {g.id: round_keep(g.channels * (1 - r), g.channels, 1, g.min_keep) for g in graph.groups if g.prunable}

    lo, hi = 0.0, 0.99
    for _ in range(30):
        mid = (lo + hi) / 2
        if predictor.predict(keep_at(mid)).int8_bytes <= budget_bytes:
            hi = mid
        else:
            lo = mid
    ratio = hi
    while True:
        pruned = prune_structured(model, ratio, importance="l1")
        tfl = quantize_int8(pruned.model, ds.x_train, 64)
        if len(tfl) <= budget_bytes:
            break
        ratio = min(0.99, ratio + 0.01)
    training.compile_for(pruned.model, ds)
    training.train(pruned.model, ds, epochs, 128, description="uniform L1 fine-tune", early_stopping=3)
    tfl = quantize_int8(pruned.model, ds.x_train, 300)
    return ratio, tfl


def magnitude_baseline(model, ds, sparsity: float, epochs: int):
    from tinyprune.prune.magnitude import Schedule, prune_magnitude
    from tinyprune.quantize.int8 import quantize_int8

    res = prune_magnitude(model, ds, Schedule("polynomial", 0.0, sparsity), epochs=epochs, batch_size=128)
    return quantize_int8(res.model, ds.x_train, 300)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=2, help="training epochs of the dense model and every fine-tune")
    ap.add_argument("--train", type=int, default=60000, help="MNIST training images used")
    ap.add_argument("--skip-resnet", action="store_true")
    ap.add_argument("--skip-mnist", action="store_true")
    args = ap.parse_args()

    from rich.console import Console

    from firmware_export.tflm import measure_arena
    from tinyprune import training
    from tinyprune.budget.search import prune_for_budget
    from tinyprune.budget.predictor import SizePredictor
    from tinyprune.quantize.int8 import quantize_int8
    from tinyprune.prune.structured.dependency import build_graph
    from tinyprune.tfsetup import keras

    console = Console(stderr=True)
    work = Path(tempfile.mkdtemp(prefix="bench_budget_"))
    rows = []
    if not args.skip_mnist:
        keras.utils.set_random_seed(0)
        ds = mnist(args.train)
        t = time.perf_counter()
        model = build_cnn(keras)
        training.compile_for(model, ds)
        training.train(model, ds, args.epochs, 128, description="dense MNIST CNN")
        dense_tfl = quantize_int8(model, ds.x_train, 300)
        dense_acc = tflm_accuracy(dense_tfl, ds)
        print(f"dense: {model.count_params():,} params, int8 {len(dense_tfl):,} B, TFLM accuracy {dense_acc:.4f}, "
              f"trained in {time.perf_counter() - t:.0f} s", flush=True)
        graph = build_graph(model, ("classes",))
        arena = measure_arena(dense_tfl)
        predictor = SizePredictor(model, graph, len(dense_tfl), arena.target_bytes, arena.head_bytes)
        for b in BUDGETS:
            frac = float(b.rstrip("%")) / 100
            limit = frac * len(dense_tfl)
            t = time.perf_counter()
            r = prune_for_budget(model, ds, work / f"search_{b}", flash_budget=b, epochs=args.epochs, batch_size=128,
                                 console=console, quiet=True)
            search_s = time.perf_counter() - t
            t = time.perf_counter()
            ratio, uni_tfl = uniform_baseline(model, ds, limit, args.epochs, predictor, graph)
            uni_s = time.perf_counter() - t
            t = time.perf_counter()
            mag_tfl = magnitude_baseline(model, ds, 1 - frac, args.epochs)
            mag_s = time.perf_counter() - t
            rows.append((b, limit, r, search_s, ratio, len(uni_tfl), tflm_accuracy(uni_tfl, ds), uni_s,
                         len(mag_tfl), tflm_accuracy(mag_tfl, ds), mag_s))
            print(f"{b}: search {r.final['int8_bytes']:,} B acc {r.accuracy['tflm_accuracy']:.4f} ({search_s:.0f} s, "
                  f"sensitivity {r.seconds.get('sensitivity', 0):.0f} s); uniform r={ratio:.3f} {len(uni_tfl):,} B "
                  f"acc {rows[-1][6]:.4f}; magnitude {len(mag_tfl):,} B acc {rows[-1][9]:.4f}", flush=True)

        print(f"\nMNIST CNN: {model.count_params():,} parameters, dense int8 {len(dense_tfl):,} B, "
              f"int8 accuracy in TFLM {dense_acc:.4f} (10,000 test images); {args.epochs} epochs for the dense "
              f"model and for every fine-tune; {args.train:,} training images.\n")
        print("| budget | limit B | search B | search acc | uniform L1 ratio | uniform B | uniform acc | "
              "tfmot magnitude B | magnitude acc | search s (sensitivity s) | uniform s | magnitude s |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for (b, limit, r, ss, ratio, ub, ua, us, mb, ma, ms) in rows:
            print(f"| {b} | {limit:,.0f} | {r.final['int8_bytes']:,} | {r.accuracy['tflm_accuracy']:.4f} | {ratio:.3f} | "
                  f"{ub:,} | {ua:.4f} | {mb:,} | {ma:.4f} | {ss:.0f} ({r.seconds.get('sensitivity', 0):.0f}) | "
                  f"{us:.0f} | {ms:.0f} |")

    if not args.skip_resnet:
        from tinyprune.load.data import Dataset
        from tinyprune.load.model import load_model

        model = load_model(SHARED / "mlperf_tiny" / "pretrainedResnet.h5")
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 1, (4000, 32, 32, 3)).astype(np.float32)
        y = model.predict(x, batch_size=256, verbose=0).argmax(1).astype(np.int64)
        ds = Dataset("noise-labelled-by-resnet", x[:3200], y[:3200], x[3200:], y[3200:])
        t = time.perf_counter()
        r = prune_for_budget(model, ds, work / "resnet_48KB", flash_budget="48KB", epochs=args.epochs, batch_size=64,
                             console=console, quiet=True)
        s = time.perf_counter() - t
        print(f"\nResNet-8 (pretrainedResnet.h5) to a 48 KB flash budget: original {r.original['int8_bytes']:,} B "
              f"int8, arena {r.original['arena_bytes']:,} B -> {r.final['int8_bytes']:,} B (limit {48 * 1024:,} B), "
              f"arena {r.final['arena_bytes']:,} B; agreement with the original on held-out noise images "
              f"{r.accuracy['tflm_accuracy']:.4f} (no CIFAR-10 here); {s:.0f} s wall "
              f"(sensitivity {r.seconds.get('sensitivity', 0):.0f} s).")
    print(f"\noutputs in {work}")


if __name__ == "__main__":
    main()
