"""Exploration behind training/averaging.py: from one allocation's probe, what the final fine-tune's
variants and weight averages score on the 10,000 MNIST test images (float Keras).

Usage: PYTHONPATH=. .venv/bin/python benchmarks/explore_final_average.py KEEP_JSON SEEDS DENSE_H5
  e.g. '{"conv1": 24, "conv2": 31, "conv3": 27, "fc1": 24}' 0,1,2 /work/bench/h5/dense.h5
  (the keep counts the budget search chose at 25% on every seed: l1 blend 0.5; DENSE_H5 is
  bench_budget_hard.py's trained dense.h5).

Per seed: the probe (L1-pruned to KEEP, 8 epochs on the 600 labels, early stopping 3), the
distillation with function matching continued from it (8 epochs, early stopping 3; "fm"), its
per-epoch weight average ("swa"), the mean of probe and fm weights ("soup"), and a 16-epoch run.
Results and the machine are in docs/benchmarks.md ("Fifth run"). Not a timed benchmark.
"""
import json, sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_budget_hard import BATCH, load_mnist, small_data
from tinyprune import training
from tinyprune.load.model import load_model
from tinyprune.prune.structured.pruner import prune_structured
from tinyprune.tfsetup import keras

keep = json.loads(sys.argv[1]); seeds = [int(s) for s in sys.argv[2].split(",")]
x_tr, y_tr, x_te, y_te = load_mnist()
ds = small_data(x_tr, y_tr)
teacher = load_model(sys.argv[3]); training.compile_for(teacher, ds)
acc = lambda m: float((training.predict(m, x_te).argmax(1) == y_te).mean())

class Avg(keras.callbacks.Callback):
    def __init__(self, start=1):
        super().__init__(); self.start, self.sum, self.n = start, None, 0
    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 < self.start: return
        w = [np.asarray(v, np.float64) for v in self.model.get_weights()]
        self.sum = w if self.sum is None else [a + b for a, b in zip(self.sum, w)]; self.n += 1
    def averaged(self):
        return [(a / self.n).astype(np.float32) for a in self.sum]

def avg(*ws):
    return [np.mean(z, axis=0).astype(np.float32) for z in zip(*ws)]

for seed in seeds:
    res = {}
    with training.reproducible(seed):
        p = prune_structured(teacher, group_keep=keep, importance="l1", data=ds).model
        training.compile_for(p, ds); training.train(p, ds, 8, BATCH, quiet=True, early_stopping=3)
        P = p.get_weights(); res["probe"] = acc(p)
        f = keras.models.clone_model(p); f.set_weights(P)
        cb = Avg(1)
        training.distill(f, teacher, ds, 8, BATCH, config=training.DistillConfig(mixup=4), early_stopping=3, quiet=True, callbacks=[cb])
        training.compile_for(f, ds); F = f.get_weights(); res["fm"] = acc(f)
        f.set_weights(cb.averaged()); res["fm swa(all epochs)"] = acc(f); SW = f.get_weights()
        f.set_weights(avg(P, F)); res["soup(probe,fm)"] = acc(f)
        f.set_weights(avg(P, SW)); res["soup(probe,fm swa)"] = acc(f)
        g = keras.models.clone_model(p); g.set_weights(P)
        cb2 = Avg(1)
        training.distill(g, teacher, ds, 16, BATCH, config=training.DistillConfig(mixup=4), early_stopping=0, quiet=True, callbacks=[cb2])
        res["fm16 noES"] = acc(g); g.set_weights(cb2.averaged()); res["fm16 swa"] = acc(g)
    print(seed, json.dumps({k: round(v * 100, 2) for k, v in res.items()}), flush=True)
