"""`tinyprune inspect MODEL.tflite`: ops, tensors, per-op MACs, weight bytes and TFLM arena.

A thin wrapper over `firmware_export.inspect.inspect_model`; it never imports TensorFlow.
"""

from __future__ import annotations

import click


@click.command("inspect")
@click.argument("model", type=click.Path(path_type=str))
@click.option("--no-tensors", is_flag=True, help="Leave out the tensor table (with --json: the tensors list).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
def inspect_cmd(model: str, no_tensors: bool, as_json: bool) -> None:
    """Show what MODEL.tflite contains and the arena the real TFLM interpreter needs for it."""
    from firmware_export.inspect import inspect_model

    report = inspect_model(model)
    if as_json:
        click.echo(report.to_json(tensors=not no_tensors))
    else:
        from rich.console import Console

        report.render(Console(), tensors=not no_tensors)
