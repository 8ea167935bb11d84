"""Exploration behind training/schedule.py: uniform L1 structured pruning at a budget, fine-tuned
at Adam's constant default rate and with the rate decayed to zero over the run (cosine), on the
10,000 MNIST test images (int8, TFLite's kernels).

Usage: PYTHONPATH=. .venv/bin/python benchmarks/explore_lr_schedule.py WORK [SETTING:BUDGET:SEED ...]
  WORK holds bench_budget_hard.py's trained dense.h5; e.g. small:0.0625:0 full:0.0625:0
  (small: the benchmark's 600/400 draw, 8 epochs; full: 59,000/1,000, 2 epochs).
Results and the machine are in docs/benchmarks.md ("Sixth run"). Not a timed benchmark.
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_budget_hard import full_data, load_mnist, small_data, test_accuracy, uniform_baseline  # noqa: E402


def main() -> None:
    from tinyprune import training
    from tinyprune.load.model import load_model
    from tinyprune.quantize.int8 import quantize_int8

    work = Path(sys.argv[1])
    points = sys.argv[2:] or ["small:0.25:0", "small:0.0625:0", "full:0.0625:0"]
    x_tr, y_tr, x_te, y_te = load_mnist()
    data = {"small": (small_data(x_tr, y_tr), 8),
            "full": (full_data(x_tr, y_tr), 2)}
    model = load_model(work / "dense.h5")
    training.compile_for(model, data["full"][0])
    dense = len(quantize_int8(model, x_tr, 64))
    for point in points:
        setting, frac, seed = point.split(":")
        ds, epochs = data[setting]
        for schedule in ("constant", "cosine"):
            extra, tfl = uniform_baseline(model, ds, float(frac) * dense, epochs, int(seed), schedule)
            acc = test_accuracy(tfl, x_te, y_te, 10, False)["acc"]
            print(f"{setting} {float(frac):.2%} seed {seed} {schedule}: {len(tfl):,} B ratio {extra['ratio']} "
                  f"test {acc:.2%}", flush=True)


if __name__ == "__main__":
    main()
