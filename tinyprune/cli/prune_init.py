"""`tinyprune prune synflow|snip|grasp|magnitude-init|random-init|imp MODEL --compression RHO`.

Pruning before training. A thin wrapper over `tinyprune.pipeline.prune_job.prune_job` with
`AtInitSettings`. The MODEL file is the architecture AND the initialization: its current
weights are pruned as they are (no re-initialization); to prune a fresh network, save it
untrained. With --data and --epochs > 0 the pruned network is then trained with its masks
held. IMP always trains (it needs --data). Options are validated before TensorFlow is
imported, so bad input fails fast (exit 2).
"""

from __future__ import annotations

import json

import click
from firmware_export.terminal import escape

from tinyprune.cli import options
from tinyprune.prune.methods import METHODS


def _command(name: str) -> click.Command:
    spec = METHODS[name]
    imp = spec.kind == "imp"

    @click.command(name, help=f"{spec.summary[0].upper()}{spec.summary[1:]}; write OUT/.")
    @options.common()
    @click.option("--compression", type=float, default=None, help="Compression ratio rho >= 1 (kept = 1/rho).")
    @click.option("--rounds", type=int, default=None, help=f"Pruning rounds (default {spec.default_rounds}).")
    @click.option("--allow-collapse", is_flag=True, help="Continue when a layer loses every weight.")
    @click.option("--rewind-epoch", type=int, default=0, show_default=True, hidden=not imp,
                  help="Rewind to this epoch's weights.")
    @options.seed()
    def command(model: str, data: str | None, epochs: int, batch_size: int, output: str, force: bool,
                as_json: bool, unsafe_load: bool, quiet: bool, compression: float | None, rounds: int | None,
                allow_collapse: bool, rewind_epoch: int, seed: int | None) -> None:
        from tinyprune.pipeline.prune_job import prune_job
        from tinyprune.pipeline.settings import AtInitSettings, TrainSettings

        settings = AtInitSettings(name, compression, rounds, allow_collapse, rewind_epoch)
        job = prune_job(model, data, output, settings, TrainSettings(epochs, batch_size, seed), unsafe_load=unsafe_load,
                        force=force, quiet=quiet or as_json)
        if as_json:
            click.echo(json.dumps(job.report, indent=2, default=float))
        else:
            _print_table(job.report, job.pruned.details, job.outputs)

    return command


command_synflow = _command("synflow")
command_snip = _command("snip")
command_grasp = _command("grasp")
command_magnitude_init = _command("magnitude-init")
command_random_init = _command("random-init")
command_imp = _command("imp")


def _print_table(report: dict, layers, out) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for col in ("layer", "weights", "kept", "kept %"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    for r in layers:
        table.add_row(escape(r.layer), str(r.weights), str(r.kept), f"{100 * r.fraction:.2f}")
    table.add_row("[bold]total", str(sum(r.weights for r in layers)), str(sum(r.kept for r in layers)),
                  f"{100 * report['kept_fraction']:.2f}")
    console = Console()
    console.print(f"[bold]{report['method']}[/] at compression {report['compression']:.4g} "
                  f"({report['rounds']} round{'s' if report['rounds'] != 1 else ''}): kept fraction per layer")
    console.print(table)
    if report.get("collapsed_layers"):
        console.print(f"[red]collapsed (allowed): {escape(', '.join(report['collapsed_layers']))}")
    if report.get("val_score") is not None:
        console.print(f"validation score: {report['val_score']:.4f}")
    console.print(f"initialization: {report['initialization']}")
    console.print(f"wrote {escape(str(out.folder))}/ (model.h5{', model_int8.tflite' if out.tflite_path else ''}, "
                  "report.json)")
