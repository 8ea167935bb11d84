"""`tinyprune sweep MODEL --data D --budgets 50%,25% [--boards a,b] [--seeds 0,1,2] [--workers N] [--ray [ADDRESS]]`.

Thin wrapper over `tinyprune.budget.sweep.sweep`: checks the request (and that Ray is
installed, for --ray) before TensorFlow starts, picks the backend
(`tinyprune.budget.sweep_backends.make_backend`), loads the model and data, runs the sweep.
Exit 0 when every point finished or cannot meet its budget, 1 when a point failed after its
retry (the others are written), 2 for bad input.
"""

from __future__ import annotations

import contextlib
import json
import sys

import click

from tinyprune.budget.limits import ALLOCATIONS
from tinyprune.prune import CRITERIA


def _list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _seeds(ctx, param, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        seeds = [int(v) for v in _list(value)]
    except ValueError:
        raise click.BadParameter(f"{value!r}: give whole numbers separated by commas, e.g. 0,1,2") from None
    if not seeds:
        raise click.BadParameter("give at least one seed, e.g. 0,1,2")
    return seeds


@click.command("sweep")
@click.argument("model", type=click.Path(path_type=str))
@click.option("--data", required=True, help="'digits' or a .npz (x_train,y_train,x_val,y_val or x,y).")
@click.option("--budgets", default="75%,50%,25%,12.5%", show_default=True, help="Comma-separated flash budgets.")
@click.option("--boards", default=None, help="Comma-separated boards: each point's budget also includes the board's "
                                             "free flash and SRAM (see `tinyprune boards`).")
@click.option("--boards-file", type=click.Path(path_type=str), default=None, help="Extra board profiles (TOML).")
@click.option("--seeds", default=None, callback=_seeds, help="Comma-separated seeds, one point each  [default: 0]")
@click.option("--epochs", type=int, default=5, show_default=True, help="Fine-tuning epochs per point.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--importance", type=click.Choice(CRITERIA), default="l1",
              show_default=True)
@click.option("--allocation", type=click.Choice(ALLOCATIONS), default="sensitivity", show_default=True,
              help="Channel counts per point (auto: three shapes, each scored after a short fine-tune; "
                   "the budget job's default, about 3 short fine-tunes more per point).")
@click.option("--round-to", type=int, default=1, show_default=True, help="Keep channel counts multiples of N.")
@click.option("--workers", type=int, default=None,
              help="Points at once: local worker processes (default 1: in this process); with --ray, the CPUs "
                   "of the local Ray started for the run (default: all).")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
              help="Run the points as Ray tasks: on a local Ray started for the run, or on the cluster at "
                   "ADDRESS ('auto' = RAY_ADDRESS). Needs pip install 'tinyprune[ray]'.")
@click.option("--cpus-per-point", type=float, default=1, show_default=True,
              help="With --ray: CPUs (and TensorFlow threads) per point.")
@click.option("-o", "--output", required=True, help="Output folder (one sub-folder per point, sweep.json, pareto.png).")
@click.option("--resume", is_flag=True, help="Continue a sweep in OUT: skip its finished points.")
@click.option("--force", is_flag=True, help="Overwrite an existing output folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the sweep as JSON on stdout.")
@click.option("--unsafe-load", is_flag=True, help="Allow Lambda layers / custom objects (runs code from the file).")
@click.option("--quiet", is_flag=True, help="No progress bars, tables or per-point lines on stderr.")
def sweep(model, data, budgets, boards, boards_file, seeds, epochs, batch_size, importance, allocation, round_to,
          workers,
          ray_address, cpus_per_point, output, resume, force, as_json, unsafe_load, quiet):
    """Prune MODEL at every budget x board x seed; write tables, sweep.json and pareto.png."""
    from pathlib import Path

    from rich.console import Console

    from firmware_export.files import check_writable
    from tinyprune.budget.sweep import check_sweep
    from tinyprune.budget.sweep_backends import make_backend

    check_sweep(_list(budgets), _list(boards) or None, boards_file, epochs, batch_size, round_to)
    if not (resume or force):
        check_writable(Path(output), force)
    backend = make_backend(workers, ray_address, cpus_per_point)  # --ray without Ray stops here

    from tinyprune.budget.sweep import sweep as run_sweep  # TensorFlow only after the checks
    from tinyprune.load.data import load_data
    from tinyprune.load.model import load_model

    m = load_model(model, unsafe=unsafe_load)
    ds = load_data(data).fit_to(m.input_shape)
    # with --json, stdout carries only the JSON: what libraries print there (Ray's driver
    # relays worker-death notices to stdout) goes to stderr
    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        result = run_sweep(m, ds, _list(budgets), output, boards=_list(boards) or None, seeds=seeds,
                           boards_file=boards_file, epochs=epochs, batch_size=batch_size, importance=importance,
                           allocation=allocation, round_to=round_to, backend=backend, resume=resume, force=force,
                           unsafe_load=unsafe_load,
                           quiet=quiet or as_json, console=Console(stderr=as_json, quiet=quiet))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    failed = [pid for pid, st in result.status.items() if st["status"] == "failed"]
    if failed:  # the finished points are written; exit 1 so that a script notices the rest
        click.echo(f"error: {len(failed)} of {len(result.status)} points failed after a retry ({', '.join(failed)}; "
                   f"reasons in {Path(output) / 'sweep.json'}); the others are written: re-run with --resume "
                   "to retry only those", err=True)
        raise SystemExit(1)
