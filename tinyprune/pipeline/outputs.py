"""Write a pruning result folder atomically: Keras model, int8 .tflite, report.json.

Every `tinyprune prune` method ends here, so its folder always has the same files:

    OUT/model.h5            the pruned tf_keras model (zeros permanent, no tfmot wrappers)
    OUT/model_keras3.keras  the same model as a Keras 3 file (only when the input was Keras 3)
    OUT/model_int8.tflite   full-integer int8 conversion (when calibration data is given)
    OUT/report.json         what was done, per-layer facts, bytes, TFLM arena

The folder is built in a temp folder and renamed into place, so a failed run leaves
nothing. This module writes; it does not prune or decide anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware_export.files import check_writable, staged_dir
from tinyprune.load.keras3 import KERAS3_FILE, save_keras3, wants_keras3


@dataclass
class PruneOutputs:
    folder: Path
    model_path: Path
    tflite_path: Path | None
    report_path: Path
    tflite_bytes: int | None
    arena_bytes: int | None


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


def write_prune_outputs(out_dir: str | Path, model, report: dict, x_calib: np.ndarray | None = None,
                        force: bool = False, num_calibration: int = 300,
                        extra_files: dict[str, bytes] | None = None, keras3: bool | None = None) -> PruneOutputs:
    """Save `model`, its int8 .tflite (if `x_calib`), and `report` (+ TFLM arena) to `out_dir`.

    `extra_files` maps file names to bytes written into the same folder (e.g. a compressed
    .tflite). `keras3` (default: when the model was translated from Keras 3 or report["model"]
    is a Keras 3 file) adds OUT/model_keras3.keras (keras3.save_keras3). Returns the paths and
    the measured int8 size and arena.
    """
    out_dir = Path(out_dir)
    check_writable(out_dir, force)
    tflite = None
    arena = None
    if x_calib is not None:
        from firmware_export.tflm import measure_arena
        from tinyprune.quantize.int8 import quantize_int8

        tflite = quantize_int8(model, x_calib, num_calibration)
        arena = measure_arena(tflite)
        report = {**report, "int8_bytes": len(tflite), "arena_bytes_host": arena.host_bytes,
                  "arena_bytes_target32": arena.target_bytes}
    with staged_dir(out_dir, force=force) as tmp:
        model.save(tmp / "model.h5", include_optimizer=False)
        if wants_keras3(model, report=report) if keras3 is None else keras3:
            save_keras3(model, tmp / KERAS3_FILE)  # the input was Keras 3: a Keras 3 copy of model.h5
        if tflite is not None:
            (tmp / "model_int8.tflite").write_bytes(tflite)
        for name, data in (extra_files or {}).items():
            (tmp / name).write_bytes(data)
        (tmp / "report.json").write_text(json.dumps(_jsonable(report), indent=2) + "\n")
    return PruneOutputs(out_dir, out_dir / "model.h5", out_dir / "model_int8.tflite" if tflite else None,
                        out_dir / "report.json", len(tflite) if tflite else None,
                        arena.target_bytes if arena else None)
