"""Latency calibration: estimated vs measured for every row of latency_calibration.csv.

Usage:
    .venv/bin/python benchmarks/calibrate_latency.py            # table with the shipped constants
    .venv/bin/python benchmarks/calibrate_latency.py --fit      # refit, print new constants + table
    .venv/bin/python benchmarks/calibrate_latency.py --loo      # leave-one-out check of the fit
    .venv/bin/python benchmarks/calibrate_latency.py --markdown # table as markdown (docs/benchmarks.md)

Each row is one MLPerf Tiny reference model measured on one board (TFLM + CMSIS-NN). The
estimate uses the model's real .tflite from ../shared/data/mlperf_tiny, the row's core and clock,
and the constants in firmware_export/latency_calibration.toml; rows measured with an older TFLM
build are multiplied by that build's factor ([legacy_stacks]). Targets (issue 7): median absolute
error < 25%, no row off by more than 2x. `--fit` redoes the least-squares fit (scipy) of the
per-family cycles/MAC and the legacy-build factor with the priors held fixed; it prints the
constants, it does not write the toml.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from firmware_export.boards import Board  # noqa: E402
from firmware_export.costmodel import ModelCost, model_cost  # noqa: E402
from firmware_export.estimate import LatencyModel, latency_ms, load_latency_model  # noqa: E402
from firmware_export.tflite_model import read_tflite  # noqa: E402

SHARED = Path(os.environ.get("TINYPRUNE_SHARED_DATA", ROOT.parent / "shared" / "data"))
CSV = SHARED.parent / "reference" / "latency_calibration.csv"
MODEL_FILES = {  # benchmark -> the shipped int8 .tflite
    "kws": "kws_ref_model.tflite",
    "ic": "pretrainedResnet_quant.tflite",
    "vww": "vww_96_int8.tflite",
    "ad": "ad01_int8.tflite",
}
TARGET_MEDIAN = 0.25
TARGET_FACTOR = 2.0


@dataclasses.dataclass
class Row:
    benchmark: str
    board: str
    core: str
    clock_mhz: float
    stack: str
    macs: int
    measured_ms: float


def read_rows(path: Path = CSV) -> list[Row]:
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return [Row(r["benchmark"], r["board"], r["core"], float(r["clock_mhz"]), r["stack"], int(r["macs"]),
                float(r["latency_ms"])) for r in csv.DictReader(lines)]


def costs() -> dict[str, ModelCost]:
    return {k: model_cost(read_tflite(SHARED / "mlperf_tiny" / f)) for k, f in MODEL_FILES.items()}


def estimate(row: Row, cost: ModelCost, lm: LatencyModel) -> tuple[float, float, float]:
    board = Board(name=row.board.lower(), core=row.core, clock_mhz=row.clock_mhz, flash_kb=1, sram_kb=1)
    legacy = lm.legacy_stacks.get(row.stack, 1.0)
    return tuple(v * legacy for v in latency_ms(cost, board, lm))  # type: ignore[return-value]


def table(rows: list[Row], cs: dict[str, ModelCost], lm: LatencyModel) -> list[dict]:
    out = []
    for r in rows:
        point, low, high = estimate(r, cs[r.benchmark], lm)
        assert cs[r.benchmark].total_macs == r.macs, f"{r.benchmark}: MACs differ from the csv"
        out.append({"benchmark": r.benchmark, "board": r.board, "core": r.core, "clock_mhz": r.clock_mhz,
                    "macs": r.macs, "measured_ms": r.measured_ms, "estimated_ms": point, "low": low,
                    "high": high, "error": point / r.measured_ms - 1,
                    "in_range": low <= r.measured_ms <= high})
    return out


def fit(rows: list[Row], cs: dict[str, ModelCost], lm: LatencyModel) -> LatencyModel:
    """Refit cycles/MAC per family and the legacy-build factors on log error."""
    from scipy.optimize import least_squares

    fams = sorted(lm.cycles_per_mac)
    stacks = sorted({r.stack for r in rows if r.stack in lm.legacy_stacks})

    def model_for(p: np.ndarray) -> LatencyModel:
        return dataclasses.replace(lm, cycles_per_mac=dict(zip(fams, p[:len(fams)])),
                                   legacy_stacks=dict(zip(stacks, p[len(fams):])))

    def resid(p: np.ndarray) -> np.ndarray:
        m = model_for(p)
        return np.array([np.log(estimate(r, cs[r.benchmark], m)[0] / r.measured_ms) for r in rows])

    x0 = np.array([lm.cycles_per_mac[f] for f in fams] + [lm.legacy_stacks[s] for s in stacks])
    res = least_squares(resid, x0, bounds=(0.1, 50.0))
    return model_for(res.x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", action="store_true", help="refit the constants and print them")
    ap.add_argument("--loo", action="store_true", help="leave-one-out check of the fit")
    ap.add_argument("--markdown", action="store_true", help="print the table as markdown")
    args = ap.parse_args()
    rows, cs, lm = read_rows(), costs(), load_latency_model()
    if args.fit:
        lm = fit(rows, cs, lm)
        print("fitted cycles_per_mac:", {k: round(float(v), 3) for k, v in lm.cycles_per_mac.items()})
        print("fitted legacy_stacks:", {k: round(float(v), 3) for k, v in lm.legacy_stacks.items()})
    if args.loo:
        print("leave-one-out (fit on the other rows, predict the held-out one):")
        loo = []
        for i, r in enumerate(rows):
            m = fit(rows[:i] + rows[i + 1:], cs, lm)
            e = estimate(r, cs[r.benchmark], m)[0] / r.measured_ms - 1
            loo.append(abs(e))
            print(f"  {r.benchmark:5} {r.board:14} {e:+7.1%}")
        print(f"  median |error| {np.median(loo):.1%}, worst {max(loo):.1%}\n")
    t = table(rows, cs, lm)
    errs = np.array([abs(r["error"]) for r in t])
    worst = max(max(r["estimated_ms"] / r["measured_ms"], r["measured_ms"] / r["estimated_ms"]) for r in t)
    if args.markdown:
        print("| benchmark | board | core @ MHz | MACs | measured ms | estimated ms (range) | error |")
        print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
        for r in t:
            print(f"| {r['benchmark']} | {r['board']} | {r['core']} @ {r['clock_mhz']:g} | {r['macs']:,} | "
                  f"{r['measured_ms']:.2f} | {r['estimated_ms']:.2f} ({r['low']:.1f}-{r['high']:.1f}) | "
                  f"{r['error']:+.1%} |")
    else:
        print(f"{'bench':5} {'board':14} {'core':11} {'MHz':>5} {'MACs':>11} {'measured':>9} "
              f"{'estimated':>9} {'range':>15} {'error':>7}")
        for r in t:
            rng = f"{r['low']:.1f}-{r['high']:.1f}"
            print(f"{r['benchmark']:5} {r['board']:14} {r['core']:11} {r['clock_mhz']:5g} {r['macs']:11,} "
                  f"{r['measured_ms']:9.2f} {r['estimated_ms']:9.2f} {rng:>15} {r['error']:+7.1%}")
    ok = np.median(errs) < TARGET_MEDIAN and worst < TARGET_FACTOR
    print(f"\nmedian |error| {np.median(errs):.1%} (target < {TARGET_MEDIAN:.0%}); worst row off by "
          f"{worst:.2f}x (target < {TARGET_FACTOR:g}x); measured inside the range: "
          f"{sum(r['in_range'] for r in t)}/{len(t)} -> {'PASS' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
