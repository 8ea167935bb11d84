"""The artifacts of magnitude pruning: the int8 .tflite and, with --compress, the forms TFLM decodes.

Magnitude pruning keeps every tensor's shape, so the int8 file of a sparse model has the dense
size; flash shrinks only when the weights are stored compressed (PRUNE: bitmask + non-zero
values, lossless; LUT: clustered values as k-bit indices; auto: the smaller per tensor).
This stage converts, compresses and measures each artifact in TFLM, and returns a flash
table that shows the dense int8 bytes next to what each file really costs. It does not prune
(`tinyprune.prune.magnitude`) or encode (`firmware_export.compress`).
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinyprune.errors import ConfigError
from tinyprune.metrics import top1
from tinyprune.pipeline.outputs import TFLITE_FILE

COMPRESSED_FILE = {"lut": "model_int8_lut.tflite", "prune": "model_int8_prune.tflite",
                   "auto": "model_int8_compressed.tflite"}


@dataclass
class FlashRow:
    """One artifact in the flash table."""

    artifact: str
    file: str
    dense_int8_bytes: int  # what the same weights cost stored as plain int8
    model_bytes: int  # what this file costs in flash
    arena_target_bytes: int
    accuracy_tflm: float | None

    @property
    def flash_fraction(self) -> float:
        return self.model_bytes / self.dense_int8_bytes


def tflm_accuracy(tflite: bytes, ds) -> tuple[float | None, np.ndarray]:
    """(top-1 of the .tflite in TFLM on the validation split or None without class labels, outputs)."""
    from firmware_export.tflm import run

    out = run(tflite, ds.x_val)
    return (top1(out, ds.y_val) if ds.is_classification else None), out


def _h5_bytes(model) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.h5"
        model.save(path, include_optimizer=False)
        return path.read_bytes()


def magnitude_artifacts(settings, pruned, ds, train, report: dict, quiet: bool
                        ) -> tuple[dict, list[FlashRow], dict[str, bytes]]:
    """Convert the pruned model (its PQAT twin with --pqat), measure it, compress it as asked.

    Returns (report with the int8 / compression facts added, flash rows, files to write)."""
    from firmware_export.tflm import measure_arena
    from tinyprune.quantize.int8 import quantize_int8

    to_convert = pruned.qat_model if pruned.qat_model is not None else pruned.model
    int8 = quantize_int8(to_convert, ds.x_train)
    int8_arena = measure_arena(int8)
    int8_acc, _ = tflm_accuracy(int8, ds)
    rows = [FlashRow("pruned" + (" (PQAT)" if settings.pqat else ""), TFLITE_FILE, len(int8), len(int8),
                     int8_arena.target_bytes, int8_acc)]
    files = {TFLITE_FILE: int8}
    report = {**report, "accuracy_int8_tflm": int8_acc, "int8_bytes": len(int8),
              "arena_host_bytes": int8_arena.host_bytes, "arena_target_bytes": int8_arena.target_bytes}
    if settings.compress != "none":
        try:
            info, comp_rows, comp_files = compress_artifact(pruned.model, int8, ds, settings.compress, settings.bits,
                                                            train.epochs, train.batch_size, quiet)
        except ConfigError as e:  # nothing worth compressing: keep the fine-tuned model, say why
            report["compression"] = {"method": f"tflm-{settings.compress}", "skipped": str(e)}
        else:
            report["compression"] = info
            rows += comp_rows
            files.update(comp_files)
    report["flash"] = [{**asdict(r), "flash_fraction": round(r.flash_fraction, 4)} for r in rows]
    return report, rows, files


def compress_artifact(model, int8: bytes, ds, method: str, bits: int, epochs: int, batch: int, quiet: bool):
    """Compress for TFLM's DECODE: PRUNE straight from the pruned int8 model (lossless); LUT and
    auto from a copy clustered to 2^bits values per channel. Returns (report, rows, files)."""
    from firmware_export.compress import EXPERIMENTAL_NOTE, compress_model

    info: dict[str, Any] = {}
    rows: list[FlashRow] = []
    files: dict[str, bytes] = {}
    source, source_file = int8, TFLITE_FILE
    if method != "prune":
        from tinyprune.prune.clustering import cluster_model
        from tinyprune.quantize.int8 import quantize_int8

        clustered = cluster_model(model, ds, bits=bits, epochs=epochs, batch_size=batch, quiet=quiet)
        source, source_file = quantize_int8(clustered.model, ds.x_train), "model_int8_clustered.tflite"
        info.update({"clustered_layers": clustered.clustered, "not_clustered": clustered.skipped,
                     "values_per_channel": clustered.values_per_channel,
                     "sparsity_after_clustering": {k: round(v, 4) for k, v in clustered.sparsity.items()},
                     "accuracy_clustered_keras": clustered.accuracy})
        files["model_clustered.h5"] = _h5_bytes(clustered.model)
        files[source_file] = source
    comp = compress_model(source, method, bits)
    src_acc, src_out = tflm_accuracy(source, ds)
    comp_acc, comp_out = tflm_accuracy(comp.data, ds)
    if method != "prune":
        rows.append(FlashRow(f"clustered {2 ** bits}/ch", source_file, len(source), len(source),
                             comp.dense_arena.target_bytes, src_acc))
    label = {"lut": f"LUT {bits}-bit", "prune": "PRUNE (mask + non-zeros)", "auto": f"LUT {bits}-bit / PRUNE"}[method]
    rows.append(FlashRow(label, COMPRESSED_FILE[method], len(source), comp.compressed_bytes,
                         comp.compressed_arena.target_bytes, comp_acc))
    files[COMPRESSED_FILE[method]] = comp.data
    info.update({**comp.to_dict(), "compressed_from": source_file, "accuracy_uncompressed_tflm": src_acc,
                 "accuracy_compressed_tflm": comp_acc,
                 "outputs_identical_to_uncompressed": bool(np.array_equal(src_out, comp_out)),
                 "experimental": EXPERIMENTAL_NOTE})
    return info, rows, files
