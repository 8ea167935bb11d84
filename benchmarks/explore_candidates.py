"""Exploration behind the candidates' ranking (budget/candidates.py): at one budget and seed, the
test accuracy (float Keras, the 10,000 MNIST test images) of every allocation candidate's probe,
of the default final fine-tune from every candidate, and of final fine-tune variants from the
chosen one. It wraps the search's private fine-tune functions to see inside one run.

Usage: PYTHONPATH=. .venv/bin/python benchmarks/explore_candidates.py FRACTION SEED DENSE_H5 WORK
  (DENSE_H5: bench_budget_hard.py's trained dense.h5). Writes WORK/FRACTION_SEED/result.json.
Results and the machine are in docs/benchmarks.md ("Fifth run"). Not a timed benchmark.
"""
import json, sys, time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT)); sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_budget_hard import BATCH, load_mnist, small_data
from tinyprune import training
from tinyprune.load.model import load_model
from tinyprune.budget import search
from tinyprune.tfsetup import keras

frac, seed = float(sys.argv[1]), int(sys.argv[2])
out = Path(sys.argv[4]) / f"{frac}_{seed}"; out.mkdir(parents=True, exist_ok=True)
x_tr, y_tr, x_te, y_te = load_mnist()
ds = small_data(x_tr, y_tr)
model = load_model(sys.argv[3]); training.compile_for(model, ds)

def test_acc(m):
    return float((training.predict(m, x_te).argmax(1) == y_te).mean())

probes, finals = [], {}
orig_one, orig_ft = search._fine_tune_one, search._fine_tune
def one(student, teacher, d, dsc, labels, epochs, bs, cfg, desc, quiet, callbacks=()):
    r = orig_one(student, teacher, d, dsc, labels, epochs, bs, cfg, desc, quiet, callbacks)
    if desc == "allocation candidate":
        probes.append({"test": test_acc(student), "val": training.evaluate(student, dsc),
                       "loss": training.validation_loss(student, dsc), "weights": student.get_weights(),
                       "model": student})
    return r
captured = {}
def ft(student, teacher, d, dsc, labels, epochs, bs, cfg, mode, desc, quiet, callbacks_for=lambda m: []):
    captured.update(start=student.get_weights(), teacher=teacher, d=d, dsc=dsc, epochs=epochs, cfg=cfg, student=student)
    w, done = orig_ft(student, teacher, d, dsc, labels, epochs, bs, cfg, mode, desc, quiet, callbacks_for)
    finals["search_final"] = test_acc(w)
    return w, done
search._fine_tune_one, search._fine_tune = one, ft
t = time.time()
r = search.prune_for_budget(model, ds, out / "run", flash_budget=f"{frac*100:g}%", epochs=8, batch_size=BATCH, seed=seed,
                            quiet=True, force=True, iterative_steps=1, mixup=4)
search._fine_tune_one, search._fine_tune = orig_one, orig_ft
cands = list(r.choices["allocation"]["candidates"].items())
res = {"chosen": r.choices["allocation"]["importance"] + " " + r.choices["allocation"]["chosen"],
       "search_seconds": time.time() - t, "search_final_float": finals["search_final"], "candidates": {}}
# probes are in the order of the scored candidates, twins (same importance and keep counts) once
uniq = []
seen = set()
for name, c in cands:
    key = (c["importance"], tuple(c["keep"].values()))
    if key in seen: continue
    seen.add(key); uniq.append(name)
assert len(uniq) == len(probes), (uniq, len(probes))

def final_from(weights, cfg, epochs, labels_only=False):
    st = captured["student"]
    m = keras.models.clone_model(st); m.set_weights(weights)
    with training.reproducible(seed):
        if labels_only:
            training.compile_for(m, captured["dsc"])
            training.train(m, captured["dsc"], epochs, BATCH, quiet=True, early_stopping=3)
        else:
            training.distill(m, captured["teacher"], captured["d"], epochs, BATCH, config=cfg, labels=True,
                             early_stopping=3, quiet=True)
            training.compile_for(m, captured["dsc"])
    return {"test": test_acc(m), "val": training.evaluate(m, captured["dsc"]), "loss": training.validation_loss(m, captured["dsc"])}

D = training.DistillConfig
for name, p in zip(uniq, probes):
    row = {"probe_test": p["test"], "probe_val": p["val"], "probe_loss": p["loss"]}
    # the probe's model here has the candidate's own architecture; rebuild from it
    captured["student"] = p["model"]
    row["fm_final"] = final_from(p["weights"], D(mixup=4), 8)
    res["candidates"][name] = row
    print(name, json.dumps(row), flush=True)
# variants from the chosen start
chosen_probe = next((p for n, p in zip(uniq, probes) if n == res["chosen"]), None)
captured["student"] = chosen_probe["model"] if chosen_probe else captured["student"]
start = chosen_probe["weights"] if chosen_probe else captured["start"]
variants = {"labels 8": (None, 8, True), "fm4 8": (D(mixup=4), 8, False), "fm4 16": (D(mixup=4), 16, False),
            "fm8 8": (D(mixup=8), 8, False), "fm4 w1.0": (D(mixup=4, weight=1.0), 8, False),
            "fm4 T2": (D(mixup=4, temperature=2.0), 8, False), "kd0 8": (D(mixup=0), 8, False)}
res["variants"] = {}
for k, (cfg, ep, lab) in variants.items():
    res["variants"][k] = final_from(start, cfg, ep, lab)
    print(k, res["variants"][k], flush=True)
(out / "result.json").write_text(json.dumps(res, indent=1))
print("done", time.time() - t)
