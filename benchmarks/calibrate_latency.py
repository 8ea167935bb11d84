"""Latency calibration: fit per-core, per-op-class costs on measured MLPerf Tiny latencies, with
leave-one-out errors and ranges, and write firmware_export/latency_calibration.toml.

Usage:
    .venv/bin/python benchmarks/calibrate_latency.py             # fit + leave-one-out, print the tables
    .venv/bin/python benchmarks/calibrate_latency.py --write     # ... and write latency_calibration.toml
    .venv/bin/python benchmarks/calibrate_latency.py --markdown  # tables as markdown (docs/benchmarks.md)

Data: every row of ../shared/reference/mlperf_tiny_latency.csv measured on a Cortex-M without an
accelerator (rows with an NPU, a matrix unit or a DSP co-processor, float32 builds and rows
without a latency are left out), i.e. the four MLPerf Tiny reference models (their real int8
.tflite in ../shared/data/mlperf_tiny) on Cortex-M0+, M4F, M7 and M33 boards with several engines.

Model (per row: model m, core c, clock f, engine e):
    cycles = sum over op classes k of MACs_k(m) x cpm[c][k] x E[e][k]
           + scalar_work(m) x s[c] x E[e][conv]
    ms     = cycles / (f x 1000)
MACs_k: conv, depthwise, fc (costmodel.py, from the real tensor shapes); scalar_work = element
work x cycles_per_element + ops x cycles_per_op (priors, [work] in the toml). E = 1 for
"TFLM + CMSIS-NN" (what tinyprune's export runs); "TFLM v2.3.1 + CMSIS-NN" (the MLPerf v0.5
reference build, which the csv calls about 2x slower) has one factor for all classes; every other
engine (X-CUBE-AI, Plumerai, Bosch HALE, ONNC, microTVM) has one factor per class. So the TFLM
rows fix the TFLM costs, and the other engines, measured on several cores, fix how each class
scales across cores and clocks. Fitted by least squares on log(estimated / measured), the TFLM +
CMSIS-NN rows weighted 3x (they are the runtime being estimated), with weak priors (log-normal) that keep the engine factors of one engine close together and the core costs
near their architecture priors where data are thin.

Cores without any row: M4 = M4F (same pipeline; no float in int8 kernels); M3 = the geometric
mean of M0+ and M4F (Armv7-M without the DSP extension: CMSIS-NN's pure C path, but single-cycle
MLA); Helium cores from Arm's published figures: Cortex-M85 "4x the ML performance of
Cortex-M7" (Arm Cortex-M85 product brief), Cortex-M55 half the M85's MVE throughput
(dual-beat vs the M85's wider datapath; 8 vs 16 int8 MACs per cycle peak). Their ranges are wide.

Ranges: for each core, u = the 95th percentile of |leave-one-out error| (as a factor) over all its
rows, or the largest leave-one-out error of its TFLM + CMSIS-NN rows when that is larger (board
estimates are TFLM + CMSIS-NN), so that [point/(1+u), point*(1+u)] holds the measured value; the
coverage table checks it. The ranges come from the same leave-one-out errors they are checked on
(not a nested cross-validation), so the coverage of the TFLM rows is 100% by construction.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from firmware_export.costmodel import ELEMENTWISE, model_cost
from firmware_export.estimate import CALIBRATION_FILE
from firmware_export.tflite_model import read_tflite

SHARED = Path(os.environ.get("TINYPRUNE_SHARED_DATA", ROOT.parent / "shared" / "data"))  # a git worktree: set it
CSV = SHARED.parent / "reference" / "mlperf_tiny_latency.csv"
MODEL_FILES = {"kws": "kws_ref_model.tflite", "ic": "pretrainedResnet_quant.tflite",
               "vww": "vww_96_int8.tflite", "ad": "ad01_int8.tflite"}
CLASSES = ("conv", "depthwise", "fc")
BASE = "TFLM + CMSIS-NN"
LEGACY = "TFLM v2.3.1 + CMSIS-NN"
DATA_CORES = ("cortex-m0plus", "cortex-m4f", "cortex-m7", "cortex-m33")
CYCLES_PER_ELEMENT = 8.0  # prior: requantize one output (multiply, round, shift, offset, clamp)
CYCLES_PER_OP = 2000.0  # prior: TFLM Invoke dispatch + kernel set-up per op
# Architecture priors (cycles per MAC relative to the M4F/M33 DSP path; scalar from CoreMark/MHz).
PRIOR_MAC = {"cortex-m0plus": 3.0, "cortex-m4f": 1.0, "cortex-m7": 0.6, "cortex-m33": 1.0}
PRIOR_SCALAR = {"cortex-m0plus": 1.5, "cortex-m4f": 1.0, "cortex-m7": 0.74, "cortex-m33": 0.92}
PRIOR_CPM = {"conv": 3.8, "depthwise": 8.0, "fc": 2.8}  # TFLM + CMSIS-NN on an M33 (the old fit)
SD_CORE, SD_ENGINE_SPREAD, SD_LEGACY, SD_SCALAR = 1.0, 0.5, 0.35, 0.3
SD_ENGINE_LEVEL = 1.5  # an engine is within a few x of TFLM + CMSIS-NN (anchors engines with one row)
TFLM_WEIGHT = 3.0  # the TFLM + CMSIS-NN rows are the runtime being estimated: they weigh 3 other-engine rows
TARGET_MEDIAN, TARGET_FACTOR, TARGET_COVERAGE = 0.20, 2.0, 0.90
RANGE_QUANTILE = 0.95
ARM_M85_VS_M7 = 4.0  # Arm Cortex-M85 product brief: "4x ML performance" over Cortex-M7
M55_VS_M85 = 2.0  # M55 has half the M85's Helium throughput per cycle (estimate)
SCALAR_M55, SCALAR_M85 = 4.02 / 4.2, 4.02 / 6.28  # CoreMark/MHz relative to the M33 (4.02)


@dataclasses.dataclass
class Row:
    benchmark: str
    system: str
    core: str
    clock_mhz: float
    stack: str
    measured_ms: float
    source: str


def read_rows(path: Path = CSV) -> list[Row]:
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    rows = []
    for r in csv.DictReader(lines):
        try:
            ms = float(r["latency_ms"])
        except (TypeError, ValueError):
            continue  # a row without a measured latency
        if r["accelerator"] != "none" or "float" in r["stack"].lower() or r["core"] not in DATA_CORES:
            continue
        if r["benchmark"] not in MODEL_FILES:
            continue
        rows.append(Row(r["benchmark"], r["system"], r["core"], float(r["clock_mhz"]), r["stack"], ms, r["source"]))
    return rows


def work() -> dict[str, np.ndarray]:
    """benchmark -> [conv MACs, depthwise MACs, fc MACs, scalar work cycles]."""
    out = {}
    for k, f in MODEL_FILES.items():
        cost = model_cost(read_tflite(SHARED / "mlperf_tiny" / f))
        v = np.zeros(4)
        for op in cost.ops:
            if op.family != ELEMENTWISE:
                v[CLASSES.index(op.family)] += op.macs
            v[3] += op.elements * CYCLES_PER_ELEMENT + CYCLES_PER_OP
        out[k] = v
    return out


class Fit:
    """Parameter layout and residuals of the joint fit."""

    def __init__(self, rows: list[Row], w: dict[str, np.ndarray]):
        self.rows, self.w = rows, w
        self.engines = sorted({r.stack for r in rows} - {BASE, LEGACY})
        self.n_core = len(DATA_CORES) * 4  # 3 classes + scalar per core
        self.n = self.n_core + 1 + 3 * len(self.engines)
        self.W = np.array([w[r.benchmark] for r in rows])
        self.core_i = np.array([DATA_CORES.index(r.core) for r in rows])
        self.clock = np.array([r.clock_mhz for r in rows])
        self.y = np.log(np.array([r.measured_ms for r in rows]))
        self.eng_i = np.array([self.engines.index(r.stack) if r.stack in self.engines else -1 for r in rows])
        self.legacy = np.array([r.stack == LEGACY for r in rows])
        self.weight = np.array([TFLM_WEIGHT if r.stack in (BASE, LEGACY) else 1.0 for r in rows])

    def x0(self) -> np.ndarray:
        p = np.zeros(self.n)
        for i, c in enumerate(DATA_CORES):
            for k, cls in enumerate(CLASSES):
                p[i * 4 + k] = math.log(PRIOR_CPM[cls] * PRIOR_MAC[c])
            p[i * 4 + 3] = math.log(PRIOR_SCALAR[c])
        p[self.n_core] = math.log(2.0)
        return p

    def unpack(self, p: np.ndarray):
        core = np.exp(p[:self.n_core]).reshape(len(DATA_CORES), 4)
        legacy = math.exp(p[self.n_core])
        eng = np.exp(p[self.n_core + 1:]).reshape(len(self.engines), 3) if self.engines else np.ones((0, 3))
        return core, legacy, eng

    def predict(self, p: np.ndarray, W=None, core_i=None, clock=None, eng_i=None, legacy=None) -> np.ndarray:
        W = self.W if W is None else W
        core_i = self.core_i if core_i is None else core_i
        clock = self.clock if clock is None else clock
        eng_i = self.eng_i if eng_i is None else eng_i
        legacy = self.legacy if legacy is None else legacy
        core, leg, eng = self.unpack(p)
        c = core[core_i]  # rows x 4
        e = np.ones((len(W), 3))
        has = eng_i >= 0
        if has.any():
            e[has] = eng[eng_i[has]]
        e[legacy] = leg
        cycles = (W[:, :3] * c[:, :3] * e).sum(axis=1) + W[:, 3] * c[:, 3] * e[:, 0]
        return cycles / (clock * 1e3)

    def residuals(self, p: np.ndarray, mask: np.ndarray) -> np.ndarray:
        r = ((np.log(self.predict(p)) - self.y) * self.weight)[mask]
        prior = [(p[:self.n_core] - self.x0()[:self.n_core]).reshape(-1, 4)[:, :3].ravel() / SD_CORE,
                 (p[:self.n_core] - self.x0()[:self.n_core]).reshape(-1, 4)[:, 3] / SD_SCALAR,
                 np.array([(p[self.n_core] - math.log(2.0)) / SD_LEGACY])]
        if self.engines:
            e = p[self.n_core + 1:].reshape(len(self.engines), 3)
            prior.append((e - e.mean(axis=1, keepdims=True)).ravel() / SD_ENGINE_SPREAD)
            prior.append(e.mean(axis=1) / SD_ENGINE_LEVEL)
        return np.concatenate([r, *prior])

    def solve(self, mask: np.ndarray, x0: np.ndarray | None = None) -> np.ndarray:
        from scipy.optimize import least_squares

        res = least_squares(self.residuals, self.x0() if x0 is None else x0, args=(mask,), method="lm")
        return res.x


def leave_one_out(fit: Fit, full: np.ndarray) -> np.ndarray:
    """Predicted ms of every row by a fit on all the other rows."""
    out = np.zeros(len(fit.rows))
    for i in range(len(fit.rows)):
        mask = np.ones(len(fit.rows), bool)
        mask[i] = False
        p = fit.solve(mask, full)
        out[i] = fit.predict(p)[i]
    return out


def core_table(fit: Fit, p: np.ndarray, loo: np.ndarray) -> dict[str, dict]:
    """Per-core costs for TFLM + CMSIS-NN and their ranges (from the leave-one-out errors)."""
    core, _leg, _eng = fit.unpack(p)
    err = np.abs(np.log(loo) - fit.y)
    cores: dict[str, dict] = {}
    tflm_rows = np.array([r.stack in (BASE, LEGACY) for r in fit.rows])
    for i, c in enumerate(DATA_CORES):
        e = err[fit.core_i == i]
        u = math.exp(float(np.quantile(e, RANGE_QUANTILE))) - 1
        own = err[(fit.core_i == i) & tflm_rows]  # the board estimates are TFLM + CMSIS-NN: cover its rows too
        if len(own):
            u = max(u, math.exp(float(own.max())) - 1)
        tflm = sum(1 for r in fit.rows if r.core == c and r.stack in (BASE, LEGACY))
        cores[c] = {**{cls: float(core[i, k]) for k, cls in enumerate(CLASSES)}, "scalar": float(core[i, 3]),
                    "uncertainty": math.ceil(u * 1000) / 1000 + 0.001,  # rounded up: the range must hold the row
                    "basis": f"FITTED on {int((fit.core_i == i).sum())} rows ({tflm} TFLM + CMSIS-NN); u = "
                             f"{RANGE_QUANTILE:.0%} quantile of the leave-one-out errors on this core, or the "
                             "largest of its TFLM + CMSIS-NN rows if larger"}
    m4f, m0, m7 = cores["cortex-m4f"], cores["cortex-m0plus"], cores["cortex-m7"]
    cores["cortex-m4"] = {**m4f, "basis": "= cortex-m4f (same pipeline and DSP extension; int8 kernels use no float)"}
    cores["cortex-m3"] = {**{k: math.sqrt(m0[k] * m4f[k]) for k in (*CLASSES, "scalar")},
                          "uncertainty": round(max(m0["uncertainty"], m4f["uncertainty"]) * 1.5, 3),
                          "basis": "ESTIMATE: geometric mean of M0+ and M4F (no DSP extension: CMSIS-NN's pure C "
                                   "path, but single-cycle MLA); not calibrated"}
    m85 = {k: m7[k] / ARM_M85_VS_M7 for k in CLASSES}
    m85_u = max(2.0, max(c["uncertainty"] for c in cores.values()) * 2)
    cores["cortex-m85"] = {**m85, "scalar": cores["cortex-m33"]["scalar"] * SCALAR_M85, "uncertainty": round(m85_u, 3),
                           "basis": "ESTIMATE from Arm's published figure (Cortex-M85: 4x the ML performance of "
                                    "the Cortex-M7) on the fitted M7 costs; scalar by CoreMark/MHz (6.28); not calibrated"}
    cores["cortex-m55"] = {**{k: m85[k] * M55_VS_M85 for k in CLASSES},
                           "scalar": cores["cortex-m33"]["scalar"] * SCALAR_M55, "uncertainty": round(m85_u, 3),
                           "basis": "ESTIMATE: half the M85's Helium throughput (8 vs 16 int8 MACs/cycle peak); "
                                    "scalar by CoreMark/MHz (4.2); not calibrated"}
    return cores


def write_toml(fit: Fit, p: np.ndarray, loo: np.ndarray, cores: dict[str, dict], summary: dict) -> str:
    _core, leg, eng = fit.unpack(p)
    lines = [
        "# Latency model constants for firmware_export/estimate.py. WRITTEN by benchmarks/calibrate_latency.py --write;",
        "# edit that script (priors, data selection), not this file.",
        "#",
        "# cycles(op) = MACs(op) x cores[core][op class] x kernels.mac_factor      (op class: conv, depthwise, fc)",
        "#            + (elements(op) x cycles_per_element + cycles_per_op) x cores[core].scalar",
        "# latency_ms = sum over ops of cycles(op) / (clock_mhz x 1000)",
        "# range      = [point / (1 + u), point x (1 + u)], u = (1 + core.uncertainty)(1 + kernels.uncertainty) - 1",
        "#",
        f"# Fitted on {len(fit.rows)} rows of {CSV.name} (MLPerf Tiny v0.5-v1.3 closed division, Cortex-M without",
        "# accelerators; source column = the results file): TFLM + CMSIS-NN rows fix the costs of tinyprune's runtime,",
        "# other engines' rows on several cores fix how each op class scales across cores (see the script's docstring).",
        "# Cores without rows (M3, M55, M85) are estimates, marked in their basis, with wide ranges.",
        "",
        "[fit]",
        f'source = "{CSV} (mlcommons/tiny_results_v0.5 ... v1.3)"',
        *(f"{k} = {v}" for k, v in summary.items()),
        "",
        "# PRIORS, not fitted: requantizing one output element; TFLM dispatch + kernel set-up per op.",
        "[work]",
        f"cycles_per_element = {CYCLES_PER_ELEMENT}",
        f"cycles_per_op = {CYCLES_PER_OP}",
        "",
        "# Builds slower than a current TFLM + CMSIS-NN: only used to compare with the rows measured with them.",
        "[legacy_stacks]",
        f'"{LEGACY}" = {leg:.4f}',
        "",
    ]
    for c in ("cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m4f", "cortex-m7", "cortex-m33", "cortex-m55",
              "cortex-m85"):
        v = cores[c]
        lines += [f"[cores.{c}]", *(f"{k} = {v[k]:.4f}" for k in (*CLASSES, "scalar")),
                  f"uncertainty = {v['uncertainty']}", f'basis = "{v["basis"]}"', ""]
    lines += ["# Kernel libraries, relative to CMSIS-NN.", "[kernels.cmsis-nn]", "mac_factor = 1.0", "uncertainty = 0.0",
              'basis = "what the TFLM + CMSIS-NN calibration rows ran"', "", "[kernels.reference]", "mac_factor = 4.6",
              "uncertainty = 0.5",
              ('basis = "Lai, Suda, Chandra 2018 (CMSIS-NN, arXiv:1801.06601): 4.6x throughput over the baseline kernels; '
               'TFLM reference kernels assumed similar to that baseline; not calibrated"'), "",
              "# Other engines' factors per op class (relative to TFLM + CMSIS-NN); only for the calibration table."]
    for i, e in enumerate(fit.engines):
        lines += [f'[engines."{e}"]', *(f"{cls} = {eng[i, k]:.4f}" for k, cls in enumerate(CLASSES)), ""]
    return "\n".join(lines) + "\n"


def ranges(fit: Fit, cores: dict[str, dict], pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    u = np.array([cores[r.core]["uncertainty"] for r in fit.rows])
    return pred / (1 + u), pred * (1 + u)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="write firmware_export/latency_calibration.toml")
    ap.add_argument("--markdown", action="store_true", help="print the tables as markdown")
    args = ap.parse_args()
    rows = read_rows()
    fit = Fit(rows, work())
    full = fit.solve(np.ones(len(rows), bool))
    loo = leave_one_out(fit, full)
    cores = core_table(fit, full, loo)
    lo, hi = ranges(fit, cores, loo)
    meas = np.exp(fit.y)
    err = loo / meas - 1
    inside = (lo <= meas) & (meas <= hi)
    factor = np.maximum(loo / meas, meas / loo)
    tflm = np.array([r.stack in (BASE, LEGACY) for r in rows])
    summary = {
        "rows": len(rows), "tflm_rows": int(tflm.sum()),
        "loo_median_abs_error_tflm": round(float(np.median(np.abs(err[tflm]))), 3),
        "loo_max_factor_tflm": round(float(factor[tflm].max()), 3),
        "loo_median_abs_error_all": round(float(np.median(np.abs(err))), 3),
        "loo_max_factor_all": round(float(factor.max()), 3),
        "coverage_tflm": round(float(inside[tflm].mean()), 3), "coverage_all": round(float(inside.mean()), 3),
    }
    md = args.markdown
    if md:
        print("| core | engine | system | MHz | model | measured ms | LOO estimate ms (range) | error | in range |")
        print("| --- | --- | --- | ---: | --- | ---: | ---: | ---: | :---: |")
    for i, r in enumerate(rows):
        cells = (r.core, r.stack, r.system, f"{r.clock_mhz:g}", r.benchmark, f"{r.measured_ms:.2f}",
                 f"{loo[i]:.2f} ({lo[i]:.1f}-{hi[i]:.1f})", f"{err[i]:+.1%}", "yes" if inside[i] else "NO")
        print("| " + " | ".join(cells) + " |" if md else "  ".join(cells))
    print()
    groups: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(rows):
        groups.setdefault((r.core, r.stack), []).append(i)
    if md:
        print("| core | engine | rows | LOO median abs error | worst (factor) | in range |")
        print("| --- | --- | ---: | ---: | ---: | ---: |")
    for (c, e), idx in sorted(groups.items()):
        j = np.array(idx)
        cells = (c, e, str(len(j)), f"{np.median(np.abs(err[j])):.1%}", f"{factor[j].max():.2f}x",
                 f"{inside[j].sum()}/{len(j)}")
        print("| " + " | ".join(cells) + " |" if md else "  ".join(cells))
    print()
    if md:
        print("| core | conv cyc/MAC | depthwise cyc/MAC | fc cyc/MAC | scalar | range u | basis |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for c, v in cores.items():
        cells = (c, f"{v['conv']:.2f}", f"{v['depthwise']:.2f}", f"{v['fc']:.2f}", f"{v['scalar']:.2f}",
                 f"{v['uncertainty']:.2f}", v["basis"].split(";")[0])
        print("| " + " | ".join(cells) + " |" if md else "  ".join(cells))
    print()
    ok = (summary["loo_median_abs_error_tflm"] < TARGET_MEDIAN and summary["loo_max_factor_tflm"] < TARGET_FACTOR
          and summary["coverage_tflm"] >= TARGET_COVERAGE and summary["coverage_all"] >= TARGET_COVERAGE)
    print(f"TFLM + CMSIS-NN rows: leave-one-out median |error| {summary['loo_median_abs_error_tflm']:.1%} "
          f"(target < {TARGET_MEDIAN:.0%}), worst {summary['loo_max_factor_tflm']:.2f}x (target < {TARGET_FACTOR:g}x), "
          f"in range {summary['coverage_tflm']:.0%}; all {len(rows)} rows: median {summary['loo_median_abs_error_all']:.1%}, "
          f"worst {summary['loo_max_factor_all']:.2f}x, in range {summary['coverage_all']:.0%} "
          f"(target >= {TARGET_COVERAGE:.0%}) -> {'PASS' if ok else 'FAIL'}")
    if args.write:
        CALIBRATION_FILE.write_text(write_toml(fit, full, loo, cores, summary))
        print(f"wrote {CALIBRATION_FILE}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
