"""`tinyprune run [CONFIG.toml]`: the whole pipeline (see tinyprune.pipeline.run)."""

from __future__ import annotations

import json

import click


@click.command("run")
@click.argument("config", required=False, type=click.Path(path_type=str))
@click.option("-o", "--output", default=None, help="Output folder (overrides [output] dir).")
@click.option("--force", is_flag=True, help="Overwrite an existing output folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON on stdout.")
@click.option("--quiet", is_flag=True, help="No progress or tables (errors still go to stderr).")
def run(config: str | None, output: str | None, force: bool, as_json: bool, quiet: bool) -> None:
    """Load, prune (tfmot magnitude), quantize int8, check in TFLM, export C, fit boards.

    With no CONFIG, runs the bundled demo (the digits CNN) and writes out/demo/.
    """
    from rich.console import Console

    from tinyprune.pipeline.config import load_config
    from tinyprune.pipeline.run import run_pipeline

    cfg = load_config(config)
    if output:
        cfg.output.dir = output
    console = Console(stderr=as_json, quiet=quiet)
    result = run_pipeline(cfg, force=force, console=console, quiet=quiet or as_json)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
