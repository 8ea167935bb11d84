"""`tinyprune sweep MODEL --data D --budgets 75%,50%,25%,12.5% -o OUT`: accuracy vs flash."""

from __future__ import annotations

import json

import click


@click.command("sweep")
@click.argument("model", type=click.Path(path_type=str))
@click.option("--data", required=True, help="'digits' or a .npz (see README).")
@click.option("--budgets", default="75%,50%,25%,12.5%", show_default=True, help="Comma-separated flash budgets.")
@click.option("--epochs", type=int, default=5, show_default=True, help="Fine-tuning epochs per budget.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--importance", type=click.Choice(["l1", "l2", "bn", "taylor", "random"]), default="l1",
              show_default=True)
@click.option("--round-to", type=int, default=1, show_default=True, help="Keep channel counts multiples of N.")
@click.option("-o", "--output", required=True, help="Output folder (one sub-folder per budget, pareto.png).")
@click.option("--force", is_flag=True, help="Overwrite an existing output folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the sweep as JSON on stdout.")
@click.option("--unsafe-load", is_flag=True, help="Allow Lambda layers / custom objects (runs code from the file).")
@click.option("--quiet", is_flag=True)
def sweep(model, data, budgets, epochs, batch_size, importance, round_to, output, force, as_json, unsafe_load, quiet):
    """Prune MODEL to each flash budget; write a table, sweep.json and pareto.png."""
    from rich.console import Console

    from tinyprune.load.data import load_data
    from tinyprune.load.model import load_model
    from tinyprune.budget.sweep import sweep as run_sweep

    m = load_model(model, unsafe=unsafe_load)
    ds = load_data(data).fit_to(m.input_shape)
    result = run_sweep(m, ds, [b.strip() for b in budgets.split(",") if b.strip()], output, epochs=epochs,
                       batch_size=batch_size, importance=importance, round_to=round_to, force=force,
                       quiet=quiet or as_json, console=Console(stderr=as_json, quiet=quiet))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
