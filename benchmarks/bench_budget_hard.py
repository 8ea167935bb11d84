"""Prune for a budget where it is hard: little labelled data, tight budgets, several seeds.

Usage: .venv/bin/python benchmarks/bench_budget_hard.py [--work DIR] [--seeds 0,1,2] [--epochs 8]
       [--dense-epochs 8] [--full-epochs 2] [--skip-full] [--skip-unlabelled] [--report-only]

1. Trains the MNIST CNN of benchmarks/bench_budget.py (about 210 KB int8) on 59,000 MNIST
   training images (seed 0, up to `--dense-epochs`, early stopping on the other 1,000), once;
   it is saved in the work folder and reused on a rerun. (A user brings a trained model: the
   first version of this benchmark trained 2 epochs, and its 97.07% teacher was worse than
   its own students fine-tuned on 600 images.)
2. Small data: 600 labelled MNIST training images to fine-tune on, 400 for validation (a fixed
   draw, the same for every row). For flash budgets 25%, 12.5% and 6.25% of the dense int8
   bytes and every seed, side by side, the same fine-tuning epochs everywhere:
   - old: the first budget search's settings (labels only, one shot, L1 importance, the greedy
     sensitivity allocation);
   - new: the budget search's defaults (importance by the measured rule; allocation shapes
     from the sensitivity allocation to one uniform ratio, each scored after a short
     fine-tune; fine-tuning by distillation from the unpruned model (through its logits) AND
     by labels only from the same start, the better validation score kept), one shot (its rows
     are the second session's; run today, the settings take today's rules: arms by loss, and so on);
   - new + averaging: the fifth session's defaults: the same, its distillation also on 4
     teacher-labelled mixed inputs per training image (`mixup=4`, training/distillation.py;
     function matching), the allocation candidates ranked by validation loss, and the final
     model the average of the winning probe's and its continued fine-tune's weights
     (training/averaging.py); every fine-tune at Adam's constant default rate;
   - new + cosine (report only: rows of the sixth session's first change): the same with every
     fine-tune's rate decayed to zero over its run (`lr_schedule="cosine"`, training/schedule.py);
   - new + cosine + loss arms: today's defaults: the same, `distill="auto"` keeping the arm
     (distillation or labels only) with the lower validation loss (was: the better score);
   - new + function matching (report only: rows of the fourth session's code, before loss
     ranking and averaging); its "unweighted" rows are its first version, where every mix
     weighed as much as an image;
   - distil always: the same but always distillation (the first default, kept as a row);
   - new x3: the same in 3 iterative steps;
   - uniform L1: one ratio for every group, the smallest whose artifact meets the budget, L1
     channels, fine-tuned on the labels;
   - uniform L1 2x epochs (with `--methods`): the same, fine-tuned twice as long, as long as the
     new search's winner trains (its probe's epochs, then the final fine-tune's);
   - uniform L1 cosine: uniform L1 fine-tuned with the cosine schedule (the baseline given the
     search's new learning rate);
   - tfmot magnitude + PRUNE: the sparsity whose PRUNE-compressed artifact meets the budget
     (polynomial schedule during the fine-tune); where no sparsity can (PRUNE keeps a 1-bit
     mask per weight), the row says so with the smallest artifact it reaches.
3. All 60,000 training images (1,000 of them held out for validation) at 12.5% and 6.25%
   (`--full-seeds`, default the same seeds; `--full-epochs`), each of `--methods` that is a search
   or uniform L1; the unlabelled run (600 images, y absent, teacher only) at 12.5%.

Accuracy: int8 on the 10,000 MNIST test images. TFLM's reference kernels take ~27 ms per image for
the dense model on this machine, too slow for ~60 artifacts, so the 10,000-image accuracy is
computed with the TFLite interpreter's builtin int8 kernels, and every artifact is also run in
TFLM on the first `--tflm-check` test images: the table says whether its TFLM outputs are
bit-identical to TFLite's there (`--tflm-full` runs TFLM on all 10,000 instead).
Every finished row is appended to WORK/rows.jsonl as it finishes; `--report-only` prints the
tables from that file (partial runs print what finished).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
SHARED = Path(os.environ.get("TINYPRUNE_SHARED_DATA", ROOT.parent / "shared" / "data"))
if not (SHARED / "mnist").is_dir():
    SHARED = Path("/work/shared/data")
BUDGETS = (0.25, 0.125, 0.0625)
SMALL_TRAIN, SMALL_VAL = 600, 400
BATCH = 32
METHODS = ("old", "new", "new + function matching", "new + function matching, unweighted", "new + averaging",
           "distil always",
           "new x3", "distil always x3", "new + cosine", "new + cosine + loss arms", "uniform L1",
           "uniform L1 2x epochs", "uniform L1 cosine", "magnitude+PRUNE")
# rows of earlier code, kept in rows.jsonl and in the tables, that this script no longer runs
REPORT_ONLY = ("new + function matching, unweighted", "new + function matching", "new + cosine")
SEARCHES = ("old", "new", "new + averaging", "distil always", "new x3", "distil always x3", "new + cosine",
            "new + cosine + loss arms")
UNIFORM = {"uniform L1": (1, "constant"), "uniform L1 2x epochs": (2, "constant"), "uniform L1 cosine": (1, "cosine")}
LATEST = "new + cosine + loss arms"  # the search's defaults; the verdicts compare it with every other row
DEFAULT_METHODS = ("old", "new + averaging", LATEST, "uniform L1", "uniform L1 cosine", "magnitude+PRUNE")


def load_mnist():
    tr, te = np.load(SHARED / "mnist" / "mnist_train.npz"), np.load(SHARED / "mnist" / "mnist_test.npz")
    x_tr = (tr["x"].astype(np.float32) / 255.0)[..., None]
    x_te = (te["x"].astype(np.float32) / 255.0)[..., None]
    return x_tr, tr["y"].astype(np.int64), x_te, te["y"].astype(np.int64)


def small_data(x_tr, y_tr):
    """The fixed draw every small-data row uses: 600 training and 400 validation images (seed 0)."""
    from tinyprune.load.data import Dataset

    idx = np.random.default_rng(0).permutation(len(x_tr))[:SMALL_TRAIN + SMALL_VAL]
    return Dataset("mnist-600", x_tr[idx[:SMALL_TRAIN]], y_tr[idx[:SMALL_TRAIN]], x_tr[idx[SMALL_TRAIN:]],
                   y_tr[idx[SMALL_TRAIN:]])


def full_data(x_tr, y_tr):
    """The full-data rows' split: the first 59,000 training images to fine-tune on, the last 1,000
    for validation."""
    from tinyprune.load.data import Dataset

    return Dataset("mnist-full", x_tr[:59000], y_tr[:59000], x_tr[59000:], y_tr[59000:])


def test_accuracy(tflite: bytes, x_te, y_te, tflm_check: int, tflm_full: bool) -> dict:
    from firmware_export import tflm
    from tinyprune.quantize.parity import tflite_run

    if tflm_full:
        out = tflm.run(tflite, x_te)
        return {"acc": float((out.argmax(1) == y_te).mean()), "by": "tflm", "tflm_identical": True}
    out = tflite_run(tflite, x_te)
    micro = tflm.run(tflite, x_te[:tflm_check])
    same = bool(np.array_equal(micro, out[:tflm_check]))
    return {"acc": float((out.argmax(1) == y_te).mean()), "by": "tflite", "tflm_identical": same,
            "tflm_top1_agree": float((micro.argmax(1) == out[:tflm_check].argmax(1)).mean()),
            "tflm_acc_check": float((micro.argmax(1) == y_te[:tflm_check]).mean()),
            "tflite_acc_check": float((out[:tflm_check].argmax(1) == y_te[:tflm_check]).mean())}


def uniform_baseline(model, ds, limit: float, epochs: int, seed: int, lr_schedule: str = "constant"):
    """Smallest uniform ratio whose artifact meets `limit`, L1 channels, fine-tuned on the labels
    (Adam at its default rate, constant or decayed by `lr_schedule`)."""
    from firmware_export import tflm
    from tinyprune import training
    from tinyprune.budget.predictor import SizePredictor
    from tinyprune.prune.structured.dependency import build_graph
    from tinyprune.prune.structured.pruner import prune_structured, round_keep
    from tinyprune.quantize.int8 import quantize_int8

    dense = quantize_int8(model, ds.x_train, 64)
    arena = tflm.measure_arena(dense)
    graph = build_graph(model, ("classes",))
    predictor = SizePredictor(model, graph, len(dense), arena.target_bytes, arena.head_bytes)

    def keep_at(r):
        return {g.id: round_keep(g.channels * (1 - r), g.channels, 1, g.min_keep) for g in graph.groups if g.prunable}

    lo, hi = 0.0, 0.995
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if predictor.predict(keep_at(mid)).flash_bytes <= limit else (mid, hi)
    ratio = hi
    with training.reproducible(seed):
        while True:
            pruned = prune_structured(model, ratio, importance="l1")
            if len(quantize_int8(pruned.model, ds.x_train, 64)) <= limit or ratio >= 0.995:
                break
            ratio = min(0.995, ratio + 0.005)
        training.compile_for(pruned.model, ds)
        training.train(pruned.model, ds, epochs, BATCH, description="uniform L1 fine-tune", quiet=True,
                       early_stopping=3, callbacks=training.schedule_callbacks(lr_schedule))
        tfl = quantize_int8(pruned.model, ds.x_train, 300)
    return {"ratio": round(ratio, 4)}, tfl


def _masked_copy(model, sparsity: float):
    """A copy with the smallest |w| of every Conv/Dense kernel zeroed (tfmot's per-layer rule)."""
    from tinyprune.prune.magnitude import is_prunable
    from tinyprune.tfsetup import keras

    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    for layer in twin.layers:
        if is_prunable(layer):
            w = layer.get_weights()
            k = w[0]
            cut = np.quantile(np.abs(k), sparsity)
            w[0] = np.where(np.abs(k) <= cut, 0.0, k)
            layer.set_weights(w)
    return twin


def prune_bytes(model, ds, sparsity: float) -> int:
    from firmware_export.compress import compress_model
    from tinyprune.quantize.int8 import quantize_int8

    return len(compress_model(quantize_int8(_masked_copy(model, sparsity), ds.x_train, 64), "prune",
                              measure=False).data)


def magnitude_baseline(model, ds, limit: float, epochs: int, seed: int):
    """tfmot magnitude at the sparsity whose PRUNE artifact meets `limit` (None if none can)."""
    from firmware_export.compress import compress_model, same_outputs
    from tinyprune import training
    from tinyprune.prune.magnitude import Schedule, prune_magnitude
    from tinyprune.quantize.int8 import quantize_int8

    floor = prune_bytes(model, ds, 0.99)
    if floor > limit:
        return {"sparsity": None, "floor_bytes": floor}, None, None
    lo, hi = 0.0, 0.99
    for _ in range(7):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if prune_bytes(model, ds, mid) <= limit else (mid, hi)
    sparsity = hi
    with training.reproducible(seed):
        while True:
            res = prune_magnitude(model, ds, Schedule("polynomial", 0.0, sparsity), epochs=epochs, batch_size=BATCH,
                                  quiet=True)
            int8 = quantize_int8(res.model, ds.x_train, 300)
            comp = compress_model(int8, "prune", measure=False).data
            if len(comp) <= limit or sparsity >= 0.99:
                break
            sparsity = min(0.99, sparsity + 0.01)
    return {"sparsity": round(sparsity, 4), "tflm_decode_identical": bool(same_outputs(int8, comp))}, int8, comp


def record(work: Path, row: dict) -> None:
    with open(work / "rows.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps({k: v for k, v in row.items() if k != "stages"}), flush=True)


def done_keys(work: Path) -> set:
    path = work / "rows.jsonl"
    if not path.is_file():
        return set()
    return {(r["setting"], r["budget"], r["method"], r["seed"]) for r in map(json.loads, path.read_text().splitlines())}


def run_search(model, ds, out: Path, frac: float, seed: int, epochs: int, method: str) -> tuple[dict, bytes]:
    from rich.console import Console

    from tinyprune.budget.search import prune_for_budget

    kw = {"old": dict(distill=False, iterative_steps=1, importance="l1", allocation="sensitivity"),
          "new": dict(iterative_steps=1, mixup=0), "new + averaging": dict(iterative_steps=1, mixup=4),
          "new + cosine + loss arms": dict(iterative_steps=1, mixup=4, lr_schedule="cosine"),
          "distil always": dict(iterative_steps=1, distill=True, mixup=0),
          "new x3": dict(iterative_steps=3, mixup=0),
          "distil always x3": dict(iterative_steps=3, distill=True, mixup=0)}[method]
    kw.setdefault("lr_schedule", "constant")  # every earlier version of the search trained at a constant rate
    r = prune_for_budget(model, ds, out, flash_budget=f"{frac * 100:g}%", epochs=epochs, batch_size=BATCH, seed=seed,
                         quiet=True, console=Console(stderr=True, quiet=True), force=True, **kw)
    tfl = (out / "model_int8.tflite").read_bytes()
    info = {"choices": {k: (v if k != "importance" else v["chosen"]) for k, v in r.choices.items()},
            "stages": r.seconds, "val_tflm": r.accuracy["tflm_accuracy"], "steps": len(r.steps),
            "fine_tune_chosen": r.steps[-1]["fine_tune"]["mode"] if r.steps else None, "keep": r.keep}
    return info, tfl


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/bench_budget_hard")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--budgets", default=",".join(str(b) for b in BUDGETS), help="fractions of the dense int8 bytes")
    ap.add_argument("--epochs", type=int, default=8, help="fine-tuning epochs on the 600 images (every method)")
    ap.add_argument("--dense-epochs", type=int, default=8, help="at most; early stopping (patience 2)")
    ap.add_argument("--full-epochs", type=int, default=2, help="fine-tuning epochs with the full training set")
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS), help=f"of {', '.join(METHODS)}")
    ap.add_argument("--tflm-check", type=int, default=1000)
    ap.add_argument("--tflm-full", action="store_true")
    ap.add_argument("--full-seeds", default=None, help="seeds of the full-data runs (default: --seeds)")
    ap.add_argument("--full-budgets", default="0.125,0.0625", help="fractions for the full-data runs")
    ap.add_argument("--skip-full", action="store_true")
    ap.add_argument("--skip-unlabelled", action="store_true")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        return report(work)

    from bench_budget import build_cnn
    from tinyprune import training
    from tinyprune.load.data import Dataset
    from tinyprune.load.model import load_model
    from tinyprune.quantize.int8 import quantize_int8
    from tinyprune.tfsetup import keras

    x_tr, y_tr, x_te, y_te = load_mnist()
    dense_path = work / "dense.h5"
    full = full_data(x_tr, y_tr)
    if dense_path.is_file():
        model = load_model(dense_path)
        training.compile_for(model, full)
    else:
        t = time.perf_counter()
        with training.reproducible(0):
            model = build_cnn(keras)
            training.compile_for(model, full)
            training.train(model, full, args.dense_epochs, 128, description="dense MNIST CNN", early_stopping=2)
        model.save(dense_path, include_optimizer=False)
        print(f"dense trained in {time.perf_counter() - t:.0f} s", flush=True)
    dense_tfl = quantize_int8(model, x_tr, 300)
    dense_path.with_suffix(".tflite").write_bytes(dense_tfl)
    have = done_keys(work)
    if ("dense", 1.0, "dense", 0) not in have:
        acc = test_accuracy(dense_tfl, x_te, y_te, args.tflm_check, args.tflm_full)
        record(work, {"setting": "dense", "budget": 1.0, "method": "dense", "seed": 0, "bytes": len(dense_tfl),
                      "limit": len(dense_tfl), "test": acc, "seconds": 0, "params": int(model.count_params())})

    small = small_data(x_tr, y_tr)
    methods = [m for m in args.methods.split(",") if m in METHODS and m not in REPORT_ONLY]
    seeds = [int(s) for s in args.seeds.split(",")]

    def one(setting, ds, frac, method, seed, epochs):
        if (setting, frac, method, seed) in have:
            return
        limit = frac * len(dense_tfl)
        t = time.perf_counter()
        extra, comp = {}, None
        if method in SEARCHES:
            extra, tfl = run_search(model, ds, work / f"{setting}_{method.replace(' ', '')}_{frac}_{seed}", frac, seed,
                                    epochs, method)
        elif method in UNIFORM:  # 2x: as long as the new search's winner trains
            times, schedule = UNIFORM[method]
            extra, tfl = uniform_baseline(model, ds, limit, epochs * times, seed, schedule)
        else:
            extra, tfl, comp = magnitude_baseline(model, ds, limit, epochs, seed)
        row = {"setting": setting, "budget": frac, "method": method, "seed": seed, "limit": limit, **extra,
               "seconds": round(time.perf_counter() - t, 1)}
        if tfl is None:
            row.update(bytes=None, test=None)
        else:
            row.update(bytes=len(comp or tfl), test=test_accuracy(tfl, x_te, y_te, args.tflm_check, args.tflm_full))
        record(work, row)

    budgets = [float(b) for b in args.budgets.split(",")]
    for seed in seeds:
        for frac in budgets:
            for method in methods:
                if method == "magnitude+PRUNE" and seed != seeds[0] and frac < 0.25 and \
                        ("small", frac, method, seeds[0]) in done_keys(work):
                    prev = [r for r in map(json.loads, (work / "rows.jsonl").read_text().splitlines())
                            if (r["setting"], r["budget"], r["method"]) == ("small", frac, method)]
                    if prev and prev[0]["bytes"] is None:
                        continue  # infeasible does not depend on the seed
                one("small", small, frac, method, seed, args.epochs)
    if not args.skip_unlabelled:
        unl = Dataset("mnist-600-unlabelled", small.x_train, None, small.x_val, None)
        one("unlabelled", unl, 0.125, LATEST if LATEST in methods else "new", seeds[0], args.epochs)
    if not args.skip_full:
        full_seeds = seeds if args.full_seeds is None else [int(s) for s in args.full_seeds.split(",")]
        for seed in full_seeds:
            for frac in (float(b) for b in args.full_budgets.split(",")):
                for method in ("new", "new + averaging", "new + cosine", LATEST, "uniform L1", "uniform L1 cosine",
                               "old", "uniform L1 2x epochs"):
                    if method in methods:
                        one("full", full, frac, method, seed, args.full_epochs)
    report(work)


def _stats(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{100 * vals[0]:.2f} (1 seed)"
    a = np.array(vals) * 100
    return f"{a.mean():.2f} ± {a.std(ddof=1):.2f} (n={len(a)})"


def verdicts(sub: list[dict], setting: str) -> None:
    """Per budget: the new search against every baseline, the margin and the larger seed spread."""
    lines = []
    for frac in sorted({r["budget"] for r in sub}, reverse=True):
        def accs(method):
            return [r["test"]["acc"] * 100 for r in sub if r["budget"] == frac and r["method"] == method and r["test"]]
        name = next((m for m in (LATEST, "new + cosine", "new + averaging", "new + function matching",
                                 "new + function matching, unweighted", "new")
                     if accs(m)), None)  # the search's defaults (the latest version measured)
        new = accs(name)
        if not new:
            continue
        for base in ("old", "new", "new + function matching", "new + function matching, unweighted",
                     "new + averaging", "new + cosine", "uniform L1", "uniform L1 2x epochs", "uniform L1 cosine",
                     "magnitude+PRUNE"):
            if base == name:
                continue
            b = accs(base)
            if not b:
                continue
            spread = max(np.std(new, ddof=1) if len(new) > 1 else 0.0, np.std(b, ddof=1) if len(b) > 1 else 0.0)
            margin = np.mean(new) - np.mean(b)
            lines.append(f"- {setting} {frac:.2%}: {name} - {base} = {margin:+.2f} points "
                         f"(larger seed sd {spread:.2f}): "
                         + ("above by more than the spread" if margin > spread else "NOT above by more than the spread"))
    if lines:
        print("\n" + "\n".join(lines))


def report(work: Path) -> None:
    rows = [json.loads(line) for line in (work / "rows.jsonl").read_text().splitlines()]
    dense = next((r for r in rows if r["method"] == "dense"), None)
    if dense:
        print(f"\ndense MNIST CNN: {dense['params']:,} parameters, int8 {dense['bytes']:,} B, test accuracy "
              f"{100 * dense['test']['acc']:.2f}% (10,000 images, by {dense['test']['by']}; TFLM identical on the "
              f"check: {dense['test']['tflm_identical']})\n")
    for setting in ("small", "full", "unlabelled"):
        sub = [r for r in rows if r["setting"] == setting]
        if not sub:
            continue
        print(f"\n### {setting}\n")
        print("| budget | method | seeds | int8 B (max) | limit B | test accuracy % (mean ± sd) | "
              "TFLM vs TFLite on the check images | wall s (mean) | notes |")
        print("| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | --- |")
        for frac in sorted({r["budget"] for r in sub}, reverse=True):
            for method in METHODS:
                rs = [r for r in sub if r["budget"] == frac and r["method"] == method]
                if not rs:
                    continue
                accs = [r["test"]["acc"] if r["test"] else None for r in rs]
                sizes = [r["bytes"] for r in rs if r["bytes"]]
                note = ""
                if method.startswith("uniform L1"):
                    note = "ratio " + ", ".join(str(r["ratio"]) for r in rs)
                elif method == "magnitude+PRUNE":
                    note = ("sparsity " + ", ".join(str(r["sparsity"]) for r in rs) if rs[0]["sparsity"] is not None
                            else f"cannot meet: smallest PRUNE artifact (99% sparse) {rs[0]['floor_bytes']:,} B")
                elif "choices" in rs[0]:
                    c = rs[0]["choices"]
                    note = f"importance {', '.join(r['choices']['importance'] for r in rs)}; " \
                           f"allocation {', '.join(r['choices'].get('allocation', {}).get('chosen', '-') for r in rs)}; " \
                           f"fine-tune {', '.join(str(r.get('fine_tune_chosen', c['fine_tune']['mode'])) for r in rs)}; " \
                           f"steps {rs[0]['steps']}"
                agree = [r["test"].get("tflm_top1_agree", 1.0 if r["test"]["tflm_identical"] else None)
                         for r in rs if r["test"]]
                same = "identical" if all(r["test"]["tflm_identical"] for r in rs if r["test"]) else (
                    "top-1 " + ", ".join("?" if a is None else f"{100 * a:.1f}%" for a in agree))
                print(f"| {frac:.2%} | {method} | {len(rs)} | {max(sizes):,} | {rs[0]['limit']:,.0f} | "
                      f"{_stats(accs)} | {same} | {np.mean([r['seconds'] for r in rs]):.0f} | "
                      f"{note} |" if sizes else
                      f"| {frac:.2%} | {method} | {len(rs)} | - | {rs[0]['limit']:,.0f} | - | - | "
                      f"{np.mean([r['seconds'] for r in rs]):.0f} | {note} |")
        verdicts(sub, setting)
    stages = [r for r in rows if r.get("stages")]
    if stages:
        print("\n### share of wall time per stage (budget searches, mean over runs)\n")
        for method in (m for m in METHODS if m in SEARCHES or m in REPORT_ONLY):
            rs = [r for r in stages if r["method"] == method and r["setting"] == "small"]
            if not rs:
                continue
            keys = {}
            for r in rs:
                for k, v in r["stages"].items():
                    if k != "total":
                        k2 = k.split(": ", 1)[-1]
                        keys[k2] = keys.get(k2, 0) + v
            total = sum(r["stages"]["total"] for r in rs)
            print(f"- {method}: {total / len(rs):.0f} s per search; " + ", ".join(
                f"{k} {100 * v / total:.0f}%" for k, v in keys.items()))


if __name__ == "__main__":
    main()
