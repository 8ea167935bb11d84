"""Accuracy vs compression for pruning before training on MNIST (the shape of Tanaka et al.'s Fig. 6).

For each score (random, magnitude, SNIP, GraSP, SynFlow) and compression rho in 10^0.5..10^2.5,
the same freshly initialized small CNN (same seed, same initial weights for every method) is
pruned at initialization and then trained with its masks held for the same budget; the test
accuracy is recorded together with the smallest per-layer kept fraction (0 = layer collapse;
the guard is switched off here, allow_collapse=True, so that collapse is measured, not stopped).
IMP (lottery ticket, rewinding to the initialization) runs at 10^1 and 10^2; it spends
`rounds` extra trainings to find its mask, and its final ticket gets the same training budget.

    .venv/bin/python benchmarks/bench_init_pruning.py            # the table in docs/benchmarks.md
    .venv/bin/python benchmarks/bench_init_pruning.py --quick    # 2 compressions, smoke run

Prints markdown tables. Data: ../shared/data/mnist/mnist_{train,test}.npz (keys x, y).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MNIST = Path(os.environ.get("TINYPRUNE_SHARED_DATA", ROOT.parent / "shared" / "data")) / "mnist"
COMPRESSIONS = [10 ** 0.5, 10 ** 1.0, 10 ** 1.5, 10 ** 2.0, 10 ** 2.5]  # the grid
IMP_COMPRESSIONS = [10 ** 1.0, 10 ** 2.0]
METHODS = ["random", "magnitude", "snip", "grasp", "synflow"]


def load_mnist(train_size: int):
    from tinyprune.load.data import Dataset

    tr, te = np.load(MNIST / "mnist_train.npz"), np.load(MNIST / "mnist_test.npz")
    rng = np.random.default_rng(0)
    idx = np.sort(rng.permutation(len(tr["y"]))[:train_size])
    x_tr = (tr["x"][idx].astype(np.float32) / 255.0)[..., None]
    x_te = (te["x"].astype(np.float32) / 255.0)[..., None]
    return Dataset("mnist", x_tr, tr["y"][idx].astype(np.int64), x_te, te["y"].astype(np.int64))


def build_cnn(seed: int):
    """conv16-BN-ReLU-pool, conv32-BN-ReLU-pool, conv32-BN-ReLU, flatten, dense64, dense10 (114,960 prunable weights).

    BatchNorm momentum 0.9 (not Keras' 0.99) so that its moving statistics settle within the
    few hundred steps of this budget; accuracy is measured in inference mode.
    """
    from tinyprune.tfsetup import keras, tf

    tf.random.set_seed(seed)
    inp = keras.Input((28, 28, 1))
    h = inp
    for i, (ch, pool) in enumerate([(16, True), (32, True), (32, False)], start=1):
        h = keras.layers.Conv2D(ch, 3, padding="same", use_bias=False, name=f"conv{i}")(h)
        h = keras.layers.BatchNormalization(momentum=0.9, name=f"bn{i}")(h)
        h = keras.layers.ReLU()(h)
        if pool:
            h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(64, activation="relu", name="fc1")(h)
    out = keras.layers.Dense(10, name="classes")(h)
    return keras.Model(inp, out)


def run_init(method: str, rho: float, ds, args) -> dict:
    from tinyprune.prune.at_init import masks as masklib
    from tinyprune.prune.at_init.pruner import prune_at_init, scoring_batch

    model = build_cnn(args.seed)
    x, y = scoring_batch(ds.x_train, ds.y_train)
    t0 = time.perf_counter()
    res = prune_at_init(model, method, rho, None, x, y, allow_collapse=True, quiet=True)
    t_prune = time.perf_counter() - t0
    acc = masklib.train_masked(model, ds, res.masks, args.epochs, args.batch_size, quiet=True)
    kept = {r.layer: r.fraction for r in masklib.kept_per_layer(res.masks)}
    return {"method": method, "rho": rho, "acc": acc, "kept": kept, "prune_s": t_prune, "rounds": res.rounds}


def run_imp(rho: float, ds, args) -> dict:
    from tinyprune.prune.at_init import masks as masklib
    from tinyprune.prune.at_init.lottery import lottery_ticket

    model = build_cnn(args.seed)
    t0 = time.perf_counter()
    res = lottery_ticket(model, ds, rho, args.imp_rounds, args.epochs, 0, args.batch_size, allow_collapse=True,
                         quiet=True)
    kept = {r.layer: r.fraction for r in masklib.kept_per_layer(res.masks)}
    return {"method": "imp", "rho": rho, "acc": res.final_score, "kept": kept,
            "prune_s": time.perf_counter() - t0, "rounds": res.rounds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-size", type=int, default=12000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--imp-rounds", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="only 10^1 and 10^2.5, no IMP")
    args = ap.parse_args()

    from tinyprune.prune.at_init import masks as masklib
    from tinyprune.tfsetup import keras, tf

    keras.utils.set_random_seed(args.seed)  # data order and dropout; the weights come from build_cnn(seed)
    ds = load_mnist(args.train_size)
    grid = [COMPRESSIONS[1], COMPRESSIONS[4]] if args.quick else COMPRESSIONS
    t_start = time.perf_counter()

    dense = build_cnn(args.seed)
    dense_acc = masklib.train_masked(dense, ds, masklib.full_masks(dense), args.epochs, args.batch_size, quiet=True)
    rows = []
    for method in METHODS:
        for rho in grid:
            r = run_init(method, rho, ds, args)
            rows.append(r)
            print(f"  {method:9s} rho={rho:7.2f} acc={r['acc']:.4f} min kept={min(r['kept'].values()):.4f} "
                  f"prune {r['prune_s']:.1f}s", flush=True)
    imp_rows = []
    if not args.quick:
        for rho in IMP_COMPRESSIONS:
            r = run_imp(rho, ds, args)
            imp_rows.append(r)
            print(f"  imp       rho={rho:7.2f} acc={r['acc']:.4f} min kept={min(r['kept'].values()):.4f} "
                  f"{r['prune_s']:.1f}s", flush=True)

    print(f"\nMachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"TensorFlow {tf.__version__}; total {time.perf_counter() - t_start:.0f} s")
    print(f"Budget: {len(ds.x_train)} MNIST training images, {args.epochs} epochs, batch {args.batch_size}, "
          f"Adam 1e-3, seed {args.seed}; test accuracy on the {len(ds.x_val)} MNIST test images. "
          f"Dense (rho = 1): {dense_acc:.4f}\n")
    header = "| method | " + " | ".join(f"10^{np.log10(r):.1f} ({r:.0f}x)" for r in grid) + " |"
    print("Test accuracy (smallest per-layer kept fraction in brackets; 0 = a layer collapsed):\n")
    print(header)
    print("|" + "---|" * (len(grid) + 1))
    for method in METHODS:
        cells = [f"{r['acc']:.3f} [{min(r['kept'].values()):.3g}]" for r in rows if r["method"] == method]
        print(f"| {method} | " + " | ".join(cells) + " |")
    if imp_rows:
        cells = {round(r["rho"], 3): f"{r['acc']:.3f} [{min(r['kept'].values()):.3g}]" for r in imp_rows}
        print(f"| IMP ({args.imp_rounds} rounds) | " + " | ".join(cells.get(round(r, 3), "-") for r in grid) + " |")
    top = max(grid)
    print(f"\nPer-layer kept fraction at compression {top:.0f}x:\n")
    layers = list(rows[0]["kept"])
    print("| method | " + " | ".join(layers) + " |")
    print("|" + "---|" * (len(layers) + 1))
    for r in rows + imp_rows:
        if abs(r["rho"] - top) < 1e-9:
            print(f"| {r['method']} | " + " | ".join(f"{r['kept'][n]:.4f}" for n in layers) + " |")


if __name__ == "__main__":
    main()
