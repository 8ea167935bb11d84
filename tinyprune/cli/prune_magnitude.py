"""`tinyprune prune MODEL --method magnitude`: tfmot schedules, then (optionally) compression TFLM decodes.

Thin wrapper over the library: `tinyprune.prune.magnitude.prune_magnitude` (prune, strip, optional
PQAT), `tinyprune.quantize.int8.quantize_int8`, `tinyprune.prune.clustering.cluster_model` and
`firmware_export.compress.compress_model` (`--compress prune|lut|auto`); `tinyprune.pipeline.outputs.write_prune_outputs` writes the folder.
This module parses options, calls those in order and prints the report. Its flash accounting
shows the dense int8 bytes of every model it writes next to the bytes after compression, so a
mask that saves nothing on the device is shown as saving nothing.

Options are checked before TensorFlow is imported, so bad input fails in well under a second.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import numpy as np

from tinyprune.errors import ConfigError

SPARSITY_ONLY_NOTE = ("tfmot masks weights: the int8 .tflite of a sparse model has the dense size; TFLM has no "
                      "sparse kernels, so sparsity saves flash only when the weights are stored compressed "
                      "(--compress prune: TFLM's DECODE rebuilds them in the arena)")
PRUNE_BREAK_EVEN = 1 / 8  # PRUNE stores 1 mask bit per int8 weight (firmware_export.tflm_prune)
PQAT_LUT_NOTE = ("--pqat applies to model_int8.tflite; the clustered (LUT) model is clustered from the pruned "
                 "float model and converted post-training")
MODE_NOTE = ("model pruning: strip_pruning made the zeros permanent in model.h5 (no tfmot wrappers); "
             "the masks were ephemeral (wrappers) only during fine-tuning")


@dataclass
class FlashRow:
    """One artifact in the flash table."""

    artifact: str
    file: str
    dense_int8_bytes: int  # what the same weights cost stored as plain int8
    flash_bytes: int  # what this file costs in flash
    arena_bytes_target32: int
    accuracy_tflm: float | None

    @property
    def flash_fraction(self) -> float:
        return self.flash_bytes / self.dense_int8_bytes


def parse_options(opts: dict[str, Any]):
    """Check every option that needs no model; returns (PruneOptions, compression method, LUT bits)."""
    from firmware_export.compress import check_method
    from firmware_export.lut import check_bits
    from tinyprune.prune.magnitude import PruneOptions, Schedule, parse_block_size, parse_layer_targets, parse_m_by_n

    schedule = Schedule(kind=opts.get("schedule") or "polynomial",
                        initial_sparsity=float(opts.get("initial_sparsity") or 0.0),
                        final_sparsity=float(opts["final_sparsity"] if opts.get("final_sparsity") is not None else 0.5),
                        begin_step=int(opts.get("begin_step") or 0),
                        end_step=int(opts["end_step"] if opts.get("end_step") is not None else -1),
                        frequency=opts.get("frequency"), power=float(opts.get("power") or 3.0))
    schedule.validate()
    method = opts.get("compress") or "none"
    bits = int(opts["bits"]) if opts.get("bits") is not None else 4
    check_bits(bits)
    if method != "none":
        check_method(method, bits)
    if method == "prune" and schedule.final_sparsity <= PRUNE_BREAK_EVEN and not opts.get("layer_sparsity") \
            and not opts.get("sparsity_config"):
        raise ConfigError(f"--compress prune saves flash only above {PRUNE_BREAK_EVEN:.1%} sparsity (the mask costs "
                          f"1 bit per weight); got --sparsity {schedule.final_sparsity}")
    if not opts.get("data"):
        raise ConfigError("magnitude pruning fine-tunes the model: give --data (digits or a .npz)")
    if int(opts.get("epochs") or 0) < 1:
        raise ConfigError(f"magnitude pruning needs --epochs of at least 1, got {opts.get('epochs')}")
    if int(opts.get("batch_size") or 0) < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {opts.get('batch_size')}")
    options = PruneOptions(schedule=schedule,
                           layer_targets=parse_layer_targets(tuple(opts.get("layer_sparsity") or ()),
                                                             opts.get("sparsity_config")),
                           m_by_n=parse_m_by_n(opts.get("m_by_n")), block_size=parse_block_size(opts.get("block_size")),
                           pqat=bool(opts.get("pqat")), tensorboard_dir=opts.get("tensorboard"))
    return options, method, bits


def _tflm_accuracy(tflite: bytes, ds) -> tuple[float | None, np.ndarray]:
    from firmware_export.tflm import run

    out = run(tflite, ds.x_val)
    if not ds.is_classification:
        return None, out
    return float((out.reshape(len(ds.y_val), -1).argmax(axis=1) == ds.y_val).mean()), out


def _h5_bytes(model) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.h5"
        model.save(path, include_optimizer=False)
        return path.read_bytes()


def handle(opts: dict[str, Any]) -> None:
    """Run magnitude pruning (and LUT compression) as the CLI options say, write OUT/, report."""
    from rich.console import Console

    from firmware_export.files import check_writable

    options, method, bits = parse_options(opts)
    check_writable(Path(opts["output"]), bool(opts.get("force")))
    quiet = bool(opts.get("quiet")) or bool(opts.get("as_json"))
    console = Console(stderr=bool(opts.get("as_json")))  # --quiet only hides progress bars (see cli/prune.py)
    warnings.filterwarnings("ignore", category=UserWarning)  # TF/Keras chatter (HDF5 legacy, converter stats)

    from firmware_export.tflm import measure_arena
    from tinyprune import training
    from tinyprune.load.data import load_data
    from tinyprune.load.model import load_model
    from tinyprune.prune.magnitude import plan_layers, prune_magnitude
    from tinyprune.pipeline.outputs import write_prune_outputs
    from tinyprune.quantize.int8 import quantize_int8

    model = load_model(opts["model"], unsafe=bool(opts.get("unsafe_load")))
    ds = load_data(opts["data"]).fit_to(model.input_shape)
    plan_layers(model, options)  # unknown / unprunable layer names fail before any training
    dense_accuracy = training.evaluate(model, ds) if ds.is_classification else None
    epochs, batch = int(opts["epochs"]), int(opts["batch_size"])

    result = prune_magnitude(model, ds, epochs=epochs, batch_size=batch, quiet=quiet, options=options)
    to_convert = result.qat_model if result.qat_model is not None else result.model
    int8 = quantize_int8(to_convert, ds.x_train)
    int8_arena = measure_arena(int8)
    int8_acc, _ = _tflm_accuracy(int8, ds)
    rows = [FlashRow("pruned" + (" (PQAT)" if options.pqat else ""), "model_int8.tflite", len(int8),
                     len(int8), int8_arena.target_bytes, int8_acc)]
    extra = {"model_int8.tflite": int8}
    report: dict[str, Any] = {
        "method": "magnitude", "pruning_mode": result.mode, "pruning_mode_note": MODE_NOTE,
        "model": str(opts["model"]), "data": ds.name, "epochs": epochs, "batch_size": batch,
        "schedule": result.schedule.to_dict() if result.schedule else None,
        "layers": [{**asdict(p), "sparsity_after_strip": round(result.sparsity.get(p.name, 0.0), 4)}
                   for p in result.plans],
        "overall_sparsity": round(result.overall_sparsity(), 4),
        "not_prunable_by_tfmot": result.unprunable,
        "accuracy_dense_keras": dense_accuracy, "accuracy_pruned_keras": result.accuracy,
        "accuracy_pqat_keras": result.qat_accuracy, "accuracy_int8_tflm": int8_acc,
        "int8_bytes": len(int8), "arena_bytes_host": int8_arena.host_bytes,
        "arena_bytes_target32": int8_arena.target_bytes, "notes": [SPARSITY_ONLY_NOTE],
    }
    if method not in ("none", "prune") and options.pqat:
        report["notes"].append(PQAT_LUT_NOTE)
    if method != "none":
        try:
            report["compression"], comp_rows, comp_files = _compress(result.model, int8, ds, method, bits, epochs,
                                                                     batch, quiet)
        except ConfigError as e:  # nothing worth compressing: keep the fine-tuned model, say why
            report["compression"] = {"method": f"tflm-{method}", "skipped": str(e)}
        else:
            rows += comp_rows
            extra.update(comp_files)
    report["flash"] = [{**asdict(r), "flash_fraction": round(r.flash_fraction, 4)} for r in rows]
    outputs = write_prune_outputs(opts["output"], result.model, report, force=bool(opts.get("force")),
                                  extra_files=extra)
    if opts.get("as_json"):
        click.echo(json.dumps({**report, "output": str(outputs.folder)}, indent=2, default=str))
    else:
        print_report(console, report, rows, outputs.folder)


COMPRESSED_FILE = {"lut": "model_int8_lut.tflite", "prune": "model_int8_prune.tflite",
                   "auto": "model_int8_compressed.tflite"}


def _compress(model, int8: bytes, ds, method: str, bits: int, epochs: int, batch: int, quiet: bool):
    """Compress for TFLM's DECODE: PRUNE straight from the pruned int8 model (lossless); LUT and
    auto from a copy clustered to 2^bits values per channel. Returns (report, rows, files)."""
    from firmware_export.compress import EXPERIMENTAL_NOTE, compress_model

    info: dict[str, Any] = {}
    rows: list[FlashRow] = []
    files: dict[str, bytes] = {}
    source, source_file = int8, "model_int8.tflite"
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
    src_acc, src_out = _tflm_accuracy(source, ds)
    comp_acc, comp_out = _tflm_accuracy(comp.data, ds)
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


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.2%}"


def print_report(console, report: dict, rows: list[FlashRow], folder: Path) -> None:
    """Per-layer sparsity table, flash table, notes."""
    from rich.table import Table

    sched = report["schedule"] or {}
    console.print(f"[bold]magnitude pruning[/] {sched.get('kind')} schedule: {sched.get('initial_sparsity')} -> "
                  f"{sched.get('final_sparsity')}, steps {sched.get('begin_step')}..{sched.get('end_step')} "
                  f"every {sched.get('frequency')} (last mask update at step {sched.get('last_update_step')})")
    layers = Table(title="per-layer sparsity after strip_pruning")
    for col in ("layer", "type", "pattern", "target", "sparsity"):
        layers.add_column(col, justify="right" if col in ("target", "sparsity") else "left")
    for row in report["layers"]:
        layers.add_row(row["name"], row["kind"], row["pattern"], f"{row['target']:.1%}",
                       f"{row['sparsity_after_strip']:.1%}")
    console.print(layers)
    for name, kind in report["not_prunable_by_tfmot"].items():
        console.print(f"[yellow]not pruned:[/] {name} ({kind}): tfmot cannot prune this layer type")
    flash = Table(title="flash (bytes the device stores; int8 B = same weights as plain int8) and arena (32-bit)")
    for col in ("artifact", "file", "int8 B", "flash B", "flash %", "arena B", "acc TFLM"):
        flash.add_column(col, justify="left" if col in ("artifact", "file") else "right")
    for r in rows:
        flash.add_row(r.artifact, r.file, f"{r.dense_int8_bytes:,}", f"{r.flash_bytes:,}",
                      f"{r.flash_fraction:.1%}", f"{r.arena_bytes_target32:,}", _pct(r.accuracy_tflm))
    console.print(flash, soft_wrap=False)
    console.print(f"accuracy: dense Keras {_pct(report['accuracy_dense_keras'])}, pruned Keras "
                  f"{_pct(report['accuracy_pruned_keras'])}"
                  + (f", PQAT Keras {_pct(report['accuracy_pqat_keras'])}" if report["accuracy_pqat_keras"] else "")
                  + f", pruned int8 in TFLM {_pct(report['accuracy_int8_tflm'])}")
    for note in report["notes"] + [report["pruning_mode_note"]]:
        console.print(f"[dim]note:[/] {note}")
    comp = report.get("compression")
    if comp and "skipped" in comp:
        console.print(f"[bold yellow]compression skipped:[/] {comp['skipped']}")
    elif comp:
        extra = comp["extra_arena_bytes_target32"]
        formats = " + ".join(f.upper() for f in comp["formats_used"])
        console.print(f"{formats}: {comp['dense_int8_bytes']:,} B -> {comp['compressed_bytes']:,} B "
                      f"(saves {comp['saved_bytes']:,} B); the decoded tensors need {extra:,} B more arena")
        for t in comp["tensors"]:
            how = t["method"].upper() if t["method"] else f"plain int8 ({t['reason']})"
            console.print(f"  {t['name']}: {t['sparsity']:.0%} zeros, {t['dense_bytes']:,} B -> "
                          f"{t['encoded_bytes']:,} B {how}")
        console.print(f"outputs identical to {comp['compressed_from']} in TFLM: "
                      f"{comp['outputs_identical_to_uncompressed']}")
        console.print(f"[bold yellow]warning:[/] {comp['experimental']}")
    console.print(f"wrote {folder}/")
