"""`tinyprune prune budget MODEL --flash-budget 25% [--ram-budget ...] [--board B] --data D -o OUT`.

A thin wrapper over `tinyprune.budget.search.prune_for_budget`: it checks the request before
TensorFlow starts, loads the model and data, runs the search, prints the result (or JSON with
--json). The older spelling `tinyprune prune MODEL --flash-budget ...` routes here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from tinyprune.cli import options


def model_name(path: str) -> str:
    """A C identifier from the model's file name (the export's array and header names)."""
    name = re.sub(r"\W", "_", Path(path).stem, flags=re.ASCII) or "model"
    return name if name[0].isalpha() else f"m_{name}"


@click.command("budget")
@options.common()
@click.option("--flash-budget", default=None, help="Flash for the model: 96KB, 0.5MB, 50%, 12000.")
@click.option("--ram-budget", default=None, help="RAM (arena + overhead): 64KB, 50%.")
@click.option("--latency-budget", default=None, help="Latency in ms on --board.")
@click.option("--board", default=None, help="Fit this board (its flash and SRAM less the runtime).")
@click.option("--boards-file", default=None, help="Extra board profiles (TOML).")
@click.option("--margin", type=float, default=0.0, show_default=True,
              help="Safety margin as a fraction of the budget, in [0, 1).")
@click.option("--allow-compress", is_flag=True, help="Allow magnitude + LUT compression if removal alone misses.")
@options.lut_bits()
@options.channel_selection()
def budget(model: str, data: str | None, epochs: int, batch_size: int, output: str, force: bool, as_json: bool,
           unsafe_load: bool, quiet: bool, flash_budget: str | None, ram_budget: str | None,
           latency_budget: str | None, board: str | None, boards_file: str | None, margin: float,
           allow_compress: bool, bits: int, importance: str, round_to: int, ignore: tuple[str, ...]) -> None:
    """Remove filters until MODEL fits the budgets, losing the least accuracy; write OUT/."""
    from rich.console import Console

    from tinyprune.budget.limits import check_request

    check_request(flash_budget, ram_budget, latency_budget, board, boards_file, margin, round_to, bool(data))

    from tinyprune.load.model import load_model

    keras_model = load_model(model, unsafe=unsafe_load)  # refuses a hostile or broken file before TensorFlow

    from tinyprune.budget.search import prune_for_budget
    from tinyprune.load.data import load_data

    ds = load_data(data).fit_to(keras_model.input_shape) if data else None
    console = Console(stderr=as_json, quiet=quiet)
    result = prune_for_budget(
        keras_model, ds, output, flash_budget=flash_budget, ram_budget=ram_budget, latency_budget=latency_budget,
        board=board, boards_file=boards_file, margin=margin, epochs=epochs, ignore=tuple(ignore),
        batch_size=batch_size, importance=importance, round_to=round_to, name=model_name(model), force=force,
        quiet=quiet or as_json, console=console, allow_compress=allow_compress, bits=bits)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
