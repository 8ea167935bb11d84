"""`tinyprune prune --method synflow|snip|grasp|magnitude-init|random-init|imp`: pruning before training.

Thin wrapper over `tinyprune.prune.at_init.pruner.prune_at_init` and `tinyprune.prune.at_init.lottery.lottery_ticket`.
The MODEL file is the architecture AND the initialization: its current weights are pruned as
they are (no re-initialization). To prune a fresh network, save it untrained. With --data and
--epochs > 0, the pruned network is then trained from those weights with its masks held.
IMP always trains (it needs --data). The output folder holds the pruned model with its zeros
permanent, its int8 .tflite (when --data gives calibration samples) and report.json.

Options are validated before TensorFlow is imported, so bad input fails fast (exit 2).
"""

from __future__ import annotations

import json

import click

from tinyprune.errors import ConfigError, DataError

# CLI method -> score name in tinyprune.prune.at_init.scores.SCORES ("imp" is handled by tinyprune.prune.at_init.lottery)
SCORE_OF = {"synflow": "synflow", "snip": "snip", "grasp": "grasp", "magnitude-init": "magnitude",
            "random-init": "random"}
NEEDS_DATA = {"snip", "grasp", "imp"}  # kept in step with tinyprune.prune.at_init.scores.NEEDS_DATA (+ imp trains)
DEFAULT_ROUNDS = {"synflow": 100, "imp": 5}  # Tanaka et al. 2020 (SynFlow); IMP: lottery.IMP_ROUNDS
INITIALIZATION_NOTE = "the model's weights as given (not re-initialized)"


def validate(opts: dict) -> int:
    """Check options without importing TensorFlow; return the number of rounds."""
    method, rho = opts["method"], opts.get("compression")
    if rho is None:
        raise ConfigError(f"--method {method} needs --compression RHO (>= 1; kept fraction 1/RHO), e.g. --compression 10")
    if not rho >= 1.0 or rho == float("inf"):
        raise ConfigError(f"--compression must be >= 1 (kept fraction = 1/compression), got {rho}")
    rounds = opts.get("rounds")
    rounds = DEFAULT_ROUNDS.get(method, 1) if rounds is None else rounds
    if rounds < 1:
        raise ConfigError(f"--rounds must be at least 1, got {rounds}")
    if method in NEEDS_DATA and not opts.get("data"):
        what = "trains the network every round" if method == "imp" else "scores weights with a batch of training data"
        raise DataError(f"--method {method} {what}; give --data (digits or a .npz)")
    epochs = opts.get("epochs", 0)
    if epochs < 0:
        raise ConfigError(f"--epochs must be >= 0, got {epochs}")
    if method == "imp":
        if epochs < 1:
            raise ConfigError(f"--method imp trains every round; --epochs must be >= 1, got {epochs}")
        re = opts.get("rewind_epoch", 0) or 0
        if re < 0 or re > epochs:
            raise ConfigError(f"--rewind-epoch must be in 0..{epochs} (the epochs of one round), got {re}")
    if opts.get("batch_size", 32) < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {opts.get('batch_size')}")
    return int(rounds)


def handle(opts: dict) -> None:
    rounds = validate(opts)
    from firmware_export.files import check_writable

    check_writable(opts["output"], opts.get("force", False))

    from tinyprune.prune.at_init import masks as masklib
    from tinyprune.load.data import load_data
    from tinyprune.load.model import load_model
    from tinyprune.pipeline.outputs import write_prune_outputs

    method, rho = opts["method"], float(opts["compression"])
    quiet = bool(opts.get("quiet") or opts.get("as_json"))
    model = load_model(opts["model"], unsafe=opts.get("unsafe_load", False))
    ds = load_data(opts["data"]).fit_to(model.input_shape) if opts.get("data") else None
    epochs, batch = int(opts.get("epochs", 0)), int(opts.get("batch_size", 32))
    report: dict = {"method": method, "compression": rho, "rounds": rounds, "initialization": INITIALIZATION_NOTE,
                    "masks": "permanent: pruned weights are exact zeros in model.h5"}
    if method == "imp":
        from tinyprune.prune.at_init.lottery import lottery_ticket, prune_fraction_per_round

        res = lottery_ticket(model, ds, rho, rounds, epochs, int(opts.get("rewind_epoch") or 0), batch,
                             bool(opts.get("allow_collapse")), quiet=quiet)
        report.update(rewind_epoch=res.rewind_epoch, prune_fraction_per_round=prune_fraction_per_round(rho, rounds),
                      epochs_per_round=epochs, val_score=res.final_score,
                      history=[vars(h) for h in res.history])
    else:
        from tinyprune.prune.at_init.pruner import prune_at_init, scoring_batch
        from tinyprune.prune.at_init.scores import needs_data

        score = SCORE_OF[method]
        x = y = None
        if ds is not None and needs_data(score):
            x, y = scoring_batch(ds.x_train, ds.y_train)
        res = prune_at_init(model, score, rho, rounds, x, y, bool(opts.get("allow_collapse")), quiet=quiet)
        report.update(score=score, schedule="exponential" if rounds > 1 else "single-shot",
                      history=[vars(h) for h in res.history])
        if ds is not None and epochs > 0:
            report["val_score"] = masklib.train_masked(model, ds, res.masks, epochs, batch,
                                                       f"training {method} network", quiet)
        report["trained_epochs"] = epochs if ds is not None else 0
    masklib.apply_masks(model, res.masks)
    layers = masklib.kept_per_layer(res.masks)
    report.update(kept_fraction=res.kept_fraction, collapsed_layers=res.collapsed,
                  layers=[{"layer": r.layer, "weights": r.weights, "kept": r.kept, "kept_fraction": r.fraction}
                          for r in layers])
    out = write_prune_outputs(opts["output"], model, report, x_calib=ds.x_train if ds is not None else None,
                              force=opts.get("force", False))
    if opts.get("as_json"):
        click.echo(json.dumps({**report, "output": str(out.folder), "int8_bytes": out.tflite_bytes,
                               "arena_bytes_target32": out.arena_bytes}, indent=2, default=float))
        return
    _print_table(report, layers, out)


def _print_table(report: dict, layers, out) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for col in ("layer", "weights", "kept", "kept %"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    for r in layers:
        table.add_row(r.layer, str(r.weights), str(r.kept), f"{100 * r.fraction:.2f}")
    table.add_row("[bold]total", str(sum(r.weights for r in layers)), str(sum(r.kept for r in layers)),
                  f"{100 * report['kept_fraction']:.2f}")
    console = Console()
    console.print(f"[bold]{report['method']}[/] at compression {report['compression']:.4g} "
                  f"({report['rounds']} round{'s' if report['rounds'] != 1 else ''}): kept fraction per layer")
    console.print(table)
    if report.get("collapsed_layers"):
        console.print(f"[red]collapsed (allowed): {', '.join(report['collapsed_layers'])}")
    if report.get("val_score") is not None:
        console.print(f"validation score: {report['val_score']:.4f}")
    console.print(f"initialization: {report['initialization']}")
    console.print(f"wrote {out.folder}/ (model.h5{', model_int8.tflite' if out.tflite_path else ''}, report.json)")
