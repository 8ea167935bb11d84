"""Fuzz tinyprune with hostile inputs and print what happened, as a markdown table.

Usage: .venv/bin/python benchmarks/fuzz_inputs.py [--cases 300] [--mlperf-cases 40] [--cli-cases 30]

1. .tflite, in process: --cases seeded structural mutations of the demo int8 model (built here
   from models/digits_cnn.h5) and --mlperf-cases of each MLPerf Tiny .tflite in
   ../shared/data/mlperf_tiny (when present): bit flips, byte overwrites, truncations, padding,
   tensor/opcode/buffer/subgraph index edits, shape, rank, type and quantization edits
   (tests/security/mutate.py). Each goes through what inspect, fit, export and compress call
   (tests/security/harness.py), TFLM in a child process. Counted: refused by the validator,
   accepted, errors (UserError), tracebacks (any other exception).
2. .tflite, through the CLI: --cli-cases mutants run as `tinyprune fit|inspect|export` in a
   subprocess. Counted: exit codes, signals (negative return codes), tracebacks on stderr.
3. Keras: every hostile rewrite of a marker-writing Lambda config (tests/security/hostile_keras.py)
   as .h5, .keras and SavedModel, loaded with tinyprune.load.model.load_model. Counted: refused,
   loaded, code executions (the marker file appeared).
"""

from __future__ import annotations

import argparse
import collections
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _demo_int8() -> bytes:
    from tinyprune.load.data import load_digits
    from tinyprune.load.model import load_model
    from tinyprune.quantize.int8 import quantize_int8

    return quantize_int8(load_model(ROOT / "models" / "digits_cnn.h5"), load_digits().x_train, num_calibration=200)


def fuzz_in_process(sources: dict[str, bytes], cases: dict[str, int], out: Path) -> dict:
    from tests.security.harness import exercise
    from tests.security.mutate import mutate

    stats = {"cases": 0, "refused": 0, "accepted": 0, "errors": collections.Counter(), "tracebacks": 0,
             "kinds": collections.Counter(), "examples": []}
    for i, (name, data) in enumerate(sources.items()):
        rng = random.Random(1000 + i)
        for _ in range(cases[name]):
            kind, bad = mutate(data, rng)
            r = exercise(bad, out)
            stats["cases"] += 1
            stats["kinds"][kind] += 1
            stats["refused" if r["refused"] else "accepted"] += 1
            for e in r["errors"]:
                stats["errors"][e] += 1
            stats["tracebacks"] += len(r["tracebacks"])
            if r["tracebacks"] and len(stats["examples"]) < 3:
                stats["examples"].append((name, kind, r["tracebacks"][0][-400:]))
    return stats


def fuzz_cli(data: bytes, n: int, out: Path) -> dict:
    from tests.security.mutate import mutate

    rng = random.Random(7)
    codes: collections.Counter = collections.Counter()
    signals = tracebacks = 0
    for i in range(n):
        _, bad = mutate(data, rng)
        path = out / f"cli{i}.tflite"
        path.write_bytes(bad)
        cmd = (["fit", str(path)], ["inspect", str(path)], ["export", str(path), "-o", str(out / f"e{i}"), "--force"])[i % 3]
        proc = subprocess.run([sys.executable, "-m", "tinyprune", *cmd], capture_output=True, text=True, cwd=ROOT,
                              timeout=600)
        codes[proc.returncode] += 1
        signals += proc.returncode < 0
        tracebacks += "Traceback" in proc.stderr
    return {"cases": n, "codes": dict(sorted(codes.items())), "signals": signals, "tracebacks": tracebacks}


def fuzz_keras(out: Path) -> dict:

    from tests.security.hostile_keras import (lambda_template, variants, write_h5, write_keras_zip,
                                              write_savedmodel_metadata)
    from tinyprune.errors import ModelLoadError
    from tinyprune.load.model import load_model
    from tinyprune.tfsetup import keras

    template, marker, text = lambda_template(keras, out)
    stats = {"cases": 0, "refused": 0, "loaded": 0, "executions": 0, "tracebacks": 0}
    for i, (_, cfg) in enumerate(variants(text)):
        for path in (write_h5(template, cfg, out / f"v{i}.h5"), write_keras_zip(cfg, out / f"v{i}.keras"),
                     write_savedmodel_metadata(cfg, out / f"sm{i}")):
            stats["cases"] += 1
            try:
                load_model(path)
                stats["loaded"] += 1
            except ModelLoadError:
                stats["refused"] += 1
            except Exception:  # noqa: BLE001 - counted
                stats["tracebacks"] += 1
            if marker.exists():
                stats["executions"] += 1
                marker.unlink()
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=300, help="mutations of the demo int8 model (in process)")
    ap.add_argument("--mlperf-cases", type=int, default=40, help="mutations of each MLPerf Tiny .tflite")
    ap.add_argument("--cli-cases", type=int, default=30, help="mutants run through the CLI in a subprocess")
    args = ap.parse_args()

    t0 = time.perf_counter()
    demo = _demo_int8()
    sources, cases = {"demo int8": demo}, {"demo int8": args.cases}
    from tests.helpers import SHARED

    mlperf = SHARED / "mlperf_tiny"  # ../shared/data, or $TINYPRUNE_SHARED_DATA
    for p in sorted(mlperf.glob("*.tflite")) if mlperf.is_dir() else []:
        sources[p.name] = p.read_bytes()
        cases[p.name] = args.mlperf_cases
    with tempfile.TemporaryDirectory(prefix="tinyprune-fuzz-") as d:
        out = Path(d)
        t = time.perf_counter()
        inproc = fuzz_in_process(sources, cases, out)
        t_in = time.perf_counter() - t
        t = time.perf_counter()
        cli = fuzz_cli(demo, args.cli_cases, out)
        t_cli = time.perf_counter() - t
        t = time.perf_counter()
        ker = fuzz_keras(out)
        t_k = time.perf_counter() - t

    print(f"sources: {', '.join(f'{k} ({cases[k]})' for k in sources)}\n")
    print("| suite | cases | outcome | signals | tracebacks | code executions | wall s |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
    print(f"| .tflite in process (reader, inspect, fit, export, compress) | {inproc['cases']} | "
          f"{inproc['refused']} refused by the validator, {inproc['accepted']} accepted | 0 (process alive) | "
          f"{inproc['tracebacks']} | - | {t_in:.0f} |")
    print(f"| .tflite through the CLI (fit / inspect / export) | {cli['cases']} | exit codes {cli['codes']} | "
          f"{cli['signals']} | {cli['tracebacks']} | - | {t_cli:.0f} |")
    print(f"| hostile Keras files (.h5, .keras, SavedModel) | {ker['cases']} | {ker['refused']} refused, "
          f"{ker['loaded']} loaded | 0 | {ker['tracebacks']} | {ker['executions']} | {t_k:.0f} |")
    print("\nmutation kinds:", ", ".join(f"{k} {v}" for k, v in sorted(inproc["kinds"].items())))
    print("errors after the reader accepted:", ", ".join(f"{k} {v}" for k, v in sorted(inproc["errors"].items())))
    for ex in inproc["examples"]:
        print("traceback example:", ex)
    print(f"\ntotal wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
