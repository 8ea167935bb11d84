"""`tinyprune boards`: list the board profiles (shipped, plus a user's --boards-file).

A thin wrapper over `firmware_export.boards.load_boards`; never imports TensorFlow.
"""

from __future__ import annotations

import json


import click



@click.command("boards")
@click.option("--boards-file", type=click.Path(path_type=str), default=None,
              help="Extra board profiles (TOML, [[board]] tables) to validate and list with the shipped ones.")
@click.option("--json", "as_json", is_flag=True, help="Print the profiles as JSON on stdout.")
def boards(boards_file: str | None, as_json: bool) -> None:
    """List the board profiles that `tinyprune fit --board NAME` accepts."""
    from rich.console import Console
    from firmware_export.terminal import escape
    from rich.table import Table

    from firmware_export.boards import DEFAULT_BOARDS, load_boards

    profiles = load_boards(boards_file)
    if as_json:
        # "default": fit checks the board when no --board is given (the table's *)
        click.echo(json.dumps([{**b.to_dict(), "default": b.name in DEFAULT_BOARDS} for b in profiles.values()],
                              indent=2))
        return
    t = Table(title=f"{len(profiles)} board profiles (* = checked by default)")
    t.add_column("name", no_wrap=True)
    t.add_column("mcu")
    t.add_column("core", no_wrap=True)
    for col in ("MHz", "flash KB", "SRAM KB"):
        t.add_column(col, justify="right")
    t.add_column("kernels")
    for b in profiles.values():
        flash = f"{b.flash_kb:g}" + (f" ({b.usable_flash_kb:g})" if b.usable_flash_kb else "")
        sram = f"{b.sram_kb:g}" + (f" ({b.usable_sram_kb:g})" if b.usable_sram_kb else "")
        t.add_row(escape(b.name) + ("*" if b.name in DEFAULT_BOARDS else ""), escape(b.mcu),
                  b.core.removeprefix("cortex-"), f"{b.clock_mhz:g}", flash, sram, b.kernels)
    console = Console()
    console.print(t)
    console.print("(usable) in parentheses when smaller than the total; add boards with --boards-file FILE.toml")
    console.print("\n[bold]sources[/]")
    for b in profiles.values():
        console.print(f"  {escape(b.name)}: {escape(b.source or '(none given)')}", highlight=False)
