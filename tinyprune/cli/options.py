"""Options shared by the `tinyprune prune <method>` subcommands (and `sweep`), declared once.

Each decorator adds a group of click options; a subcommand stacks the groups that apply to it,
so `tinyprune prune structured --help` shows only what structured pruning reads.
"""

from __future__ import annotations

from typing import Callable

import click

from tinyprune.prune import CRITERIA
from tinyprune.training.limits import MAX_BATCH_SIZE, MAX_EPOCHS


def _stack(*decorators: Callable) -> Callable:
    def apply(f: Callable) -> Callable:
        for d in reversed(decorators):
            f = d(f)
        return f
    return apply


def common(default_epochs: int = 2) -> Callable:
    """MODEL, --data, --epochs, --batch-size, -o, --force, --json, --unsafe-load, --quiet."""
    return _stack(
        click.argument("model", type=click.Path(path_type=str)),
        click.option("--data", "data", default=None, help="'digits' or a .npz (x_train,y_train,x_val,y_val or x,y)."),
        click.option("--epochs", type=click.IntRange(0, MAX_EPOCHS), default=default_epochs, show_default=True,
                     help="Fine-tuning / training epochs."),
        click.option("--batch-size", type=click.IntRange(1, MAX_BATCH_SIZE), default=32, show_default=True),
        click.option("-o", "--output", "output", required=True, help="Output folder."),
        click.option("--force", is_flag=True, help="Overwrite an existing output folder."),
        click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout."),
        click.option("--unsafe-load", is_flag=True,
                     help="Allow Lambda layers / custom objects (runs code from the file)."),
        click.option("--quiet", is_flag=True, help="No progress bars."),
    )


def seed() -> Callable:
    """--seed: fix the randomness a job controls (tinyprune.training.reproducible)."""
    return click.option("--seed", type=click.IntRange(0, 2 ** 31 - 1), default=None,
                        help="Fix every source of randomness the job controls (data order, init, TF op "
                             "determinism): the same command then writes the same bytes.")


def channel_selection() -> Callable:
    """Options of structured removal that the budget search shares: criterion, rounding, ignored layers."""
    return _stack(
        click.option("--importance", type=click.Choice(CRITERIA), default="l1",
                     show_default=True, help="Channel importance criterion."),
        click.option("--round-to", type=click.IntRange(1, 4096), default=1, show_default=True,
                     help="Keep channel counts multiples of N."),
        click.option("--ignore", multiple=True, help="Layer to leave untouched (repeatable)."),
    )


def lut_bits() -> Callable:
    # a plain int: the library's check says "2..7" and why (firmware_export.lut.check_bits)
    return click.option("--bits", type=int, default=4, show_default=True,
                        help="LUT index bits, 2..7 (2^bits values per channel).")
