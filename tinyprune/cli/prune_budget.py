"""`tinyprune prune MODEL --flash-budget/--ram-budget/--latency-budget/--board ...`.

Thin wrapper over `tinyprune.budget.search.prune_for_budget`: parses the budget once
(`Budget.parse`, before TensorFlow is imported), loads the model and data, runs the search
with the parsed budget, prints the result (or JSON with --json). Options the lead's
subcommand may not have yet (--seed, --distill auto|on|off, --temperature, --distill-weight,
--iterative-steps, --step-epochs) are read with the library's defaults when absent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click


def handle(opts: dict) -> None:
    from rich.console import Console

    from tinyprune.budget.limits import Budget, check_job
    from tinyprune.errors import ConfigError

    structured_only = [flag for flag, given in (("--ratio", opts["ratio"] is not None),
                                                 ("--layer-ratio", bool(opts["layer_ratio"])),
                                                 ("--steps", opts["steps"] != 1)) if given]
    if structured_only or opts["method"] not in ("magnitude", "structured"):
        what = ", ".join(structured_only) or f"--method {opts['method']}"
        raise ConfigError(f"{what} cannot be combined with a budget: the budget search chooses the channels "
                          "itself (it always removes filters); drop it or drop the budget options")
    budget = Budget.parse(opts["flash_budget"], opts["ram_budget"], opts["latency_budget"], opts["board"],
                          opts["boards_file"], opts["margin"])
    check_job(opts["round_to"], bool(opts["data"]))

    from tinyprune import training
    from tinyprune.budget.search import prune_for_budget  # imports TensorFlow: only after the checks
    from tinyprune.load.data import load_data
    from tinyprune.load.model import load_model

    model = load_model(opts["model"], unsafe=opts["unsafe_load"])
    ds = load_data(opts["data"]).fit_to(model.input_shape) if opts["data"] else None
    name = re.sub(r"\W", "_", Path(opts["model"]).stem, flags=re.ASCII) or "model"
    name = name if name[0].isalpha() else f"m_{name}"
    console = Console(stderr=opts["as_json"], quiet=opts["quiet"])
    result = prune_for_budget(
        model, ds, opts["output"], budget=budget, epochs=opts["epochs"], ignore=tuple(opts["ignore"]),
        batch_size=opts["batch_size"], importance=opts["importance"], round_to=opts["round_to"], name=name,
        force=opts["force"], quiet=opts["quiet"] or opts["as_json"], console=console,
        allow_compress=opts["allow_compress"], bits=opts["bits"], seed=opts.get("seed"),
        distill={"on": True, "off": False}.get(opts.get("distill", "auto"), opts.get("distill", "auto")), temperature=opts.get("temperature", training.DEFAULT_TEMPERATURE),
        distill_weight=opts.get("distill_weight", training.DEFAULT_WEIGHT),
        iterative_steps=opts.get("iterative_steps", 1), step_epochs=opts.get("step_epochs"))
    if opts["as_json"]:
        click.echo(json.dumps(result.to_dict(), indent=2))
