"""`tinyprune prune structured MODEL --ratio R`: filter removal, optional fine-tuning, outputs.

A thin wrapper over `tinyprune.pipeline.prune_job.prune_job` with `StructuredSettings`: it
parses the options, runs the job (prune, fine-tune for --epochs when --data is given, int8
conversion when --data gives calibration samples, write OUT/), and prints a per-layer
before/after table, or the report as JSON with --json. It decides nothing itself.
"""

from __future__ import annotations

import json

import click
from rich.console import Console
from firmware_export.terminal import escape
from rich.table import Table

from tinyprune.cli import options
from tinyprune.prune import REDUCTIONS


def _table(result) -> Table:
    t = Table(title=f"structured pruning ({escape(result.importance)})")
    for col in ("layer", "type", "channels before", "after", "params before", "after"):
        t.add_column(col, justify="left" if col in ("layer", "type") else "right")
    for r in result.rows:
        ch = "-" if r.channels_before is None else str(r.channels_before)
        ch2 = "-" if r.channels_after is None else str(r.channels_after)
        style = "bold" if r.channels_after != r.channels_before else None
        t.add_row(escape(r.layer), escape(r.type), ch, ch2, f"{r.params_before:,}", f"{r.params_after:,}", style=style)
    t.add_row("total", "", "", "", f"{result.params_before:,}", f"{result.params_after:,}", end_section=True)
    return t


@click.command("structured")
@options.common()
@click.option("--ratio", type=float, default=None, help="Fraction of channels to remove, in [0, 1).")
@click.option("--layer-ratio", multiple=True, help="Per-layer ratio, NAME=R (repeatable).")
@options.channel_selection()
@click.option("--reduction", type=click.Choice(REDUCTIONS), default="mean", show_default=True,
              help="How importance is reduced over a coupled group.")
@click.option("--global-ranking", is_flag=True, help="Rank channels across layers, not per layer.")
@click.option("--steps", type=click.IntRange(1, 100), default=1, show_default=True, help="Iterative pruning steps.")
@options.seed()
def structured(model: str, data: str | None, epochs: int, batch_size: int, output: str, force: bool, as_json: bool,
               unsafe_load: bool, quiet: bool, ratio: float | None, layer_ratio: tuple[str, ...], importance: str,
               round_to: int, ignore: tuple[str, ...], reduction: str, global_ranking: bool, steps: int,
               seed: int | None) -> None:
    """Remove filters from MODEL (a physically smaller network); write OUT/."""
    from tinyprune.pipeline.prune_job import prune_job
    from tinyprune.pipeline.settings import StructuredSettings, TrainSettings, parse_layer_ratios

    settings = StructuredSettings(ratio=ratio, layer_ratios=parse_layer_ratios(layer_ratio), importance=importance,
                                  reduction=reduction, global_ranking=global_ranking, ignore=tuple(ignore),
                                  round_to=round_to, steps=steps)
    job = prune_job(model, data, output, settings, TrainSettings(epochs, batch_size, seed), unsafe_load=unsafe_load,
                    force=force, quiet=quiet or as_json)
    report, result, outs = job.report, job.pruned.details, job.outputs
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    out = Console()
    out.print(_table(result))
    for note in result.notes:
        out.print(f"note: {escape(note)}")
    for key in ("score_before", "score_after_pruning", "score_after_fine_tuning"):
        if key in report:
            out.print(f"{key.replace('_', ' ')}: {report[key]:.4f}")
    if outs.tflite_bytes:
        out.print(f"int8 .tflite: {outs.tflite_bytes:,} bytes, "
                  f"TFLM arena (32-bit target): {outs.arena_target_bytes:,} bytes")
    out.print(f"wrote {escape(str(outs.folder))}/ (model.h5, report.json"
              f"{', model_int8.tflite' if outs.tflite_bytes else ''})")
