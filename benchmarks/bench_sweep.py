"""Sweep wall time by backend: 1 local worker, 2 local worker processes, a local Ray with 2 CPUs.

Usage: .venv/bin/python benchmarks/bench_sweep.py [--data mnist|digits] [--train 60000] [--val 10000] [--epochs 1]
           [--budgets 50%,25%,12.5%] [--seeds 0,1] [--backends serial,processes,ray] [--model-epochs 3]
           [--work DIR]

- mnist: the MNIST CNN of bench_budget.py (build_cnn), trained once on all 60,000 images of
  ../shared/data/mnist/mnist_train.npz but the last 5,000, which decide early stopping (at
  most `--model-epochs` epochs, stopped after 2 without a better held-out loss, best weights
  kept), and cached in the work folder (`--work DIR` keeps it for the next run); its accuracy
  on the 10,000 images of mnist_test.npz is printed. The sweep fine-tunes on the first
  `--train` training images and validates on the first `--val` test images.
  digits: the bundled models/digits_cnn.h5 on sklearn's digits.
- The same sweep (budgets x seeds, `--epochs` of fine-tuning per point) runs once per
  backend into a fresh folder, through the library (`tinyprune.budget.sweep.sweep`). The
  sensitivity pass is measured once before the timings, so every run reads it from the same
  cache (equal footing; a cold sweep adds it once, whichever backend runs).
- Per backend: wall time, speed-up over 1 worker, the sum of the points' own
  `prune_for_budget` seconds, and the overhead per point = (wall x workers - sum of point
  seconds) / points: the worker capacity that did not go into pruning (worker start-up and
  TensorFlow import, shipping inputs and files, Ray start and stop, idle tail). Also whether
  the points match the 1-worker run (sizes exactly, accuracy: largest difference).
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


SHARED = Path(os.environ.get("TINYPRUNE_SHARED_DATA", ROOT.parent / "shared" / "data"))


HELD_OUT = 5000  # the last training images: early stopping of the dense model, never trained on
MODEL_PATIENCE = 2  # epochs without a better held-out loss before the dense model's training stops


def mnist_model(n_train: int, epochs: int, work: Path):
    """(the dense MNIST CNN, trained on all training images but the held-out ones; the sweep's
    data: the first `n_train` training images and the whole test set as validation)."""
    import bench_budget
    from bench_budget import build_cnn, mnist
    from tinyprune import training
    from tinyprune.load.data import Dataset
    from tinyprune.load.model import load_model
    from tinyprune.tfsetup import keras

    bench_budget.SHARED = SHARED  # ../shared/data, or TINYPRUNE_SHARED_DATA (e.g. from a git worktree)
    full = mnist(60000)
    path = work / f"mnist_cnn_full_{epochs}.h5"
    if path.is_file():
        model = load_model(path)
    else:
        keras.utils.set_random_seed(0)
        model = build_cnn(keras)
        fit = Dataset("mnist", full.x_train[:-HELD_OUT], full.y_train[:-HELD_OUT], full.x_train[-HELD_OUT:],
                      full.y_train[-HELD_OUT:])
        training.compile_for(model, fit)
        t = time.perf_counter()
        done = training.train(model, fit, epochs, 128, description="dense MNIST CNN", early_stopping=MODEL_PATIENCE)
        print(f"dense model: {done.epochs_run} epoch(s) on {len(fit.x_train):,} images in {time.perf_counter() - t:.0f} s",
              flush=True)
        model.save(path, include_optimizer=False)
    print(f"dense model: float accuracy {training.evaluate(model, full):.4f} on the {len(full.x_val):,} test images",
          flush=True)
    return model, full.subset(n_train, None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", choices=["mnist", "digits"], default="mnist")
    ap.add_argument("--train", type=int, default=60000, help="MNIST training images")
    ap.add_argument("--val", type=int, default=10000, help="MNIST test images used as validation data")
    ap.add_argument("--model-epochs", type=int, default=3,
                    help="most epochs of the dense MNIST model (early stopping on held-out images)")
    ap.add_argument("--epochs", type=int, default=1, help="fine-tuning epochs per point")
    ap.add_argument("--budgets", default="50%,25%,12.5%")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--backends", default="serial,processes,ray")
    ap.add_argument("--work", default=None, help="folder for the model and the sweeps (default: a temp folder)")
    args = ap.parse_args()

    work = Path(args.work or tempfile.mkdtemp(prefix="bench_sweep_"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TINYPRUNE_CACHE", str(work / "cache"))

    from rich.console import Console

    from tinyprune.budget.sweep import shared_sensitivity, sweep
    from tinyprune.budget.sweep_backends import make_backend

    if args.data == "mnist":
        model, ds = mnist_model(args.train, args.model_epochs, work)
        ds = ds.subset(None, args.val)
        batch = 128
    else:
        from tinyprune.load.data import load_data
        from tinyprune.load.model import load_model

        model = load_model(ROOT / "models" / "digits_cnn.h5")
        ds = load_data("digits").fit_to(model.input_shape)
        batch = 32
    budgets = args.budgets.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    t = time.perf_counter()
    shared_sensitivity(model, ds, "l1", 1, quiet=True)  # warm the cache once, outside the timings
    print(f"sensitivity measured once in {time.perf_counter() - t:.1f} s", flush=True)

    configs = {"serial": (1, None), "processes": (2, None), "ray": (2, "local")}
    rows, base = [], None
    for name in args.backends.split(","):
        workers, address = configs[name]
        backend = make_backend(workers, address)
        out = work / f"sweep_{name}"
        t = time.perf_counter()
        result = sweep(model, ds, budgets, out, seeds=seeds, epochs=args.epochs, batch_size=batch, backend=backend,
                       force=True, quiet=True, console=Console(stderr=True, quiet=True))
        wall = time.perf_counter() - t
        points = sum(p.seconds for p in result.points)
        n = len(result.points)
        if base is None:
            base = (wall, result)
        same = all(p.int8_bytes == q.int8_bytes and p.keep == q.keep for p, q in zip(result.points, base[1].points))
        dacc = max(abs(p.accuracy_tflm - q.accuracy_tflm) for p, q in zip(result.points, base[1].points))
        start = result.backend.get("start_seconds")
        rows.append((name, workers, wall, base[0] / wall, points, (wall * workers - points) / n, n,
                     len(result.failed), same, dacc, start, result.backend.get("close_seconds")))
        print(f"{name}: {wall:.1f} s wall, {n} points, point seconds {points:.1f}", flush=True)

    print(f"\n{args.data}: {len(budgets)} budgets ({args.budgets}) x {len(seeds)} seeds, {args.epochs} fine-tuning "
          f"epoch(s) per point" + (f", {args.train:,} training images" if args.data == "mnist" else "")
          + f", {os.cpu_count()} CPUs\n")
    print("| backend | workers | wall s | speed-up | sum of point s | overhead per point s | points | failed | "
          "same sizes as 1 worker | max accuracy diff | backend start s | backend stop s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |")
    for name, w, wall, sp, pts, over, n, nf, same, dacc, start, stop in rows:
        print(f"| {name} | {w} | {wall:.1f} | {sp:.2f}x | {pts:.1f} | {over:.1f} | {n} | {nf} | "
              f"{'yes' if same else 'NO'} | {dacc:.4f} | {'-' if start is None else f'{start:.1f}'} | "
              f"{'-' if stop is None else f'{stop:.1f}'} |")
    print(f"\noutputs in {work}")


if __name__ == "__main__":
    main()
