"""`tinyprune prune MODEL --flash-budget/--ram-budget/--latency-budget/--board ...`.

Thin wrapper over `tinyprune.budget.search.prune_for_budget`: loads the model and data,
runs the search, prints the result (or JSON with --json).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click


def handle(opts: dict) -> None:
    from rich.console import Console

    from tinyprune.budget.limits import check_request
    from tinyprune.errors import ConfigError

    structured_only = [flag for flag, given in (("--ratio", opts["ratio"] is not None),
                                                 ("--layer-ratio", bool(opts["layer_ratio"])),
                                                 ("--steps", opts["steps"] != 1)) if given]
    if structured_only or opts["method"] not in ("magnitude", "structured"):
        what = ", ".join(structured_only) or f"--method {opts['method']}"
        raise ConfigError(f"{what} cannot be combined with a budget: the budget search chooses the channels "
                          "itself (it always removes filters); drop it or drop the budget options")
    check_request(opts["flash_budget"], opts["ram_budget"], opts["latency_budget"], opts["board"],
                  opts["boards_file"], opts["margin"], opts["round_to"], bool(opts["data"]))

    from tinyprune.budget.search import prune_for_budget  # imports TensorFlow: only after the checks
    from tinyprune.load.data import load_data
    from tinyprune.load.model import load_model

    model = load_model(opts["model"], unsafe=opts["unsafe_load"])
    ds = load_data(opts["data"]).fit_to(model.input_shape) if opts["data"] else None
    name = re.sub(r"\W", "_", Path(opts["model"]).stem, flags=re.ASCII) or "model"
    name = name if name[0].isalpha() else f"m_{name}"
    console = Console(stderr=opts["as_json"], quiet=opts["quiet"])
    result = prune_for_budget(
        model, ds, opts["output"], flash_budget=opts["flash_budget"], ram_budget=opts["ram_budget"],
        latency_budget=opts["latency_budget"], board=opts["board"], boards_file=opts["boards_file"],
        margin=opts["margin"], epochs=opts["epochs"], ignore=tuple(opts["ignore"]), batch_size=opts["batch_size"],
        importance=opts["importance"], round_to=opts["round_to"], name=name, force=opts["force"],
        quiet=opts["quiet"] or opts["as_json"], console=console, allow_compress=opts["allow_compress"],
        bits=opts["bits"])
    if opts["as_json"]:
        click.echo(json.dumps(result.to_dict(), indent=2))
