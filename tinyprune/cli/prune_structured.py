"""`tinyprune prune MODEL --method structured`: filter removal, optional fine-tuning, outputs.

A thin wrapper over `tinyprune.prune.structured.prune_structured`: it parses the options declared
in `tinyprune/cli/prune.py`, loads the model (and data, when given), prunes, fine-tunes for
`--epochs` when `--data` is given, writes OUT/ with `tinyprune.pipeline.outputs.write_prune_outputs`
(the int8 .tflite needs `--data` for calibration), and prints a per-layer before/after
table, or the report as JSON with `--json`. It decides nothing itself.
"""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from tinyprune.errors import ConfigError


def parse_layer_ratios(items) -> dict[str, float]:
    """{'conv1': 0.5} from ('conv1=0.5', ...); one clear error for a malformed item."""
    out: dict[str, float] = {}
    for item in items or ():
        name, sep, value = str(item).partition("=")
        try:
            if not sep or not name:
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--layer-ratio {item!r}: expected NAME=R, e.g. conv2d=0.5") from None
    return out


def _table(result, report: dict) -> Table:
    t = Table(title=f"structured pruning ({result.importance})")
    for col in ("layer", "type", "channels before", "after", "params before", "after"):
        t.add_column(col, justify="left" if col in ("layer", "type") else "right")
    for r in result.rows:
        ch = "-" if r.channels_before is None else str(r.channels_before)
        ch2 = "-" if r.channels_after is None else str(r.channels_after)
        style = "bold" if r.channels_after != r.channels_before else None
        t.add_row(r.layer, r.type, ch, ch2, f"{r.params_before:,}", f"{r.params_after:,}", style=style)
    t.add_row("total", "", "", "", f"{result.params_before:,}", f"{result.params_after:,}", end_section=True)
    return t


def handle(opts: dict) -> None:
    from firmware_export.files import check_writable

    ratio = opts.get("ratio")
    layer_ratios = parse_layer_ratios(opts.get("layer_ratio"))
    if ratio is None and not layer_ratios:
        raise ConfigError("--method structured needs --ratio R (fraction of channels to remove, in [0, 1)) "
                          "or --layer-ratio NAME=R")
    if ratio is not None and not 0.0 <= ratio < 1.0:
        raise ConfigError(f"--ratio must be in [0, 1) (the fraction of channels to remove), got {ratio}")
    check_writable(opts["output"], opts.get("force", False))

    from tinyprune.load.data import load_data
    from tinyprune.load.model import load_model
    from tinyprune.pipeline.outputs import write_prune_outputs
    from tinyprune.prune.structured import prune_structured
    from tinyprune.training import compile_for, evaluate, train

    quiet = opts.get("quiet") or opts.get("as_json")
    console = Console(stderr=True, quiet=quiet)
    model = load_model(opts["model"], unsafe=opts.get("unsafe_load", False))
    ds = load_data(opts["data"]).fit_to(model.input_shape) if opts.get("data") else None
    with console.status("building the dependency graph and pruning"):
        result = prune_structured(
            model, ratio, layer_ratios=layer_ratios, importance=opts.get("importance", "l1"),
            reduction=opts.get("reduction", "mean"), global_ranking=opts.get("global_ranking", False),
            ignore=tuple(opts.get("ignore") or ()), round_to=opts.get("round_to", 1), steps=opts.get("steps", 1),
            data=ds)
    pruned = result.model
    report: dict = {"method": "structured", "model": str(opts["model"]), "ratio": ratio,
                    "layer_ratios": layer_ratios, "reduction": opts.get("reduction", "mean"),
                    "global_ranking": bool(opts.get("global_ranking")), "round_to": opts.get("round_to", 1),
                    "steps": opts.get("steps", 1), "ignore": list(opts.get("ignore") or ()), **result.to_dict()}
    if ds is not None:
        report["score_before"] = evaluate(model, ds)
        report["score_after_pruning"] = evaluate(pruned, ds)
        epochs = int(opts.get("epochs") or 0)
        if epochs > 0:
            compile_for(pruned, ds)
            run = train(pruned, ds, epochs, opts.get("batch_size", 32), description="fine-tuning", quiet=quiet)
            report["fine_tune_epochs"] = run.epochs_run
            report["score_after_fine_tuning"] = evaluate(pruned, ds)
    else:
        report["int8"] = "skipped: give --data to calibrate the int8 conversion"
    outs = write_prune_outputs(opts["output"], pruned, report, x_calib=ds.x_train if ds is not None else None,
                               force=opts.get("force", False))
    report.update({"output": str(outs.folder), "int8_bytes": outs.tflite_bytes, "arena_bytes_target32": outs.arena_bytes})
    if opts.get("as_json"):
        print(json.dumps(report, indent=2, default=str))
        return
    out = Console()
    out.print(_table(result, report))
    for note in result.notes:
        out.print(f"note: {note}")
    for key in ("score_before", "score_after_pruning", "score_after_fine_tuning"):
        if key in report:
            out.print(f"{key.replace('_', ' ')}: {report[key]:.4f}")
    if outs.tflite_bytes:
        out.print(f"int8 .tflite: {outs.tflite_bytes:,} bytes, TFLM arena (32-bit target): {outs.arena_bytes:,} bytes")
    out.print(f"wrote {outs.folder}/ (model.h5, report.json{', model_int8.tflite' if outs.tflite_bytes else ''})")
