"""The output folder of every job, and the writer of a pruning result.

One layout for every job (`tinyprune prune <method>`, `prune budget`, `run`, each `sweep` point):

    OUT/model.h5              the pruned tf_keras model (zeros permanent, no tfmot wrappers)
    OUT/model_int8.tflite     its full-integer int8 conversion (when there is calibration data)
    OUT/report.json           what was done and measured (method, per-layer facts, bytes, arena)
  and, where the job makes them:
    OUT/model_keras3.keras    the same model as a Keras 3 file (when the input was Keras 3)
    OUT/model_int8_{prune,lut,compressed,clustered}.tflite, model_clustered.h5   prune magnitude --compress
    OUT/firmware/             C source for TFLM (run, prune budget)            firmware_export.cexport
    OUT/fit.json              fit per board (run)                              firmware_export.estimate
    OUT/report.md, sensitivity.{json,csv,png}   the budget search's readable report and sensitivity
    OUT/sweep.json, pareto.png, one folder per point                           sweep

Every folder is built in a temporary folder beside OUT and renamed into place, so a failed run
leaves nothing, and an existing OUT is replaced only with --force. The file names of the layout
and the writers of its common files (`save_model`, `write_report`) live here, and every job
writes them through these; this module writes, it does not prune or decide anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from firmware_export.files import check_writable, staged_dir
from tinyprune.load.keras3 import KERAS3_FILE, save_keras3, wants_keras3

MODEL_FILE = "model.h5"
TFLITE_FILE = "model_int8.tflite"
REPORT_FILE = "report.json"


@dataclass
class PruneOutputs:
    """What `write_prune_outputs` wrote: the paths, the int8 size and arena, the report as written."""

    folder: Path
    model_path: Path
    tflite_path: Path | None
    report_path: Path
    tflite_bytes: int | None
    arena_target_bytes: int | None  # the TFLM arena adjusted to a 32-bit target (ArenaReport.target_bytes)
    report: dict = field(default_factory=dict)  # report.json's content


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, Path):
        return str(obj)
    return obj


def save_model(folder: Path, model, keras3: bool) -> None:
    """FOLDER/model.h5 (tf_keras, no optimizer state) and, when `keras3` (the input was a Keras 3
    model: `load.keras3.wants_keras3`), the same model as FOLDER/model_keras3.keras."""
    model.save(folder / MODEL_FILE, include_optimizer=False)
    if keras3:
        save_keras3(model, folder / KERAS3_FILE)


def write_report(folder: Path, report: dict) -> None:
    """FOLDER/report.json: `report` as indented JSON (numpy scalars and paths made plain)."""
    (folder / REPORT_FILE).write_text(json.dumps(_jsonable(report), indent=2) + "\n")


def write_prune_outputs(out_dir: str | Path, model, report: dict, x_calib: np.ndarray | None = None,
                        force: bool = False, num_calibration: int = 300,
                        extra_files: dict[str, bytes] | None = None, inputs: tuple = (),
                        keras3: bool | None = None) -> PruneOutputs:
    """Save `model`, its int8 .tflite (if `x_calib`), and `report` (+ TFLM arena) to `out_dir`.

    `extra_files` maps file names to bytes written into the same folder (e.g. a compressed
    .tflite). `keras3` (default: when the model was translated from Keras 3 or report["model"]
    is a Keras 3 file) adds OUT/model_keras3.keras (keras3.save_keras3). Returns the paths and
    the measured int8 size and arena. `out_dir` may not be, hold or lie inside an input:
    `inputs`, plus the report's "model" path when it names one.
    """
    out_dir = Path(out_dir)
    inputs = tuple(inputs) + ((report["model"],) if isinstance(report.get("model"), str) else ())
    check_writable(out_dir, force, inputs)
    tflite = None
    arena = None
    if x_calib is not None:
        from firmware_export.tflm import measure_arena
        from tinyprune.quantize.int8 import quantize_int8

        tflite = quantize_int8(model, x_calib, num_calibration)
        arena = measure_arena(tflite)
        report = {**report, "int8_bytes": len(tflite), "arena_host_bytes": arena.host_bytes,
                  "arena_target_bytes": arena.target_bytes}
    with staged_dir(out_dir, force=force, inputs=inputs) as tmp:
        save_model(tmp, model, wants_keras3(model, report=report) if keras3 is None else keras3)
        if tflite is not None:
            (tmp / TFLITE_FILE).write_bytes(tflite)
        for name, data in (extra_files or {}).items():
            (tmp / name).write_bytes(data)
        write_report(tmp, report)
    return PruneOutputs(out_dir, out_dir / MODEL_FILE, out_dir / TFLITE_FILE if tflite else None,
                        out_dir / REPORT_FILE, len(tflite) if tflite else None,
                        arena.target_bytes if arena else None, _jsonable(report))
