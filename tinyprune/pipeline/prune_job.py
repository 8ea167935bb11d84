"""The `tinyprune prune <method>` job: load -> prune -> quantize -> measure -> (compress) -> write.

    from tinyprune.pipeline.prune_job import prune_job
    from tinyprune.pipeline.settings import StructuredSettings, TrainSettings

    result = prune_job("m.h5", "digits", "out/s50", StructuredSettings(ratio=0.5), TrainSettings(epochs=2))
    result.report["int8_bytes"]

`prune_model` is the prune stage alone (every method, one entry point), which `run` reuses.
The budget search is its own job (`tinyprune.budget.search.prune_for_budget`): it prunes,
converts and measures in a loop. Every job writes the folder layout of
`tinyprune.pipeline.outputs`. This module wires stages; the methods live in `tinyprune.prune`.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from tinyprune.load.data import Dataset

from tinyprune.pipeline.settings import (AtInitSettings, MagnitudeSettings, Settings, StructuredSettings,
                                         TrainSettings)

INITIALIZATION_NOTE = "the model's weights as given (not re-initialized)"
SPARSITY_ONLY_NOTE = ("tfmot masks weights: the int8 .tflite of a sparse model has the dense size; TFLM has no "
                      "sparse kernels, so sparsity saves flash only when the weights are stored compressed "
                      "(--compress prune: TFLM's DECODE rebuilds them in the arena)")
MODE_NOTE = ("model pruning: strip_pruning made the zeros permanent in model.h5 (no tfmot wrappers); "
             "the masks were ephemeral (wrappers) only during fine-tuning")
PQAT_LUT_NOTE = ("--pqat applies to model_int8.tflite; the clustered (LUT) model is clustered from the pruned "
                 "float model and converted post-training")


@dataclass
class Pruned:
    """What the prune stage hands on: the pruned model and what to report about it."""

    model: Any  # tf_keras model, zeros permanent / channels removed, no tfmot wrappers
    report: dict
    details: Any = None  # the method's own result (StructuredResult, MagnitudeResult, InitPruneResult, ...)
    qat_model: Any = None  # magnitude + PQAT: the quantization-aware model to convert instead


@dataclass
class PruneJobResult:
    """What `prune_job` did: report.json's content, the files written, the pruned model."""

    report: dict
    outputs: Any  # tinyprune.pipeline.outputs.PruneOutputs
    pruned: Pruned
    flash_rows: list = field(default_factory=list)  # magnitude: tinyprune.pipeline.compress_stage.FlashRow


def check_job(settings: Settings, has_data: bool, train: TrainSettings) -> None:
    """Every check that needs no model, so bad options fail before TensorFlow starts."""
    train.check()
    settings.check(has_data, train)


def prune_model(settings: Settings, model, ds: Dataset | None, train: TrainSettings, quiet: bool = False,
                console: Console | None = None, dense_score: float | None = None) -> Pruned:
    """Prune `model` with `settings` (any method but the budget search). `ds` may be None for
    structured pruning and data-free pruning at init. `dense_score`: the unpruned model's
    validation score when the caller has measured it already (it is not measured again).
    Raises ConfigError / DataError (check_job) for settings that cannot work."""
    check_job(settings, ds is not None, train)
    if isinstance(settings, StructuredSettings):
        return _structured(settings, model, ds, train, quiet, console or Console(stderr=True, quiet=quiet))
    if isinstance(settings, MagnitudeSettings):
        return _magnitude(settings, model, ds, train, quiet, dense_score)
    if isinstance(settings, AtInitSettings):
        return _imp(settings, model, ds, train, quiet) if settings.spec.kind == "imp" \
            else _at_init(settings, model, ds, train, quiet)
    raise TypeError(f"not a prune settings object: {type(settings).__name__}")


def _structured(s: StructuredSettings, model, ds, train: TrainSettings, quiet: bool, console: Console) -> Pruned:
    from tinyprune.prune.structured import prune_structured
    from tinyprune.training import compile_for, evaluate
    from tinyprune.training import train as fit

    with console.status("building the dependency graph and pruning"):
        result = prune_structured(model, s.ratio, layer_ratios=s.layer_ratios, importance=s.importance,
                                  reduction=s.reduction, global_ranking=s.global_ranking, ignore=tuple(s.ignore),
                                  round_to=s.round_to, steps=s.steps, data=ds)
    pruned = result.model
    report: dict = {"method": "structured", "ratio": s.ratio, "layer_ratios": s.layer_ratios,
                    "reduction": s.reduction, "global_ranking": bool(s.global_ranking), "round_to": s.round_to,
                    "steps": s.steps, "ignore": list(s.ignore), **result.to_dict()}
    if ds is not None:
        report["score_before"] = evaluate(model, ds)
        report["score_after_pruning"] = evaluate(pruned, ds)
        if train.epochs > 0:
            compile_for(pruned, ds)
            run = fit(pruned, ds, train.epochs, train.batch_size, description="fine-tuning", quiet=quiet)
            report["fine_tune_epochs"] = run.epochs_run
            report["score_after_fine_tuning"] = evaluate(pruned, ds)
    else:
        report["int8"] = "skipped: give --data to calibrate the int8 conversion"
    return Pruned(pruned, report, result)


def _at_init(s: AtInitSettings, model, ds, train: TrainSettings, quiet: bool) -> Pruned:
    from tinyprune.prune.at_init import masks as masklib
    from tinyprune.prune.at_init.pruner import prune_at_init, scoring_batch
    from tinyprune.prune.at_init.scores import needs_data

    rounds = s.resolved_rounds
    x = y = None
    if ds is not None and needs_data(s.spec.score):
        x, y = scoring_batch(ds.x_train, ds.y_train)
    res = prune_at_init(model, s.spec.score, float(s.compression), rounds, x, y, s.allow_collapse, quiet=quiet)
    report = _at_init_report(s, rounds)
    report.update(score=s.spec.score, schedule="exponential" if rounds > 1 else "single-shot",
                  history=[vars(h) for h in res.history])
    if ds is not None and train.epochs > 0:
        report["val_score"] = masklib.train_masked(model, ds, res.masks, train.epochs, train.batch_size,
                                                   f"training {s.method} network", quiet)
    report["trained_epochs"] = train.epochs if ds is not None else 0
    return _masked(model, res, report)


def _imp(s: AtInitSettings, model, ds, train: TrainSettings, quiet: bool) -> Pruned:
    from tinyprune.prune.at_init.lottery import lottery_ticket, prune_fraction_per_round

    rounds = s.resolved_rounds
    res = lottery_ticket(model, ds, float(s.compression), rounds, train.epochs, s.rewind_epoch, train.batch_size,
                         s.allow_collapse, quiet=quiet)
    report = _at_init_report(s, rounds)
    report.update(rewind_epoch=res.rewind_epoch,
                  prune_fraction_per_round=prune_fraction_per_round(float(s.compression), rounds),
                  epochs_per_round=train.epochs, val_score=res.final_score, history=[vars(h) for h in res.history])
    return _masked(model, res, report)


def _at_init_report(s: AtInitSettings, rounds: int) -> dict:
    return {"method": s.method, "compression": float(s.compression), "rounds": rounds,
            "initialization": INITIALIZATION_NOTE, "masks": "permanent: pruned weights are exact zeros in model.h5"}


def _masked(model, res, report: dict) -> Pruned:
    from tinyprune.prune.at_init import masks as masklib

    masklib.apply_masks(model, res.masks)
    layers = masklib.kept_per_layer(res.masks)
    report.update(kept_fraction=res.kept_fraction, collapsed_layers=res.collapsed,
                  layers=[{"layer": r.layer, "weights": r.weights, "kept": r.kept, "kept_fraction": r.fraction}
                          for r in layers])
    return Pruned(model, report, layers)


def _magnitude(s: MagnitudeSettings, model, ds, train: TrainSettings, quiet: bool,
               dense_score: float | None = None) -> Pruned:
    from tinyprune import training
    from tinyprune.prune.magnitude import plan_layers, prune_magnitude

    options = s.prune_options()
    plan_layers(model, options)  # unknown / unprunable layer names fail before any training
    dense_accuracy = None
    if ds.is_classification:
        dense_accuracy = training.evaluate(model, ds) if dense_score is None else dense_score
    result = prune_magnitude(model, ds, epochs=train.epochs, batch_size=train.batch_size, quiet=quiet,
                             options=options)
    report: dict[str, Any] = {
        "method": "magnitude", "pruning_mode": result.mode, "pruning_mode_note": MODE_NOTE,
        "data": ds.name, "epochs": train.epochs, "batch_size": train.batch_size,
        "schedule": result.schedule.to_dict() if result.schedule else None,
        "layers": [{**asdict(p), "sparsity_after_strip": round(result.sparsity.get(p.name, 0.0), 4)}
                   for p in result.plans],
        "overall_sparsity": round(result.overall_sparsity(), 4),
        "not_prunable_by_tfmot": result.unprunable,
        "accuracy_dense_keras": dense_accuracy, "accuracy_pruned_keras": result.accuracy,
        "accuracy_pqat_keras": result.qat_accuracy, "notes": [SPARSITY_ONLY_NOTE],
    }
    if s.compress not in ("none", "prune") and s.pqat:
        report["notes"].append(PQAT_LUT_NOTE)
    return Pruned(result.model, report, result, result.qat_model)


def prune_job(model_path: str | Path, data: str | None, out_dir: str | Path, settings: Settings,
              train: TrainSettings = TrainSettings(), *, unsafe_load: bool = False, force: bool = False,
              quiet: bool = False, console: Console | None = None) -> PruneJobResult:
    """Load MODEL (and data), prune with `settings`, convert to int8, measure, write OUT/.

    OUT/ gets the layout of `tinyprune.pipeline.outputs` (model.h5, model_int8.tflite when
    there is calibration data, report.json, plus the compressed .tflite files of
    `--compress`). Raises the library's typed errors for bad input; nothing is written then.
    """
    from firmware_export.files import check_writable

    check_job(settings, data is not None, train)
    inputs = (model_path,) + ((data,) if data and data != "digits" else ())
    check_writable(Path(out_dir), force, inputs)
    console = console or Console(stderr=True, quiet=quiet)
    warnings.filterwarnings("ignore", category=UserWarning)  # TF/Keras chatter (HDF5 legacy, converter stats)

    from tinyprune import training
    from tinyprune.load.data import load_data
    from tinyprune.load.model import load_model
    from tinyprune.pipeline.outputs import write_prune_outputs

    model = load_model(model_path, unsafe=unsafe_load)
    ds = load_data(data).fit_to(model.input_shape) if data else None
    with training.reproducible(train.seed) as seeded:  # pruning, fine-tuning and the int8 conversion
        pruned = prune_model(settings, model, ds, train, quiet=quiet, console=console)
        report = {"model": str(model_path), **pruned.report, "seed": seeded.to_dict(), "output": str(Path(out_dir))}
        rows: list = []
        if isinstance(settings, MagnitudeSettings):
            from tinyprune.pipeline.compress_stage import magnitude_artifacts

            report, rows, extra = magnitude_artifacts(settings, pruned, ds, train, report, quiet)
            outputs = write_prune_outputs(out_dir, pruned.model, report, force=force, extra_files=extra,
                                          inputs=inputs)
        else:
            outputs = write_prune_outputs(out_dir, pruned.model, report,
                                          x_calib=ds.x_train if ds is not None else None, force=force, inputs=inputs)
    return PruneJobResult(outputs.report, outputs, pruned, rows)  # --json prints what report.json holds
