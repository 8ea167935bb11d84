"""The end-to-end job behind `tinyprune run`: one stage per module, wired in order.

    load model + data        load/model.py, load/data.py
    prune ([prune] method)   pipeline/prune_job.prune_model (magnitude: tfmot schedule, fine-tune,
                             strip; structured, at-init) or budget/search.py (method = "budget")
    int8 conversion          quantize/int8.py (full-integer PTQ, or pruning-preserving QAT)
    TFLM check + arena       firmware_export/tflm.py (real TFLM interpreter)
    C source + header        firmware_export/cexport.py
    fit per board            firmware_export/estimate.py

Everything is written under the output folder, built in a temp folder and moved into
place at the end, so a failed run leaves nothing. This module wires stages; it holds no
pruning, conversion or estimation logic of its own.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from rich.console import Console
from firmware_export.terminal import escape

from firmware_export.files import check_writable, staged_dir
from tinyprune.pipeline.config import BudgetRequest, RunConfig
from tinyprune.pipeline.outputs import MODEL_FILE, REPORT_FILE, TFLITE_FILE, save_model, write_report


@dataclass
class RunResult:
    """What `run_pipeline` produced and measured."""

    output_dir: Path
    original_float_accuracy: float  # Keras, the unpruned model, validation split
    pruned_float_accuracy: float  # Keras, the pruned model (parity.float_accuracy is this one too)
    sparsity: dict[str, float]
    dense_int8_bytes: int  # int8 .tflite of the unpruned model
    int8_bytes: int  # int8 .tflite of the pruned model: the same, masks save no flash
    quantization: str  # "ptq" or "qat (N epochs, pruning-preserving)"
    parity: dict  # tinyprune.quantize.parity.ParityReport: float vs TFLite vs TFLM on the validation split
    arena_host_bytes: int
    arena_target_bytes: int
    files: list[str] = field(default_factory=list)
    fit: dict = field(default_factory=dict)  # firmware_export.estimate.FitReport.to_json()
    seconds: dict[str, float] = field(default_factory=dict)
    method: str = "magnitude"  # [prune] method
    prune: dict = field(default_factory=dict)  # the prune stage's own report
    seed: dict = field(default_factory=dict)  # what training.reproducible fixed ([prune] seed)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["output_dir"] = str(self.output_dir)
        return d


@contextlib.contextmanager
def _timed(times: dict[str, float], stage: str) -> Iterator[None]:
    """Record the wall time of a `with` block in `times[stage]` (seconds, 2 decimals)."""
    t = time.perf_counter()
    try:
        yield
    finally:
        times[stage] = round(time.perf_counter() - t, 2)


def run_pipeline(cfg: RunConfig, force: bool = False, console: Console | None = None,
                 quiet: bool = False) -> RunResult:
    """Run every stage for `cfg` and write its outputs; see the module docstring."""
    from firmware_export import tflm
    from firmware_export.boards import load_boards, select_boards, DEFAULT_BOARDS
    from firmware_export.cexport import export_c
    from firmware_export.estimate import fit_model
    from tinyprune import training
    from tinyprune.load.data import load_data
    from tinyprune.load.keras3 import wants_keras3
    from tinyprune.load.model import load_model
    from tinyprune.quantize.parity import parity_report
    from tinyprune.quantize.int8 import quantize_aware, quantize_int8

    console = console or Console(stderr=True, quiet=quiet)
    out_dir = Path(cfg.output.dir)
    inputs = [cfg.resolve(cfg.model.path)] + ([] if cfg.data_source() == "digits" else [cfg.data_source()])
    check_writable(out_dir, force, inputs)
    boards = select_boards(load_boards(), cfg.fit.boards or list(DEFAULT_BOARDS), all_boards=False)
    times: dict[str, float] = {}

    with _timed(times, "load"):
        model = load_model(cfg.resolve(cfg.model.path), unsafe=cfg.model.unsafe_load)
        ds = load_data(cfg.data_source()).fit_to(model.input_shape)
        training.compile_for(model, ds)
        float_acc = training.evaluate(model, ds)
    console.print(f"[bold]model[/] {escape(str(cfg.model.path))}: {model.count_params():,} parameters, "
                  f"validation score {float_acc:.4f} on {escape(ds.name)} ({len(ds.x_val)} samples)")

    with _timed(times, "dense int8"):
        dense_int8 = quantize_int8(model, ds.x_train, cfg.quantize.calibration_samples, cfg.quantize.io_type)

    _, train = cfg.prune.settings()
    with training.reproducible(train.seed) as seeded:  # the stages that train: prune (+ fine-tune), QAT
        with _timed(times, "prune"):
            pruned = _prune(cfg, model, ds, quiet, console, float_acc)

        with _timed(times, "int8"):
            q = cfg.quantize
            if q.qat_epochs > 0:  # keep the zeros the pruning made: tfmot's pruning-preserving QAT scheme
                int8 = quantize_aware(pruned.model, ds, q.qat_epochs, preserve_sparsity=True,
                                      num_calibration=q.calibration_samples, io_type=q.io_type, quiet=quiet).tflite
            else:
                int8 = quantize_int8(pruned.model, ds.x_train, q.calibration_samples, q.io_type)

    with _timed(times, "tflm"):
        arena = tflm.measure_arena(int8)
        parity = parity_report(pruned.model, int8, ds.x_val, ds.y_val)

    how = f"qat ({q.qat_epochs} epochs, pruning-preserving)" if q.qat_epochs > 0 else "ptq"
    result = RunResult(out_dir, float_acc, pruned.accuracy, pruned.sparsity, len(dense_int8), len(int8), how,
                       parity.to_dict(), arena.host_bytes, arena.target_bytes, method=cfg.prune.method,
                       prune=pruned.report, seed=seeded.to_dict())
    with staged_dir(out_dir, force=force, inputs=inputs) as tmp:
        with _timed(times, "export"):
            save_model(tmp, pruned.model, wants_keras3(model, pruned.model))
            (tmp / TFLITE_FILE).write_bytes(int8)
            export_c(int8, tmp / "firmware", name=cfg.export.name)
        with _timed(times, "fit"):
            report = fit_model(int8, boards)
            result.fit = json.loads(report.to_json())
            (tmp / "fit.json").write_text(report.to_json() + "\n")
        result.files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        result.seconds = times
        write_report(tmp, result.to_dict())
    result.files = sorted(result.files + [REPORT_FILE])
    _print_summary(result, console)
    parity.render(console)
    report.render(console)
    return result


def _print_summary(r: RunResult, console: Console) -> None:
    from rich.table import Table

    t = Table(title="tinyprune run", show_header=False)
    t.add_row("float accuracy (Keras, unpruned)", f"{r.original_float_accuracy:.4f}")
    t.add_row(f"pruned accuracy (Keras, {r.method})", f"{r.pruned_float_accuracy:.4f}")
    mean_sparsity = sum(r.sparsity.values()) / max(len(r.sparsity), 1)
    t.add_row("mean layer sparsity", f"{mean_sparsity:.1%}")
    t.add_row("int8 .tflite bytes (dense / pruned)", f"{r.dense_int8_bytes:,} / {r.int8_bytes:,}")
    t.add_row("quantization", r.quantization)
    t.add_row("TFLM arena (host / 32-bit target)", f"{r.arena_host_bytes:,} / {r.arena_target_bytes:,}")
    t.add_row("output", escape(str(r.output_dir)))
    console.print(t)
    if r.int8_bytes >= r.dense_int8_bytes:
        console.print("[yellow]note:[/] pruning masked weights to zero; the int8 .tflite keeps every "
                      "weight, so flash does not shrink. Structured removal (method structured or budget) or "
                      "storing the weights in a form TFLM decodes (tinyprune compress, or prune magnitude "
                      "--compress prune|lut|auto) is what saves flash.")


@dataclass
class _PruneStage:
    model: object
    accuracy: float
    sparsity: dict[str, float]
    report: dict


def _prune(cfg: RunConfig, model, ds, quiet: bool, console: Console, float_score: float) -> _PruneStage:
    """The prune stage of `run`: whichever method [prune] names, through the same entry points
    as `tinyprune prune` (the budget search writes its own report under budget_search/)."""
    import tempfile

    from tinyprune import training
    from tinyprune.pipeline.prune_job import prune_model
    from tinyprune.prune.magnitude import layer_sparsity

    settings, train = cfg.prune.settings()
    if isinstance(settings, BudgetRequest):
        from tinyprune.budget.search import prune_for_budget
        from tinyprune.tfsetup import keras

        with tempfile.TemporaryDirectory() as d:
            r = prune_for_budget(model, ds, Path(d) / "budget", flash_budget=settings.flash_budget,
                                 ram_budget=settings.ram_budget, latency_budget=settings.latency_budget,
                                 board=settings.board, epochs=train.epochs, batch_size=train.batch_size,
                                 importance=settings.importance, round_to=settings.round_to, quiet=quiet,
                                 console=console, seed=train.seed)
            pruned = keras.models.load_model(Path(d) / "budget" / MODEL_FILE, compile=False)  # written just now
        report = {"method": "budget", "status": r.status, "targets": r.targets, "keep": r.keep,
                  "int8_bytes": r.final["int8_bytes"]}
    else:
        from tinyprune.pipeline.settings import MagnitudeSettings

        stage = prune_model(settings, model, ds, train, quiet=quiet, console=console, dense_score=float_score)
        pruned, report = stage.model, stage.report
        if isinstance(settings, MagnitudeSettings):  # measured by the method itself, after strip_pruning
            return _PruneStage(pruned, stage.details.accuracy, stage.details.sparsity, report)
    training.compile_for(pruned, ds)
    return _PruneStage(pruned, training.evaluate(pruned, ds), layer_sparsity(pruned), report)
