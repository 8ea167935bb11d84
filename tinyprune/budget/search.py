"""Prune for a budget: make a model fit flash / RAM / latency limits, losing as little
accuracy as possible, and prove it on the exported artifact.

    1. convert the original to int8 and measure it (bytes, TFLM arena, estimated latency);
       resolve the `Budget` once against it (percent, a board's free flash and SRAM, a margin);
    2. if the original already fits: nothing to do, it is written unchanged;
    3. build the dependency graph and the size predictor; if even the smallest allowed model
       cannot fit, stop before any training and say what the smallest is (or, with
       `allow_compress`, add TFLM LUT compression, whose flash saving and DECODE arena cost are
       measured on the original and counted against the flash and RAM limits);
    4. choose the channel importance (`importance="auto"`: l1, bn and, with data, taylor are
       each measured: sensitivity, allocation at the budget, the pruned model's validation
       score before any fine-tuning; the best score wins);
    5. in `iterative_steps` steps (NetAdapt-style; 1 = one shot) toward the budget, each step's
       targets a geometric share of the way from the original: measure per-group sensitivity of
       the current model, allocate channel counts (allocation.py), remove them, fine-tune
       (`step_epochs`; the last step `epochs`). In the last step, `allocation="auto"` first
       scores allocation shapes between the sensitivity allocation and one uniform ratio, each
       after a short fine-tune (candidates.py), and keeps the one with the lowest validation
       loss, whose final fine-tune continues from its probe's weights; the final model is the
       probe, the continued run or the mean of their weights (training/averaging.py),
       whichever has the lowest validation loss. The last step converts and measures the real
       artifact and tightens the predicted limits by any miss (bounded rounds);
    6. fine-tuning learns from the unpruned model (training.distill; labels mixed in when the
       data have them; unlabelled data train on the teacher alone); with labels and
       `distill="auto"` a labels-only fine-tune runs from the same start and the lower
       validation loss is kept; every fine-tune's learning rate decays to zero over its run
       (`lr_schedule`, training/schedule.py);
    7. convert again, measure again (a miss stops the run with nothing written), write the
       model, .tflite, C export, report.json / report.md (every choice and what it cost),
       sensitivity table and plot.

`seed` runs everything under `training.reproducible` (Python, NumPy, TF seeds and TF op
determinism). This module orchestrates; the pieces live in limits, predictor, sensitivity,
allocation, structured/, training, quantize, firmware_export.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from rich.console import Console

from firmware_export import tflm
from firmware_export.arena_bound import arena_constant, header_bound
from firmware_export.boards import DEFAULT_BOARDS, Board, select_boards
from firmware_export.cexport import check_name
from firmware_export.estimate import arena_figure, fit_model, flash_bytes, ram_overhead_bytes
from firmware_export.files import check_writable, staged_dir
from firmware_export.compress import EXPERIMENTAL_NOTE
from firmware_export.lut import check_bits
from firmware_export.tflite_model import parse_tflite
from tinyprune import training
from tinyprune.keras_facts import main_kernel
from tinyprune.budget import candidates, joint
from tinyprune.budget.allocation import Allocation, Limits, allocate, smallest
from tinyprune.budget.limits import ALLOCATIONS, IMPORTANCES, Budget, check_job
from tinyprune.budget.original import OriginalFacts
from tinyprune.load.data import Dataset
from tinyprune.load.keras3 import as_tf_keras, wants_keras3
from tinyprune.pipeline.outputs import REPORT_FILE, TFLITE_FILE, save_model, write_report
from tinyprune.errors import BudgetError, ConfigError
from tinyprune.budget.predictor import SizePredictor
from tinyprune.quantize.int8 import quantize_int8
from tinyprune.budget.sensitivity import Sensitivity, analyze
from tinyprune.prune.structured.dependency import build_graph
from tinyprune.prune.structured.importance import has_batchnorm
from tinyprune.prune.structured.pruner import prune_structured

MAX_ROUNDS = 5  # allocate -> measure -> tighten rounds before giving up
QUICK_CALIBRATION = 64  # samples for the sizing conversions: bytes and arena do not depend on it
TIGHTEN_SLACK = 0.995  # aim a little below a missed limit on the next round
EARLY_STOPPING = 3  # epochs without a better validation loss before fine-tuning stops
COMPRESS_BITS = 4  # LUT index bits with --allow-compress (16 values per channel)
AUTO_CANDIDATES = ("l1", "bn", "taylor")  # importance="auto" measures these (bn only with BatchNorm)
_ALPHA = {"sensitivity": 1.0, "uniform": 0.0}


@dataclass
class Measured:
    """Facts of one int8 artifact (`int8_bytes` is the flash the model takes)."""

    int8_bytes: int
    arena_bytes: int  # 32-bit TFLM arena the exported header allocates, as fit counts it (see measure)
    ram_bytes: int  # arena + interpreter + stack (firmware_export.estimate)
    latency_ms: float | None  # estimated on the budget's board (None without a board)
    macs: int
    # the part of the bound the size predictor scales with the activations: TFLM's planned
    # (non-persistent) head plus the CMSIS-NN scratch the bound adds to it
    arena_head_bytes: int = 0
    runtime_code_bytes: int = 0  # TFLM code for this model's ops on the board (0 without a board)
    arena_bound_bytes: int = 0  # the 32-bit bound `arena_bytes` is the header's constant of


@dataclass
class BudgetResult:
    status: str  # "pruned" or "unchanged"
    targets: dict
    original: dict
    final: dict
    keep: dict[str, int]
    rounds: list[dict]
    accuracy: dict
    layers: list[dict]
    fit: dict
    seconds: dict[str, float]
    output_dir: str
    files: list[str] = field(default_factory=list)
    compression: dict | None = None  # set when the artifact is LUT-compressed (--allow-compress)
    choices: dict = field(default_factory=dict)  # importance, distillation, steps, compression: what and why
    steps: list[dict] = field(default_factory=list)  # one row per iterative step (what it reached, seconds)
    seed: dict = field(default_factory=dict)  # what `training.reproducible` fixed
    labels: str = "given"  # "given" or "none: teacher only"

    def to_dict(self) -> dict:
        return asdict(self)


def artifact(model, ds: Dataset, calibration: int, chosen: dict | None = None, bits: int = COMPRESS_BITS,
             masks: dict | None = None) -> tuple[bytes, bytes, object]:
    """(artifact .tflite, its int8 .tflite before compression, the Keras model behind it).

    Without `chosen` compression moves (budget/joint.py) the artifact is the plain int8
    conversion. With them, a copy of the model gets the moves (PRUNE layers masked, LUT layers
    clustered per channel), is converted, and TFLM-DECODE compressed (`compress_model`, "auto":
    per tensor the smaller of PRUNE and LUT)."""
    if not chosen:
        data = quantize_int8(model, ds.x_train, calibration)
        return data, data, model
    from firmware_export.compress import compress_model
    from tinyprune.tfsetup import keras

    twin = keras.models.clone_model(model)
    twin.set_weights(model.get_weights())
    joint.apply_moves(twin, chosen, masks)
    training.compile_for(twin, ds)
    int8 = quantize_int8(twin, ds.x_train, calibration)
    return compress_model(int8, "auto", bits, measure=False).data, int8, twin


def measure(tflite: bytes, board: Board | None) -> Measured:
    """Bytes, 32-bit arena, RAM and (with a board) estimated latency of an int8 .tflite.

    The arena is the figure `tinyprune fit` counts, so that a budget met here is met there: the
    exported header's constant for the board's core (arena_bound.header_arena_bytes; without a
    board the header's first constant)."""
    model = parse_tflite(tflite)
    report = tflm.measure_arena(tflite)
    bound = header_bound(model, report, board.core if board is not None else None)
    arena = arena_constant(bound.bound_bytes)  # = arena_figure(model, report, board), from the bound it needs anyway
    latency = None
    if board is not None:
        latency = fit_model(model, [board], arena=arena).results[0].latency_ms  # the figure, not re-bounded
    from firmware_export.costmodel import model_cost

    code = flash_bytes(model, board.kernels)[0] if board is not None else 0
    return Measured(len(tflite), arena, arena + ram_overhead_bytes(model), latency,
                    int(model_cost(model).total_macs), report.head_bytes + bound.scratch_bytes, code, bound.bound_bytes)



def _limits(budget: Budget, current: Measured, factors: dict[str, float]) -> Limits:
    """A resolved budget on the artifact -> limits on the predictor's quantities for a model
    measured as `current` (RAM less its fixed overhead is arena; latency scales with MACs)."""
    overhead = current.ram_bytes - current.arena_bytes
    macs = None
    if budget.latency_ms is not None and current.latency_ms:
        macs = current.macs * budget.latency_ms / current.latency_ms  # latency is linear in MACs per op kind
    return Limits(budget.flash_bytes, None if budget.ram_bytes is None else budget.ram_bytes - overhead,
                  macs).scaled(factors)


def _tighten(miss: dict[str, tuple[float, float]], got: Measured) -> dict[str, float]:
    """By how much to scale each predicted limit after the artifact missed.

    RAM is arena + a fixed overhead, so its miss is applied to the arena alone; latency is
    proportional to MACs (the fit estimator's per-op overhead makes this slightly optimistic,
    which the next round's measurement corrects)."""
    out = {}
    if "flash_bytes" in miss:
        value, limit = miss["flash_bytes"]
        out["flash_bytes"] = limit / value
    if "ram_bytes" in miss:
        value, limit = miss["ram_bytes"]
        overhead = got.ram_bytes - got.arena_bytes
        out["arena_bytes"] = max(limit - overhead, 1.0) / got.arena_bytes
    if "latency_ms" in miss:
        value, limit = miss["latency_ms"]
        out["macs"] = limit / value
    return out


def layer_table(before, after) -> list[dict]:
    """Per layer with weights: channels, parameters (= int8 weight bytes) and MACs, before/after."""

    def macs(layer) -> int:
        kernel = main_kernel(layer)
        if kernel is None:
            return 0
        n = int(np.prod(kernel.shape))
        if getattr(layer, "pointwise_kernel", None) is not None:
            n += int(np.prod(layer.pointwise_kernel.shape))
        shape = layer.output_shape
        spatial = int(np.prod(shape[1:-1])) if isinstance(shape, tuple) and len(shape) > 2 else 1
        return n * spatial

    rows = []
    for layer in before.layers:
        if not layer.weights:
            continue
        new = after.get_layer(layer.name)
        ch = lambda lay: lay.output_shape[-1] if isinstance(lay.output_shape, tuple) else None  # noqa: E731
        rows.append({"layer": layer.name, "type": type(layer).__name__,
                     "channels_before": ch(layer), "channels_after": ch(new),
                     "params_before": int(layer.count_params()), "params_after": int(new.count_params()),
                     "macs_before": macs(layer), "macs_after": macs(new)})
    return rows


def _too_small(budget: Budget, small, original: Measured) -> str:
    return (f"budget {budget.describe()} cannot be met by removing channels: the smallest model is about "
            f"{small.flash_bytes / 1024:.1f} KB int8 with a {small.arena_bytes / 1024:.1f} KB arena "
            f"(RAM {(small.arena_bytes + original.ram_bytes - original.arena_bytes) / 1024:.1f} KB)")


def _teacher_labelled(model, ds: Dataset) -> Dataset:
    """Unlabelled data labelled by the original model (class = its top-1, else its outputs):
    what sensitivity, importance and the report score against when y is absent."""
    def label(x):
        out = training.predict(model, x)
        return out.reshape(len(x), -1).argmax(1).astype(np.int64) if int(np.prod(out.shape[1:])) > 1 else out

    return Dataset(ds.name, ds.x_train, label(ds.x_train), ds.x_val, label(ds.x_val))


def _graph(model, ignore: tuple[str, ...]):
    outputs = {tensor._keras_history.layer.name for tensor in model.outputs}
    return build_graph(model, tuple(outputs | set(ignore)))


def _importance_candidates(graph) -> list[str]:
    """The criteria importance="auto" tries: AUTO_CANDIDATES, bn only where a group has BatchNorm."""
    return [c for c in AUTO_CANDIDATES if c != "bn" or any(has_batchnorm(graph, g) for g in graph.groups if g.prunable)]


def choose_importance(model, graph, predictor: SizePredictor, ds: Dataset, limits: Limits, round_to: int,
                      ignore: tuple[str, ...], use_cache: bool, quiet: bool, moves=None) -> tuple[str, dict[str, dict]]:
    """The measured rule of importance="auto": for each candidate criterion, measure
    sensitivity, allocate at the budget (with `moves`, compression may take part of it, as in the
    search), remove the channels, and score the pruned model on the validation data before any
    fine-tuning; the best score wins (ties: the cheaper, earlier candidate)."""
    candidates = _importance_candidates(graph)
    rows: dict[str, dict] = {}
    for crit in candidates:
        t = time.perf_counter()
        sens = analyze(model, graph, ds, importance=crit, round_to=round_to, quiet=quiet, use_cache=use_cache)
        alloc = allocate(graph, predictor, sens, limits, round_to, moves)
        pruned = prune_structured(model, group_keep=alloc.keep, importance=crit, data=ds, ignore=ignore).model
        rows[crit] = {"score_before_fine_tune": round(training.evaluate(pruned, ds), 6),
                      "predicted_drop": round(alloc.predicted_drop, 6), "seconds": round(time.perf_counter() - t, 2)}
    best = max(candidates, key=lambda c: (rows[c]["score_before_fine_tune"], -candidates.index(c)))
    return best, rows


def _fine_tune_one(student, teacher, ds: Dataset, ds_scored: Dataset, labels: bool, epochs: int, batch_size: int,
                   config: training.DistillConfig | None, description: str, quiet: bool, callbacks=(),
                   lr_schedule: str = training.DEFAULT_LR_SCHEDULE) -> dict:
    """Distil (config given) or train on the labels, in place, at Adam's default rate, constant
    or decayed by `lr_schedule` (training/schedule.py). The student is left compiled for
    `ds_scored` (a plain loss, so that the saved model loads without custom code)."""
    callbacks = [*training.schedule_callbacks(lr_schedule), *callbacks]  # first: the others see this batch's rate
    if config is not None:
        r = training.distill(student, teacher, ds, epochs, batch_size, config=config, labels=labels,
                             early_stopping=EARLY_STOPPING, description=description, quiet=quiet,
                             callbacks=callbacks)
        training.compile_for(student, ds_scored)
        return {"mode": "distill", "epochs_run": r.epochs_run, "temperature": r.temperature,
                "teacher_weight": r.weight, "labels_used": r.labels_used, "mixed_rows": r.mixed_rows}
    training.compile_for(student, ds_scored)
    r = training.train(student, ds_scored, epochs, batch_size, description=description, quiet=quiet,
                       early_stopping=EARLY_STOPPING, callbacks=callbacks)
    return {"mode": "labels" if labels else "teacher labels (top-1)", "epochs_run": r.epochs_run}


def _fine_tune(student, teacher, ds: Dataset, ds_scored: Dataset, labels: bool, epochs: int, batch_size: int,
               config: training.DistillConfig | None, mode, description: str, quiet: bool,
               callbacks_for=lambda m: [], lr_schedule: str = training.DEFAULT_LR_SCHEDULE) -> tuple[object, dict]:
    """Fine-tune the pruned `student`; returns (the fine-tuned model, what was done).

    mode True: distil; False: labels only; "auto" with labels: both, from the same start, and
    keep the one with the lower validation loss (ties: distillation; both losses and scores
    reported), the rule that ranks the allocation candidates; "auto" without labels: distil from
    the teacher alone. Measured on MNIST with 600 images at 12.5% flash (docs/benchmarks.md,
    "Sixth run"): the score on 400 images chose labels (97.5% vs 97.0%) where the loss chose
    distillation (0.0788 vs 0.0809), and distillation scored 98.45% on test against 97.96%."""
    if mode != "auto" or not labels or config is None:
        cfg = config if mode else None
        return student, _fine_tune_one(student, teacher, ds, ds_scored, labels, epochs, batch_size, cfg,
                                       description, quiet, callbacks_for(student), lr_schedule)
    from tinyprune.tfsetup import keras

    twin = keras.models.clone_model(student)
    twin.set_weights(student.get_weights())
    done_d = _fine_tune_one(student, teacher, ds, ds_scored, labels, epochs, batch_size, config,
                            description + " (distil)", quiet, callbacks_for(student), lr_schedule)
    done_l = _fine_tune_one(twin, teacher, ds, ds_scored, labels, epochs, batch_size, None,
                            description + " (labels)", quiet, callbacks_for(twin), lr_schedule)
    (score_d, loss_d), (score_l, loss_l) = training.score_and_loss(student, ds_scored), \
        training.score_and_loss(twin, ds_scored)
    winner, done = (student, done_d) if loss_d <= loss_l else (twin, done_l)
    return winner, {**done, "rule": "auto: the lower validation loss of distillation and labels only",
                    "validation": {"distill": round(score_d, 6), "labels": round(score_l, 6)},
                    "validation_loss": {"distill": round(loss_d, 6), "labels": round(loss_l, 6)}}


def prune_for_budget(model, ds: Dataset | None, out_dir: str | Path, *, flash_budget: str | None = None,
                     ram_budget: str | None = None, latency_budget: str | None = None, board: str | None = None,
                     boards_file: str | None = None, margin: float = 0.0, budget: Budget | None = None,
                     epochs: int = 5, batch_size: int = 32, importance: str = "auto", round_to: int = 1,
                     calibration: int = 300, name: str = "model", force: bool = False,
                     quiet: bool = False, console: Console | None = None, use_cache: bool = True,
                     allow_compress: bool = False, bits: int = COMPRESS_BITS, ignore: tuple[str, ...] = (),
                     seed: int | None = None, distill: bool | str = "auto",
                     temperature: float = training.DEFAULT_TEMPERATURE,
                     distill_weight: float = training.DEFAULT_WEIGHT, mixup: int = training.DEFAULT_MIXUP,
                     iterative_steps: int = 1,
                     step_epochs: int | None = None, allocation: str = "auto",
                     lr_schedule: str = training.DEFAULT_LR_SCHEDULE,
                     precomputed: OriginalFacts | None = None) -> BudgetResult:
    """Prune `model` to meet the budget and write OUT/ (see the module docstring).

    The budget is either `budget` (a `Budget.parse` result: the CLI parses once and passes it)
    or the strings `flash_budget` / `ram_budget` / `latency_budget` / `board` (+ `boards_file`,
    `margin`), parsed here once. `ds.y_train` / `ds.y_val` may be None (unlabelled data): the
    fine-tune then learns from the teacher alone, and accuracies are agreement with the original.

    With `allow_compress`, when channel removal alone cannot meet the budget, the artifact is
    also clustered (tfmot, at most 2^bits values per channel) and LUT-compressed for TFLM
    (firmware_export.compress); the compressed .tflite is then what is measured and exported.
    `distill` fine-tunes against the original model (`temperature`, `distill_weight` = the
    teacher term's share; `mixup` teacher-labelled mixed inputs per training row, see
    training/distillation.py): True = always, False = labels only, "auto" (default) = with labels,
    fine-tune both ways from the same start and keep the lower validation loss; without
    labels, distil from the teacher alone. `iterative_steps` > 1 prunes in that many
    prune -> fine-tune -> re-measure steps; intermediate steps fine-tune `step_epochs`
    (default max(1, epochs // 2)). `allocation` shapes the channel counts of the last step:
    "sensitivity" (the greedy allocator), "uniform" (one ratio for every group) or "auto"
    (default: both and a blend, each measured after a short fine-tune; the lowest validation
    loss is kept; with compression moves the greedy joint allocator runs alone). `lr_schedule`:
    every fine-tune's learning rate, "constant" (Adam's default) or "cosine" (decayed to zero over
    the run; training/schedule.py). `seed` fixes every source of
    randomness the job controls. `precomputed` (an `original_facts` result for this model,
    data and `calibration`; a sweep computes it once for all its points) skips the original's
    int8 conversion and its TFLM run on the validation data; the report is the same.

    Raises BudgetError when no allocation can meet the budget (with the smallest achievable),
    DataError without validation data, BoardError for an unknown board, ConfigError for bad
    settings.
    """
    console = console or Console(stderr=True, quiet=quiet)
    out_dir = Path(out_dir)
    check_writable(out_dir, force)
    model = as_tf_keras(model, ds)  # a Keras 3 model is translated (and checked) first
    if budget is None:
        budget = Budget.parse(flash_budget, ram_budget, latency_budget, board, boards_file, margin)
    elif any((flash_budget, ram_budget, latency_budget, board, boards_file)):
        raise ConfigError("give the budget either as budget=Budget.parse(...) or as strings, not both")
    check_job(round_to, ds is not None)
    check_name(name)  # before the search, not when its export writes the C source
    check_bits(bits)
    if epochs < 0:
        raise ConfigError(f"--epochs must be >= 0, got {epochs}")
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    if iterative_steps < 1:
        raise ConfigError(f"--iterative-steps must be >= 1, got {iterative_steps}")
    if step_epochs is not None and step_epochs < 0:
        raise ConfigError(f"--step-epochs must be >= 0, got {step_epochs}")
    if importance not in IMPORTANCES:
        raise ConfigError(f"unknown importance {importance!r} for a budget; use one of {', '.join(IMPORTANCES)}")
    if allocation not in ALLOCATIONS:
        raise ConfigError(f"unknown allocation {allocation!r}; use one of {', '.join(ALLOCATIONS)}")
    training.check_lr_schedule(lr_schedule)
    if distill not in (True, False, "auto"):
        raise ConfigError(f"distill must be True, False or 'auto', got {distill!r}")
    config = training.DistillConfig(temperature, distill_weight, mixup) if distill else None
    if config is not None:
        config.validate()
    unknown = [n for n in ignore if n not in {layer.name for layer in model.layers}]
    if unknown:
        raise ConfigError(f"--ignore: no layer named {', '.join(unknown)} in the model")
    if precomputed is not None and precomputed.calibration != calibration:
        raise ConfigError(f"precomputed original facts used {precomputed.calibration} calibration samples, "
                          f"this job {calibration}: compute them with the same calibration")
    with training.reproducible(seed) as seeded:
        return _search(model, ds, out_dir, budget, epochs=epochs, batch_size=batch_size, importance=importance,
                       round_to=round_to, calibration=calibration, name=name, force=force, quiet=quiet,
                       console=console, use_cache=use_cache, allow_compress=allow_compress, bits=bits,
                       ignore=tuple(ignore), config=config, distill=distill, iterative_steps=iterative_steps,
                       step_epochs=max(1, epochs // 2) if step_epochs is None else step_epochs, seeded=seeded,
                       allocation=allocation, precomputed=precomputed, lr_schedule=lr_schedule)


def _search(model, ds: Dataset, out_dir: Path, asked: Budget, *, epochs, batch_size, importance, round_to,
            calibration, name, force, quiet, console, use_cache, allow_compress, bits, ignore, config, distill,
            iterative_steps, step_epochs, seeded, allocation, precomputed=None,
            lr_schedule=training.DEFAULT_LR_SCHEDULE) -> BudgetResult:
    seconds: dict[str, float] = {}
    t_all = time.perf_counter()
    labels = ds.y_train is not None and ds.y_val is not None
    board = asked.board

    # 1. the original, measured; the budget resolved against it (once)
    t = time.perf_counter()
    ds_scored = ds if labels else _teacher_labelled(model, ds)
    training.compile_for(model, ds_scored)
    original_tflite = precomputed.tflite if precomputed else quantize_int8(model, ds.x_train, calibration)
    original = measure(original_tflite, board)
    budget = asked.resolve(original)
    seconds["measure original"] = round(time.perf_counter() - t, 2)
    console.print(f"original: {original.int8_bytes:,} B int8, arena {original.arena_bytes:,} B, "
                  f"RAM {original.ram_bytes:,} B" + (f", ~{original.latency_ms:.1f} ms on {board.name}"
                                                     if board else ""))
    console.print(f"budget: {budget.describe()}")
    run = BudgetRun(status="unchanged", original_model=model, final_model=model, final_tflite=original_tflite,
                    original=original, final=original, budget=budget, ds=ds_scored, out_dir=out_dir, name=name,
                    force=force, seconds=seconds, t_all=t_all, calibration=calibration, console=console,
                    seed=seeded.to_dict(), labels="given" if labels else "none: teacher only",
                    precomputed=precomputed)

    # 2. nothing to do
    if budget.met_by(original):
        console.print("[green]the original model already meets the budget: nothing to prune; "
                      "it is written unchanged[/]")
        return write_result(run)

    # 3. graph, predictor, feasibility (before any training)
    t = time.perf_counter()
    graph = _graph(model, ignore)
    predictor = SizePredictor(model, graph, original.int8_bytes, original.arena_bound_bytes, original.arena_head_bytes,
                              to_arena=arena_constant)
    base_limits = _limits(budget, original, {})
    small = smallest(graph, predictor, round_to)
    factors: dict[str, float] = {}
    moves = None
    choices: dict = {"compression": {"allowed": allow_compress, "used": False,
                                     "why": "not allowed (--allow-compress)" if not allow_compress else ""}}
    if base_limits.deficits(small) and not allow_compress:
        hint = "; --allow-compress may reach it" if "flash_bytes" in base_limits.deficits(small) else ""
        raise BudgetError(_too_small(budget, small, original) + hint)
    if allow_compress:
        t_moves = time.perf_counter()
        moves = joint.measure_moves(model, ds_scored, predictor, bits, ignore=ignore)
        choices["compression"]["moves_measured"] = {f"{m.layer} {m.label}": m.drop for m in moves.moves}
        choices["compression"]["seconds"] = round(time.perf_counter() - t_moves, 2)
        small_joint = smallest(graph, predictor, round_to, moves)
        # necessary, not sufficient: flash with every layer compressed, arena with none (DECODE adds arena);
        # the allocator then looks for a mix that meets both
        if "flash_bytes" in base_limits.deficits(small_joint) or set(base_limits.deficits(small)) - {"flash_bytes"}:
            raise BudgetError(_too_small(budget, small, original) + f", and with every layer PRUNE/LUT compressed "
                              f"about {small_joint.flash_bytes / 1024:.1f} KB with a "
                              f"{small_joint.arena_bytes / 1024:.1f} KB arena (DECODE's decoded weights count "
                              "against RAM)")
    seconds["graph + predictor"] = round(time.perf_counter() - t, 2)

    # 4. importance (with allocation="auto" in one shot: chosen with the shape, after fine-tuning, in step 5)
    joint_choice = importance == "auto" and allocation == "auto" and moves is None and iterative_steps == 1
    if joint_choice:
        choices["importance"] = {"chosen": None, "rule": "with the allocation shape: the lowest validation loss "
                                 "after fine-tuning (see allocation)"}
        importance_options = _importance_candidates(graph)
    elif importance == "auto":
        t = time.perf_counter()
        importance, measured = choose_importance(model, graph, predictor, ds_scored, base_limits,
                                                 round_to, ignore, use_cache, quiet, moves)
        seconds["importance choice"] = round(time.perf_counter() - t, 2)
        choices["importance"] = {"chosen": importance, "rule": "best validation score of the allocated, pruned "
                                 "model before fine-tuning", "candidates": measured}
        console.print(f"importance: {importance} (" + ", ".join(
            f"{c} {m['score_before_fine_tune']:.4f}" for c, m in measured.items()) + " before fine-tuning)")
    else:
        choices["importance"] = {"chosen": importance, "rule": "given"}
    choices["fine_tune"] = ({"mode": "auto" if distill == "auto" and labels else "distill",
                             "temperature": config.temperature, "teacher_weight": config.weight if labels else 1.0,
                             "mixup": config.mixup, "labels": labels} if config is not None
                            else {"mode": "labels", "labels": labels})
    choices["fine_tune"]["lr_schedule"] = lr_schedule
    choices["iterative"] = {"steps": iterative_steps, "step_epochs": step_epochs if iterative_steps > 1 else None,
                            "final_epochs": epochs}

    # 5-6. prune in steps, fine-tune after each
    current, current_m = model, original
    steps, rounds, sens, alloc, best, continued = [], [], None, None, None, False
    masks: dict = {}
    for step in range(1, iterative_steps + 1):
        last = step == iterative_steps
        t_step = time.perf_counter()
        target = budget if last else budget.toward(original, step / iterative_steps)
        prefix = f"step {step}: " if iterative_steps > 1 else ""
        if step > 1:
            graph = _graph(current, ignore)
            predictor = SizePredictor(current, graph, current_m.int8_bytes, current_m.arena_bound_bytes,
                                      current_m.arena_head_bytes, to_arena=arena_constant)
        t = time.perf_counter()
        sensitivities = {crit: analyze(current, graph, ds_scored, importance=crit, round_to=round_to, quiet=quiet,
                                       use_cache=use_cache)
                         for crit in (importance_options if joint_choice else [importance])}
        sens = next(iter(sensitivities.values()))
        seconds[prefix + "sensitivity"] = round(time.perf_counter() - t, 2)
        if not quiet and step == 1:
            sens.render(console, top=12)
        t = time.perf_counter()
        if last:
            if moves is not None:
                moves.reindex(predictor)
            allocator = _allocator(graph, predictor, sens, round_to, moves, _ALPHA.get(allocation, 1.0))
            if allocation == "auto" and moves is None:
                best, choices["allocation"] = _choose_shape(
                    current, model, graph, predictor, sensitivities, _limits(target, current_m, factors), ds,
                    ds_scored, labels, epochs, batch_size, round_to, ignore, console, lr_schedule)
                importance, sens = best.importance, sensitivities[best.importance]
                allocator = _allocator(graph, predictor, sens, round_to, None, best.alpha)
                if joint_choice:
                    choices["importance"]["chosen"] = importance
                seconds[prefix + "allocation candidates"] = choices["allocation"]["seconds"]
                t = time.perf_counter()  # "allocate + remove" is the removal alone, as before
            else:
                choices["allocation"] = {"chosen": "sensitivity" if moves is not None else allocation,
                                         "rule": "compression moves: the greedy joint allocator"
                                         if moves is not None else "given"}
            pruned, alloc, rounds = _remove_measured(current, allocator, target, current_m, factors,
                                                     bits, ds_scored, importance, round_to, ignore,
                                                     console, prefix)
            continued = best is not None and _continue_probe(pruned, alloc, best)
            if best is not None:
                choices["allocation"]["final_start"] = CONTINUED if continued else REPRUNED
            masks = joint.apply_moves(pruned, {k: m for k, m in alloc.compress.items() if m.method == "prune"},
                                      cluster=False)
        else:
            alloc = allocate(graph, predictor, sens, _limits(target, current_m, {}), round_to)
            pruned = prune_structured(current, group_keep=alloc.keep, importance=importance, data=ds_scored,
                                      ignore=ignore).model
        seconds[prefix + "allocate + remove"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        chosen_moves = alloc.compress if last else {}
        tuned, done = _fine_tune(pruned, model, ds, ds_scored, labels, epochs if last else step_epochs, batch_size,
                                 config, distill, prefix + "fine-tuning", quiet,
                                 lambda m: [joint.mask_callback(m, chosen_moves, masks)] if chosen_moves else [],
                                 lr_schedule)
        if last and continued:
            done = _choose_final_model(tuned, best, ds_scored, done)
        seconds[prefix + "fine-tune"] = round(time.perf_counter() - t, 2)
        limits = target.to_dict()  # whole bytes, as report.json's targets
        row = {"step": step, "targets": {k: limits[k] for k in ("flash_bytes", "ram_bytes", "latency_ms")},
               "keep": dict(alloc.keep), "predicted_flash_bytes": alloc.prediction.flash_bytes,
               "predicted_drop": round(alloc.predicted_drop, 6), "fine_tune": done,
               "score_after_fine_tune": round(training.evaluate(tuned, ds_scored), 6)}
        if not last:
            quick = quantize_int8(tuned, ds.x_train, QUICK_CALIBRATION)
            current_m = measure(quick, board)
            row["measured_int8_bytes"] = current_m.int8_bytes
            current = tuned
        row["seconds"] = round(time.perf_counter() - t_step, 2)
        steps.append(row)
        if iterative_steps > 1:
            console.print(f"step {step}/{iterative_steps}: validation {row['score_after_fine_tune']:.4f} "
                          f"({row['seconds']:.0f} s)")

    # 7. convert, check again, write
    t = time.perf_counter()
    final_tflite, final_int8, final_keras = artifact(tuned, ds_scored, calibration, alloc.compress, bits, masks)
    if allow_compress:
        c = choices["compression"]
        c["used"] = bool(alloc.compress)
        c["layers"] = {k: m.label for k, m in alloc.compress.items()}
        c["why"] = ("the allocator found compressing these layers cheaper per byte than removing channels"
                    if alloc.compress else "removing channels was cheaper per byte than any compression move")
    final = measure(final_tflite, board)
    # removal sizes do not depend on trained values, compressed ones can (the clustered values):
    # this guards those and converter surprises
    if not budget.met_by(final):
        what = ", ".join(f"{k} {v:,.0f} > {lim:,.0f}" for k, (v, lim) in budget.misses(final).items())
        raise BudgetError(f"the fine-tuned artifact misses the budget ({what}); nothing was written: "
                          "retry with --margin 0.02")
    seconds["convert + measure"] = round(time.perf_counter() - t, 2)
    run.status, run.final_model, run.final_tflite, run.final = "pruned", final_keras, final_tflite, final
    run.keep, run.rounds, run.sens, run.choices, run.steps = alloc.keep, rounds, sens, choices, steps
    run.original_tflite, run.compressed_from, run.bits = original_tflite, (final_int8 if alloc.compress else None), \
        bits
    run.compress_layers = {k: m.label for k, m in alloc.compress.items()}
    return write_result(run)


def _allocator(graph, predictor: SizePredictor, sens: Sensitivity, round_to: int, moves, alpha: float):
    """limits -> Allocation: the greedy allocator (with compression `moves`, or alpha 1) or the
    allocation of shape `alpha` (candidates.blended)."""
    if moves is not None or alpha >= 1.0:
        return lambda limits: allocate(graph, predictor, sens, limits, round_to, moves)
    return lambda limits: candidates.blended(graph, predictor, sens, limits, round_to, alpha)


def _choose_shape(current, teacher, graph, predictor: SizePredictor, sensitivities: dict[str, Sensitivity],
                  limits: Limits, ds: Dataset, ds_scored: Dataset, labels: bool, epochs: int, batch_size: int,
                  round_to: int, ignore: tuple[str, ...], console: Console,
                  lr_schedule: str = training.DEFAULT_LR_SCHEDULE):
    """allocation="auto": score every (importance, shape) of candidates.choose after a labels-only
    fine-tune of `epochs` (the teacher's top-1 without labels) on at most
    candidates.PROBE_TRAIN_SAMPLES samples; return (the best Candidate, the report's record)."""
    t = time.perf_counter()
    probe_ds, probe_scored = candidates.probe_data(ds), candidates.probe_data(ds_scored)

    def prune(keep, importance):  # a new model each time: the probe trains it in place
        return prune_structured(current, group_keep=keep, importance=importance, data=ds_scored, ignore=ignore).model

    def probe(pruned) -> tuple[float, float]:
        _fine_tune_one(pruned, teacher, probe_ds, probe_scored, labels, epochs, batch_size, None,
                       "allocation candidate", True, lr_schedule=lr_schedule)
        return training.score_and_loss(pruned, ds_scored)

    best, scored = candidates.choose(graph, predictor, sensitivities, limits, round_to, prune, probe)
    console.print("allocation: " + ", ".join(f"{c.name} {c.score:.4f} (loss {c.loss:.4f})" for c in scored)
                  + f" after fine-tuning: {best.name}")
    record = {"chosen": best.shape, "importance": best.importance, "alpha": best.alpha,
              "rule": f"lowest validation loss after a {epochs}-epoch labels-only fine-tune on at most "
                      f"{candidates.PROBE_TRAIN_SAMPLES} training samples (ties: the earlier importance, then the "
                      "sensitivity allocation)",
              "candidates": {c.name: c.to_dict() for c in scored}, "seconds": round(time.perf_counter() - t, 2)}
    return best, record


CONTINUED = "the winning candidate's probe: its fine-tune is continued"
REPRUNED = "the pruned model (the measured artifact needed other keep counts than the candidate's)"


def _continue_probe(pruned, alloc: Allocation, best: candidates.Candidate) -> bool:
    """Start the final fine-tune from the winning candidate's probe (its weights after the probe
    fine-tune) when the measured artifact kept the candidate's channels; True if it did. The
    probe's epochs are then the first part of the final model's training."""
    if best.model is None or alloc.keep != best.allocation.keep:
        return False
    pruned.set_weights(best.model.get_weights())
    return True


def _choose_final_model(tuned, best: candidates.Candidate, ds_scored: Dataset, done: dict) -> dict:
    """The final model of a continued fine-tune: of the probe, the continued run and the mean of
    their weights (training/averaging.py: both come from the probe's start), the one with the
    lowest validation loss (the average on a tie), the rule that ranks the candidates. Measured
    on the MNIST CNN with 600 images (docs/benchmarks.md, "Fifth run"): where the average's loss
    was the lowest it gained 0.3 points at 25% flash on every seed; where the continued run's
    was lower, keeping the average lost accuracy (the full training set at 6.25%).
    `tuned` is changed in place; returns `done` with the three losses and the one kept."""
    probe_w, tuned_w = best.model.get_weights(), tuned.get_weights()
    # the probe's loss was measured by candidates.choose on these weights and this validation set
    losses = {"probe": best.loss, "continued": training.validation_loss(tuned, ds_scored)}
    tuned.set_weights(training.average_weights(probe_w, tuned_w))
    losses["average"] = training.validation_loss(tuned, ds_scored)
    kept = min(("average", "continued", "probe"), key=lambda k: losses[k])  # min keeps the first of equals
    if kept != "average":
        tuned.set_weights(probe_w if kept == "probe" else tuned_w)
    return {**done, "continued_from_probe": {"probe_loss": round(losses["probe"], 6),
                                             "continued_loss": round(losses["continued"], 6),
                                             "averaged_loss": round(losses["average"], 6), "kept": kept}}


def _remove_measured(current, allocator, budget: Budget,
                     current_m: Measured, factors: dict[str, float], bits: int, ds: Dataset,
                     importance: str, round_to: int, ignore: tuple[str, ...], console: Console,
                     prefix: str) -> tuple[object, Allocation, list[dict]]:
    """Allocate (`allocator`: limits -> Allocation), remove, convert and measure the artifact;
    tighten the predicted limits by any miss and repeat (at most MAX_ROUNDS). `factors` is
    updated in place."""
    rounds = []
    for i in range(MAX_ROUNDS):
        try:
            alloc = allocator(_limits(budget, current_m, factors))
        except BudgetError:
            if not rounds:
                raise
            got = rounds[-1]["measured"]
            raise BudgetError(f"the artifact misses {budget.describe()} (measured {got['int8_bytes']:,} B, arena "
                              f"{got['arena_bytes']:,} B, RAM {got['ram_bytes']:,} B after {len(rounds)} round(s)) "
                              "and no smaller allocation of its shape is predicted to meet it; try a looser budget "
                              "or a smaller --round-to") from None
        pruned = prune_structured(current, group_keep=alloc.keep, importance=importance, data=ds, ignore=ignore)
        quick, _, _ = artifact(pruned.model, ds, QUICK_CALIBRATION, alloc.compress, bits)
        got = measure(quick, budget.board)
        miss = budget.misses(got)
        rounds.append({"round": i + 1, "keep": alloc.keep, "predicted_flash_bytes": alloc.prediction.flash_bytes,
                       "predicted_arena_bytes": alloc.prediction.arena_bytes, "predicted_drop": alloc.predicted_drop,
                       "compress": {k: m.label for k, m in alloc.compress.items()},
                       "measured": asdict(got), "misses": {k: list(v) for k, v in miss.items()}})
        console.print(f"{prefix}round {i + 1}: predicted {alloc.prediction.flash_bytes:,} B / arena "
                      f"{alloc.prediction.arena_bytes:,} B; measured {got.int8_bytes:,} B / arena "
                      f"{got.arena_bytes:,} B" + ("  [green]fits[/]" if not miss else "  [yellow]misses[/]"))
        if not miss:
            return pruned.model, alloc, rounds
        limits = _limits(budget, current_m, factors)
        for resource, ratio in _tighten(miss, got).items():
            # aim the predicted limit below what this allocation was predicted to need, by the miss
            aim = getattr(alloc.prediction, resource) * ratio * TIGHTEN_SLACK
            factors[resource] = factors.get(resource, 1.0) * min(ratio * TIGHTEN_SLACK, aim / getattr(limits, resource))
    raise BudgetError(f"after {MAX_ROUNDS} rounds the artifact still misses {budget.describe()}; "
                      "try a looser budget or a smaller --round-to")


@dataclass
class BudgetRun:
    """Everything the writer needs about one finished budget job (the writer's only input)."""

    status: str
    original_model: object
    final_model: object
    final_tflite: bytes
    original: Measured
    final: Measured
    budget: Budget
    ds: Dataset  # with labels (the teacher's when the data had none)
    out_dir: Path
    name: str
    force: bool
    seconds: dict
    t_all: float
    calibration: int
    console: Console
    keep: dict = field(default_factory=dict)
    rounds: list = field(default_factory=list)
    sens: Sensitivity | None = None
    original_tflite: bytes | None = None
    compressed_from: bytes | None = None  # the int8 .tflite before LUT compression
    bits: int | None = None
    compress_layers: dict = field(default_factory=dict)  # layer -> "prune@0.75" / "lut@4"
    choices: dict = field(default_factory=dict)
    steps: list = field(default_factory=list)
    seed: dict = field(default_factory=dict)
    labels: str = "given"
    precomputed: OriginalFacts | None = None  # the original's facts, computed once by the caller


def write_result(run: BudgetRun) -> BudgetResult:
    """Check parity, build the report and write OUT/ atomically (model, .tflite, C, reports)."""
    from firmware_export.cexport import export_c
    from tinyprune.quantize.parity import parity_report

    t = time.perf_counter()
    ds, console = run.ds, run.console
    # ai-edge-litert cannot run TFLM's DECODE op: parity is taken on the int8 model before LUT
    # compression, and the compressed model's TFLM outputs are checked bit-identical to it.
    parity = parity_report(run.final_model, run.compressed_from or run.final_tflite, ds.x_val, ds.y_val)
    compression = None
    if run.compressed_from is not None:
        same = bool(np.array_equal(tflm.run(run.final_tflite, ds.x_val), tflm.run(run.compressed_from, ds.x_val)))
        compression = {"method": "tflm-decode", "layers": run.compress_layers, "bits": run.bits,
                       "int8_bytes": len(run.compressed_from), "compressed_bytes": len(run.final_tflite),
                       "arena_bytes_int8": arena_figure(parse_tflite(run.compressed_from),
                                                        tflm.measure_arena(run.compressed_from), run.budget.board),
                       "arena_bytes_compressed": run.final.arena_bytes,
                       "tflm_outputs_bit_identical": same, "note": EXPERIMENTAL_NOTE}
    original_tflm = parity.tflm_accuracy
    if run.original_tflite is not None and ds.is_classification:  # top-1 of raw int8 outputs is the class
        original_tflm = run.precomputed.tflm_accuracy if run.precomputed else \
            training.score(tflm.run(run.original_tflite, ds.x_val), ds.y_val)
    elif run.original_tflite is not None:
        original_tflm = None  # no class labels: accuracy is not defined (parity reports agreement)
    accuracy = {"original_float": training.evaluate(run.original_model, ds), "original_int8_tflm": original_tflm,
                **{k: v for k, v in parity.to_dict().items()}}
    board = run.budget.board
    fit_boards = [board] if board else select_boards(run.budget.boards, list(DEFAULT_BOARDS), False)
    fit = fit_model(run.final_tflite, fit_boards)
    layers = layer_table(run.original_model, run.final_model)
    run.seconds["report"] = round(time.perf_counter() - t, 2)
    run.seconds["total"] = round(time.perf_counter() - run.t_all, 2)
    result = BudgetResult(run.status, run.budget.to_dict(), asdict(run.original), asdict(run.final), run.keep,
                          run.rounds, accuracy, layers, json.loads(fit.to_json()), run.seconds, str(run.out_dir),
                          compression=compression, choices=run.choices, steps=run.steps, seed=run.seed,
                          labels=run.labels)
    with staged_dir(run.out_dir, force=run.force) as tmp:
        save_model(tmp, run.final_model, wants_keras3(run.original_model) or bool(run.precomputed and
                                                                                   run.precomputed.keras3))
        (tmp / TFLITE_FILE).write_bytes(run.compressed_from or run.final_tflite)
        if run.compressed_from is not None:
            (tmp / "model_int8_lut.tflite").write_bytes(run.final_tflite)
        export_c(run.final_tflite, tmp / "firmware", name=run.name)
        if run.sens is not None:
            (tmp / "sensitivity.json").write_text(json.dumps(run.sens.to_dict(), indent=2) + "\n")
            run.sens.plot(tmp / "sensitivity.png")
        result.files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file()) + \
            [REPORT_FILE, "report.md"]
        write_report(tmp, result.to_dict())
        (tmp / "report.md").write_text(render_markdown(result))
    render_console(result, console)
    fit.render(console)
    return result


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.4f}"


def _kb(n: float | None) -> str:
    return "-" if n is None else f"{n / 1024:.1f} KB"


def render_markdown(r: BudgetResult) -> str:
    """report.md: what was asked, what was measured, per-layer before/after, time spent."""
    o, f, a = r.original, r.final, r.accuracy

    def pct(v):
        return "-" if v is None else f"{v:.2%}"

    lat = r.targets["latency_ms"]
    lines = [f"# tinyprune budget report ({r.status})", "",
             f"Budget: flash {_kb(r.targets['flash_bytes'])}, RAM {_kb(r.targets['ram_bytes'])}, latency "
             + ("-" if lat is None else f"{lat:.2f} ms")
             + (f" on {r.targets['board']}" if r.targets['board'] else "")
             + (f", margin {r.targets['margin']:.0%}" if r.targets['margin'] else ""), "",
             "| | original | pruned |", "| --- | ---: | ---: |",
             f"| int8 .tflite bytes (flash for the model) | {o['int8_bytes']:,} | {f['int8_bytes']:,} |",
             f"| TFLM arena (the exported header's constant) | {o['arena_bytes']:,} | {f['arena_bytes']:,} |",
             f"| RAM (arena + interpreter + stack) | {o['ram_bytes']:,} | {f['ram_bytes']:,} |",
             f"| MACs | {o['macs']:,} | {f['macs']:,} |"]
    if o["latency_ms"] is not None:
        lines.append(f"| estimated latency ms | {o['latency_ms']:.2f} | {f['latency_ms']:.2f} |")
    if r.compression:
        c = r.compression
        lines += ["", f"The artifact is TFLM DECODE compressed ({', '.join(f'{k} {v}' for k, v in c['layers'].items())}): "
                  f"{c['int8_bytes']:,} B int8 -> {c['compressed_bytes']:,} B; arena {c['arena_bytes_int8']:,} B -> "
                  f"{c['arena_bytes_compressed']:,} B (the decoded weights live in the arena, counted against RAM); its "
                  f"TFLM outputs are {'bit-identical to' if c['tflm_outputs_bit_identical'] else 'DIFFERENT from'} the "
                  f"int8 model's. {c['note']}.", ""]
    lines += [f"| accuracy, float Keras | {pct(a['original_float'])} | {pct(a['float_accuracy'])} |",
              f"| accuracy, int8 in TFLM | {pct(a['original_int8_tflm'])} | {pct(a['tflm_accuracy'])} |",
              f"| accuracy, int8 in TFLite | - | {pct(a['tflite_accuracy'])} |", "",
              f"Accuracies are on the {a.get('samples', 'validation')} validation samples, the same that "
              "ranked the candidates and stopped the fine-tunes: measure the final model on a held-out "
              "test set before relying on the last digit.", "",
              "Bytes are the real int8 .tflite's; the arena is the exported header's constant for it (the "
              "32-bit bound of the arena the real TFLM interpreter allocates, + the export's margin), what "
              "the firmware holds in RAM; latency is the fit estimator's.", "",
              "## Per layer", "", "| layer | type | channels | params (int8 bytes) | MACs |",
              "| --- | --- | ---: | ---: | ---: |"]
    for row in r.layers:
        lines.append(f"| {row['layer']} | {row['type']} | {row['channels_before']} -> {row['channels_after']} | "
                     f"{row['params_before']:,} -> {row['params_after']:,} | {row['macs_before']:,} -> "
                     f"{row['macs_after']:,} |")
    lines += ["", "## Fit", "", "| board | flash | RAM | latency ms (range) | fits |", "| --- | ---: | ---: | ---: | --- |"]
    for b in r.fit["boards"]:
        lines.append(f"| {b['board']} | {b['flash_bytes']:,} / {b['flash_available']:,} | {b['ram_bytes']:,} / "
                     f"{b['ram_available']:,} | {b['latency_ms']:.2f} ({b['latency_ms_low']:.2f}-"
                     f"{b['latency_ms_high']:.2f}) | {'yes' if b['fits'] else 'no: ' + b['overshoot']} |")
    lines += ["", "## Choices", ""] + render_choices(r)
    lines += ["", "## Time", "", "| stage | s |", "| --- | ---: |"]
    lines += [f"| {k} | {v} |" for k, v in r.seconds.items()]
    return "\n".join(lines) + "\n"


def render_choices(r: BudgetResult) -> list[str]:
    """report.md lines: every choice the job made, why, and what it cost."""
    c, lines = r.choices, []
    seed = r.seed or {}
    lines.append(f"- seed: {'none' if seed.get('seed') is None else seed['seed']}"
                 + (f" (Python, NumPy and TF seeded, TF op determinism on; "
                                                 f"{seed.get('note')})" if seed.get("seed") is not None
                                                 else f" ({seed.get('note', 'not reproducible')})"))
    lines.append(f"- labels: {r.labels}" + ("" if r.labels == "given" else
                                           " (accuracies above are agreement with the original model)"))
    imp = c.get("importance")
    if imp:
        cand = imp.get("candidates")
        lines.append(f"- importance: {imp['chosen']} ({imp['rule']})" + ("" if not cand else ": " + ", ".join(
            f"{k} {v['score_before_fine_tune']:.4f} in {v['seconds']:.1f} s" for k, v in cand.items())))
    shape = c.get("allocation")
    if shape:
        cand = shape.get("candidates")
        lines.append(f"- allocation: {shape['chosen']} ({shape['rule']})" + ("" if not cand else ": " + ", ".join(
            f"{k} {v['score_after_probe']:.4f}, loss {v['loss_after_probe']:.4f} "
            f"({', '.join(f'{g} {n}' for g, n in v['keep'].items())}) in "
            f"{v['seconds']:.1f} s" for k, v in cand.items())))
        if shape.get("final_start"):
            cont = (r.steps[-1]["fine_tune"] if r.steps else {}).get("continued_from_probe")
            lines.append(f"- final fine-tune started from {shape['final_start']}" + ("" if not cont else
                         f"; kept the {cont['kept']} model (validation loss: probe {cont['probe_loss']:.4f}, "
                         f"continued {cont['continued_loss']:.4f}, their weights averaged "
                         f"{cont['averaged_loss']:.4f})"))
    ft = c.get("fine_tune")
    if ft:
        mixes = f", {ft['mixup']} teacher-labelled mixes per training input" if ft.get("mixup") else ""
        kd = (f"distillation from the unpruned model (T={ft.get('temperature')}, teacher weight "
              f"{ft.get('teacher_weight')}{mixes})")
        if ft["mode"] == "auto":
            last = r.steps[-1]["fine_tune"] if r.steps else {}
            v, loss = last.get("validation", {}), last.get("validation_loss", {})
            lines.append(f"- fine-tuning: the lower validation loss of {kd} and labels only: chose "
                         f"{last.get('mode')} (loss: distillation {loss.get('distill', float('nan')):.4f}, labels "
                         f"only {loss.get('labels', float('nan')):.4f}; score: distillation "
                         f"{v.get('distill', float('nan')):.4f}, labels only {v.get('labels', float('nan')):.4f})")
        else:
            lines.append("- fine-tuning: " + (kd if ft["mode"] == "distill" else "labels only (no distillation)"))
        if ft.get("lr_schedule"):
            lines.append("- learning rate: Adam from its default, " + (
                "decayed to zero over each fine-tune (cosine)" if ft["lr_schedule"] == "cosine" else "constant"))
    it = c.get("iterative")
    if it:
        lines.append(f"- steps: {it['steps']}" + ("" if it["steps"] == 1 else
                                                 f" ({it['step_epochs']} epochs each, the last {it['final_epochs']})"))
    comp = c.get("compression")
    if comp:
        layers = ", ".join(f"{k} {v}" for k, v in comp.get("layers", {}).items())
        lines.append("- compression: " + (f"TFLM DECODE on {layers}" if comp["used"] else "none")
                     + f" ({comp['why']})")
        if comp.get("moves_measured"):
            lines.append("  - measured drop per move (no fine-tuning): " + ", ".join(
                f"{k} {v:+.4f}" for k, v in comp["moves_measured"].items()))
    if len(r.steps) > 1:
        lines += ["", "| step | flash target B | predicted B | validation after fine-tune | epochs | s |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: |"]
        for st in r.steps:
            lines.append(f"| {st['step']} | {_fmt_bytes(st['targets']['flash_bytes'])} | "
                         f"{st['predicted_flash_bytes']:,} | {st['score_after_fine_tune']:.4f} | "
                         f"{st['fine_tune']['epochs_run']} | {st['seconds']} |")
    return lines


def _fmt_bytes(v: float | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def render_console(r: BudgetResult, console: Console) -> None:
    from rich.table import Table

    o, f, a = r.original, r.final, r.accuracy
    t = Table(title=f"prune for budget: {r.status}")
    t.add_column("")
    t.add_column("original", justify="right")
    t.add_column("result", justify="right")
    t.add_column("budget", justify="right")
    t.add_row("int8 bytes", f"{o['int8_bytes']:,}", f"{f['int8_bytes']:,}", _kb(r.targets["flash_bytes"]))
    t.add_row("RAM bytes", f"{o['ram_bytes']:,}", f"{f['ram_bytes']:,}", _kb(r.targets["ram_bytes"]))
    if o["latency_ms"] is not None:
        lim = r.targets["latency_ms"]
        t.add_row("latency ms (est.)", f"{o['latency_ms']:.2f}", f"{f['latency_ms']:.2f}",
                  "-" if lim is None else f"{lim:.2f}")
    t.add_row("accuracy (int8, TFLM)", _num(a["original_int8_tflm"]), _num(a["tflm_accuracy"]), "")
    console.print(t)


def original_facts(model, ds: Dataset, calibration: int = 300) -> OriginalFacts:
    """What stage 1 and the report of `prune_for_budget(model, ds, ...)` compute about the
    original model, computed once to be passed as its `precomputed` (a sweep's driver does)."""
    t = time.perf_counter()
    model = as_tf_keras(model, ds)
    labels = ds.y_train is not None and ds.y_val is not None
    ds_scored = ds if labels else _teacher_labelled(model, ds)
    training.compile_for(model, ds_scored)
    tflite = quantize_int8(model, ds.x_train, calibration)
    accuracy = training.score(tflm.run(tflite, ds_scored.x_val), ds_scored.y_val) if ds_scored.is_classification \
        else None
    return OriginalFacts(tflite, accuracy, calibration, round(time.perf_counter() - t, 2))
