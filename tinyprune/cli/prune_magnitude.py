"""`tinyprune prune magnitude MODEL`: tfmot schedules, then (optionally) compression TFLM decodes.

A thin wrapper over `tinyprune.pipeline.prune_job.prune_job` with `MagnitudeSettings`: it
parses the options, runs the job, prints the per-layer sparsity and the flash table (dense
int8 bytes next to what each file really costs), or the report as JSON with --json.
Options are checked before TensorFlow is imported, so bad input fails in well under a second.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click
from firmware_export.terminal import escape

from tinyprune.cli import options
from tinyprune.pipeline.settings import MagnitudeSettings

DEFAULTS = MagnitudeSettings()

if TYPE_CHECKING:
    from tinyprune.pipeline.compress_stage import FlashRow


@click.command("magnitude")
@options.common()
@click.option("--schedule", type=click.Choice(["polynomial", "constant"]), default=DEFAULTS.schedule,
              show_default=True, help="tfmot pruning schedule.")
@click.option("--sparsity", "final_sparsity", type=float, default=DEFAULTS.final_sparsity, show_default=True,
              help="Final (target) sparsity in [0, 1).")
@click.option("--initial-sparsity", type=float, default=DEFAULTS.initial_sparsity, show_default=True,
              help="PolynomialDecay start.")
@click.option("--begin-step", type=int, default=DEFAULTS.begin_step, show_default=True, help="First pruning step.")
@click.option("--end-step", type=int, default=DEFAULTS.end_step, show_default=True,
              help="Last pruning step (-1: end of training).")
@click.option("--frequency", type=int, default=DEFAULTS.frequency, help="Steps between mask updates (default: auto).")
@click.option("--power", type=float, default=DEFAULTS.power, show_default=True, help="PolynomialDecay exponent.")
@click.option("--layer-sparsity", multiple=True, help="Per-layer target, NAME=S (repeatable).")
@click.option("--sparsity-config", default=None, help="TOML file mapping layer names to sparsity.")
@click.option("--m-by-n", default=None, help="Structured M:N sparsity, e.g. 2:4.")
@click.option("--block-size", default=None, help="Block sparsity for Dense, e.g. 1x4.")
@click.option("--pqat", is_flag=True, help="Pruning-preserving quantization-aware training.")
@click.option("--tensorboard", default=None, help="Write tfmot PruningSummaries to this folder.")
@click.option("--compress", type=click.Choice(["none", "prune", "lut", "auto"]), default="none", show_default=True,
              help="Compression TFLM decodes (experimental on Cortex-M): prune = bitmask + non-zero values "
                   "(lossless), lut = cluster to 2^bits values per channel + LUT, auto = cluster, then the "
                   "smaller of the two per tensor.")
@options.lut_bits()
@options.seed()
def magnitude(model: str, data: str | None, epochs: int, batch_size: int, output: str, force: bool, as_json: bool,
              unsafe_load: bool, quiet: bool, seed: int | None, **method_options) -> None:
    """Magnitude-prune MODEL with a tfmot schedule while fine-tuning; write OUT/."""
    from rich.console import Console

    from tinyprune.pipeline.prune_job import prune_job
    from tinyprune.pipeline.settings import TrainSettings

    method_options["layer_sparsity"] = tuple(method_options["layer_sparsity"])
    settings = MagnitudeSettings(**method_options)
    console = Console(stderr=as_json)  # --quiet only hides progress bars
    result = prune_job(model, data, output, settings, TrainSettings(epochs, batch_size, seed), unsafe_load=unsafe_load,
                       force=force, quiet=quiet or as_json)
    if as_json:
        click.echo(json.dumps(result.report, indent=2, default=str))
    else:
        print_report(console, result.report, result.flash_rows, Path(result.report["output"]))


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.2%}"


def print_report(console, report: dict, rows: list["FlashRow"], folder: Path) -> None:
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
        layers.add_row(escape(row["name"]), escape(row["kind"]), row["pattern"], f"{row['target']:.1%}",
                       f"{row['sparsity_after_strip']:.1%}")
    console.print(layers)
    for name, kind in report["not_prunable_by_tfmot"].items():
        console.print(f"[yellow]not pruned:[/] {escape(name)} ({escape(kind)}): tfmot cannot prune this layer type")
    flash = Table(title="flash (bytes the device stores; int8 B = same weights as plain int8) and arena (32-bit)")
    for col in ("artifact", "file", "int8 B", "flash B", "flash %", "arena B", "acc TFLM"):
        flash.add_column(col, justify="left" if col in ("artifact", "file") else "right")
    for r in rows:
        flash.add_row(r.artifact, r.file, f"{r.dense_int8_bytes:,}", f"{r.model_bytes:,}",
                      f"{r.flash_fraction:.1%}", f"{r.arena_target_bytes:,}", _pct(r.accuracy_tflm))
    console.print(flash, soft_wrap=False)
    console.print(f"accuracy: dense Keras {_pct(report['accuracy_dense_keras'])}, pruned Keras "
                  f"{_pct(report['accuracy_pruned_keras'])}"
                  + (f", PQAT Keras {_pct(report['accuracy_pqat_keras'])}" if report["accuracy_pqat_keras"] else "")
                  + f", pruned int8 in TFLM {_pct(report['accuracy_int8_tflm'])}")
    for note in report["notes"] + [report["pruning_mode_note"]]:
        console.print(f"[dim]note:[/] {escape(note)}")
    comp = report.get("compression")
    if comp and "skipped" in comp:
        console.print(f"[bold yellow]compression skipped:[/] {escape(comp['skipped'])}")
    elif comp:
        extra = comp["extra_arena_target_bytes"]
        formats = " + ".join(f.upper() for f in comp["formats_used"])
        console.print(f"{formats}: {comp['dense_int8_bytes']:,} B -> {comp['compressed_bytes']:,} B "
                      f"(saves {comp['saved_bytes']:,} B); the decoded tensors need {extra:,} B more arena")
        for t in comp["tensors"]:
            how = t["method"].upper() if t["method"] else f"plain int8 ({t['reason']})"
            console.print(f"  {escape(t['name'])}: {t['sparsity']:.0%} zeros, {t['dense_bytes']:,} B -> "
                          f"{t['encoded_bytes']:,} B {how}")
        console.print(f"outputs identical to {escape(comp['compressed_from'])} in TFLM: "
                      f"{comp['outputs_identical_to_uncompressed']}")
        console.print(f"[bold yellow]warning:[/] {comp['experimental']}")
    console.print(f"wrote {escape(str(folder))}/")
