"""The `tinyprune` command line: a click group whose commands load lazily.

Each command lives in its own module here and is a thin wrapper over a documented library
function. Commands are imported only when invoked, so `tinyprune --help` and the commands
that read a .tflite (compress, export, inspect, fit, boards) never import TensorFlow.

Errors: a `TinypruneError` (or a click usage error) prints one line on stderr,
`error: <what was wrong and what to do>`, and exits 2. Never a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import click

from firmware_export.terminal import printable
from tinyprune import __version__
from tinyprune.errors import TinypruneError

# command name -> (module, attribute, one-line help shown by `tinyprune --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("tinyprune.cli.run", "run", "Run the whole pipeline from a TOML config (default: the bundled demo)."),
    "prune": ("tinyprune.cli.prune", "prune", "Prune a Keras model (magnitude, structured, at-init, budget)."),
    "compress": ("tinyprune.cli.compress", "compress",
                 "Store sparse or clustered weights of a .tflite in a form TFLM decodes."),
    "export": ("tinyprune.cli.export", "export", "Write TFLM C source (and a firmware skeleton) for a .tflite."),
    "inspect": ("tinyprune.cli.inspect", "inspect_cmd", "Show ops, tensors, MACs, weights and arena of a .tflite."),
    "fit": ("tinyprune.cli.fit", "fit", "Check a .tflite against board profiles: flash, RAM, latency."),
    "boards": ("tinyprune.cli.boards", "boards", "List the board profiles."),
    "sweep": ("tinyprune.cli.sweep", "sweep", "Prune to several flash budgets and plot accuracy vs flash."),
}


def _available() -> dict[str, tuple[str, str, str]]:
    return {name: spec for name, spec in COMMANDS.items() if importlib.util.find_spec(spec[0]) is not None}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_available())

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        spec = _available().get(name)
        if spec is None:
            return None
        module = importlib.import_module(spec[0])
        return getattr(module, spec[1])

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, spec[2]) for name, spec in sorted(_available().items())]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tinyprune")
def cli() -> None:
    """Prune, quantize and export Keras models for TensorFlow Lite Micro on Cortex-M.

    \b
    Jobs:
      tinyprune run                      the whole pipeline on the bundled demo
      tinyprune prune MODEL ... -o OUT   prune (for a ratio or a flash/RAM/latency budget)
      tinyprune export M.tflite -o DIR   C source for a TFLM firmware project
      tinyprune fit M.tflite --all       flash / RAM / latency per board (CI gate)
    """


PIPE_WIDTH = 120  # rich's width for output that is not a terminal (a CI log): its default 80 cut columns


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one line on stderr and exit 2 for any user error."""
    if "COLUMNS" not in os.environ and not sys.stdout.isatty() and not sys.stderr.isatty():
        os.environ["COLUMNS"] = str(PIPE_WIDTH)  # every rich Console of the command reads it; a user's wins
    try:
        rv = cli.main(args=argv, prog_name="tinyprune", standalone_mode=False)
    except TinypruneError as e:
        # one line, even for a name with newlines; a file's control characters shown, not sent
        click.echo("error: " + printable(" ".join(str(e).splitlines())), err=True)
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(130)
    except click.UsageError as e:
        hint = f" (see: {e.ctx.command_path if e.ctx else 'tinyprune'} --help)"
        click.echo(f"error: {printable(e.format_message())}{hint}", err=True)
        sys.exit(2)
    except click.ClickException as e:
        click.echo(f"error: {printable(e.format_message())}", err=True)
        sys.exit(2)
    except OSError as e:  # a full disk, a read-only folder: the user's environment, not a bug
        where = f" {e.filename}" if getattr(e, "filename", None) else ""
        click.echo(printable(f"error: cannot read or write{where}: {e.strerror or e}; check the path, space and "
                             "permissions"),
                   err=True)
        sys.exit(2)
    sys.exit(rv if isinstance(rv, int) else 0)
