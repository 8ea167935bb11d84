"""`tinyprune prune budget MODEL --flash-budget 25% [--ram-budget ...] [--board B] --data D -o OUT`.

A thin wrapper over `tinyprune.budget.search.prune_for_budget`: it parses the budget once
(`Budget.parse`, before TensorFlow starts), loads the model (a hostile or broken file is refused
before TensorFlow too) and data, runs the search with the parsed budget, prints the result (or
JSON with --json). The older spelling `tinyprune prune MODEL --flash-budget ...` routes here.
"""

from __future__ import annotations

import json

import click

from tinyprune.budget.limits import ALLOCATIONS, IMPORTANCES
from tinyprune.cli import options
from tinyprune.training.limits import (DEFAULT_LR_SCHEDULE, DEFAULT_MIXUP, DEFAULT_TEMPERATURE, DEFAULT_WEIGHT,
                                      LR_SCHEDULES, MAX_MIXUP)


@click.command("budget")
@options.common()
@click.option("--flash-budget", default=None, help="Flash for the model: 96KB, 0.5MB, 50%, 12000.")
@click.option("--ram-budget", default=None, help="RAM (arena + overhead): 64KB, 50%.")
@click.option("--latency-budget", default=None,
              help="Estimated latency on --board: ms, s, us, or % of the original's (e.g. 20ms, 50%).")
@click.option("--board", default=None, help="Fit this board (its flash and SRAM less the runtime).")
@click.option("--boards-file", default=None, help="Extra board profiles (TOML).")
@click.option("--margin", type=float, default=0.0, show_default=True,
              help="Safety margin as a fraction of the budget, in [0, 1).")
@click.option("--allow-compress", is_flag=True,
              help="Allow TFLM-decoded compression (PRUNE, LUT) per layer where it costs less accuracy than removal.")
@options.lut_bits()
@click.option("--importance", type=click.Choice(IMPORTANCES), default="auto",
              show_default=True, help="Channel importance (auto: the best of l1, bn, taylor on validation).")
@click.option("--allocation", type=click.Choice(ALLOCATIONS), default="auto", show_default=True,
              help="Channel counts: sensitivity (greedy), uniform (one ratio), auto (both and a blend, "
                   "each scored after a short fine-tune).")
@click.option("--round-to", type=click.IntRange(1, 4096), default=1, show_default=True,
              help="Keep channel counts multiples of N.")
@click.option("--ignore", multiple=True, help="Layer to leave untouched (repeatable).")
@options.seed()
@click.option("--distill", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True,
              help="Fine-tune from the unpruned model as teacher (auto: with and without, keep the better).")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_TEMPERATURE,
              show_default=True, help="Distillation temperature.")
@click.option("--distill-weight", type=click.FloatRange(0, 1), default=DEFAULT_WEIGHT, show_default=True,
              help="The teacher's share of the loss (the labels' is 1 - it).")
@click.option("--mixup", type=click.IntRange(0, MAX_MIXUP), default=DEFAULT_MIXUP, show_default=True,
              help="Distil also on N teacher-labelled mixes of two training inputs per input (function matching).")
@click.option("--lr-schedule", type=click.Choice(LR_SCHEDULES), default=DEFAULT_LR_SCHEDULE, show_default=True,
              help="Fine-tuning learning rate: constant (Adam's default) or cosine (decayed to zero over each run).")
@click.option("--iterative-steps", type=click.IntRange(1, 20), default=1, show_default=True,
              help="Prune toward the budget in N steps, fine-tuning and re-measuring between them.")
@click.option("--step-epochs", type=click.IntRange(0, 1000), default=None,
              help="Fine-tuning epochs between iterative steps (default: from --epochs).")
def budget(model: str, data: str | None, epochs: int, batch_size: int, output: str, force: bool, as_json: bool,
           unsafe_load: bool, quiet: bool, flash_budget: str | None, ram_budget: str | None,
           latency_budget: str | None, board: str | None, boards_file: str | None, margin: float,
           allow_compress: bool, bits: int, importance: str, allocation: str, round_to: int, ignore: tuple[str, ...],
           seed: int | None, distill: str, temperature: float, distill_weight: float, mixup: int,
           lr_schedule: str, iterative_steps: int, step_epochs: int | None) -> None:
    """Remove filters until MODEL fits the budgets, losing the least accuracy; write OUT/."""
    from rich.console import Console

    from firmware_export.cexport import name_from_path
    from tinyprune.budget.limits import Budget, check_job

    parsed = Budget.parse(flash_budget, ram_budget, latency_budget, board, boards_file, margin)  # the one parse
    check_job(round_to, bool(data))

    from tinyprune.load.model import load_model

    keras_model = load_model(model, unsafe=unsafe_load)  # refuses a hostile or broken file before TensorFlow

    from tinyprune.budget.search import prune_for_budget
    from tinyprune.load.data import load_data

    ds = load_data(data).fit_to(keras_model.input_shape) if data else None
    console = Console(stderr=as_json, quiet=quiet)
    result = prune_for_budget(
        keras_model, ds, output, budget=parsed, epochs=epochs, ignore=tuple(ignore), batch_size=batch_size,
        importance=importance, round_to=round_to, name=name_from_path(model), force=force, quiet=quiet or as_json,
        console=console, allow_compress=allow_compress, bits=bits, seed=seed,
        distill={"on": True, "off": False}.get(distill, distill), temperature=temperature,
        distill_weight=distill_weight, mixup=mixup, iterative_steps=iterative_steps, step_epochs=step_epochs,
        allocation=allocation, lr_schedule=lr_schedule)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
