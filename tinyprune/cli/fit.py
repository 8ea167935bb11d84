"""`tinyprune fit MODEL.tflite`: flash, RAM and latency per board; a CI gate (exit 0 fits, 1 not).

A thin wrapper over `firmware_export.estimate.fit_model`; never imports TensorFlow.
Bad input (not a .tflite, unknown board, malformed boards file, a model TFLM cannot allocate)
raises a TinypruneError, which the CLI turns into one line on stderr and exit code 2.
"""

from __future__ import annotations


import click

EXIT_DOES_NOT_FIT = 1  # exit code when the model misses at least one board (2 is bad input)


@click.command("fit")
@click.argument("model", type=click.Path(path_type=str), required=False)
@click.option("--board", "boards", multiple=True, metavar="NAME",
              help="Board to check (repeatable). Default: the boards of --boards-file, else a representative set.")
@click.option("--all", "all_boards", is_flag=True, help="Check every board profile.")
@click.option("--boards-file", type=click.Path(path_type=str), default=None,
              help="Extra board profiles (TOML, [[board]] tables; same format as the shipped boards.toml).")
@click.option("--json", "as_json", is_flag=True, help="Print the estimates as JSON on stdout.")
@click.option("--calibrate", "measured_csv", type=click.Path(path_type=str), default=None, metavar="MEASURED.csv",
              help="Your measured latencies (CSV: model,board,ms): refit the latency factor of each board and save "
                   "it beside --boards-file (FILE.calibration.toml), which later fits use.")
@click.option("--force", is_flag=True, help="With --calibrate: replace the boards file's existing calibration.")
@click.option("--layers", is_flag=True, help="Also show the per-op latency and memory breakdown (peak marked).")
@click.option("--flash", "flash_parts", is_flag=True,
              help="Also show the flash parts (framework, kernel glue, CMSIS-NN, libc) of the first board.")
@click.option("--generic-kernels", is_flag=True,
              help="Estimate flash for generic op registrations (export --generic-kernels) instead of int8-only.")
@click.pass_context
def fit(ctx: click.Context, model: str | None, boards: tuple[str, ...], all_boards: bool, boards_file: str | None,
        as_json: bool, measured_csv: str | None, force: bool, layers: bool, flash_parts: bool,
        generic_kernels: bool) -> None:
    """Estimate flash, RAM and latency of MODEL.tflite on board profiles.

    Exit 0 when the model fits every board asked for, 1 when it does not, 2 on bad input.
    With --calibrate MEASURED.csv (and --boards-file), your measured latencies first refit the
    latency factor of each of their boards (saved beside the boards file); MODEL is then optional.
    """
    from rich.console import Console

    from firmware_export.errors import ConfigError
    from firmware_export.estimate import fit_file
    from firmware_export.latency_user import calibrate_boards

    if measured_csv is not None:
        result = calibrate_boards(measured_csv, boards_file, force=force)
        if model is None:
            if as_json:
                import json

                click.echo(json.dumps(result.to_dict(), indent=2))
            else:
                result.render(Console())
            ctx.exit(0)
        if not as_json:
            result.render(Console())
    if model is None:
        raise ConfigError("give MODEL.tflite (or --calibrate MEASURED.csv --boards-file FILE to calibrate only)")
    report = fit_file(model, list(boards), all_boards, boards_file, narrow=not generic_kernels)
    if as_json:
        click.echo(report.to_json(layers=layers))
    else:
        report.render(Console(), layers=layers,
                      flash=flash_parts)
    ctx.exit(0 if report.all_fit else EXIT_DOES_NOT_FIT)
