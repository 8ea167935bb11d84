"""`tinyprune compress MODEL.tflite -o OUT.tflite`: store sparse or clustered weights in a form TFLM decodes.

A thin wrapper over `firmware_export.compress.compress_file` (compress_model, then `same_outputs`,
which runs both models in the real TFLM interpreter on random inputs, then the write); it never
imports TensorFlow. Use it
on any int8 .tflite, for example one pruned with tfmot elsewhere: `--method prune` turns
sparsity into flash losslessly, `--method lut` needs weights clustered to 2^bits values per
channel, `--method auto` takes the smaller per tensor.
"""

from __future__ import annotations

import json

import click


@click.command("compress")
@click.argument("model", type=click.Path(path_type=str))
@click.option("-o", "--output", "output", required=True, help="The compressed .tflite to write.")
@click.option("--method", type=click.Choice(["auto", "prune", "lut"]), default="auto", show_default=True,
              help="prune = bitmask + non-zero values; lut = k-bit indices into per-channel tables; "
                   "auto = the smaller per tensor.")
@click.option("--bits", type=int, default=4, show_default=True, help="Most LUT index bits, 2..7.")
@click.option("--force", is_flag=True, help="Replace an existing output file.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def compress(model: str, output: str, method: str, bits: int, force: bool, as_json: bool) -> None:
    """Compress MODEL.tflite's weights with TFLM's DECODE formats; report flash saved and arena added."""
    from firmware_export.compress import compress_file

    result = compress_file(model, output, method, bits, force)  # raises before writing when outputs differ
    report = {**result.to_dict(), "input": model, "output": output, "outputs_identical_on_random_inputs": True}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    from rich.console import Console
    from firmware_export.terminal import escape
    from rich.table import Table

    console = Console()
    table = Table(title=escape(f"{model}: weights stored for TFLM's DECODE"))
    for col in ("tensor", "op", "zeros", "int8 B", "stored B", "stored as"):
        table.add_column(col, justify="left" if col in ("tensor", "op", "stored as") else "right")
    reasons: dict[str, str] = {}
    for t in result.tensors:
        mark = reasons.setdefault(t.reason, "*" * (len(reasons) + 1)) if not t.method else ""
        table.add_row(escape(_short(t.name)), t.op, f"{t.sparsity:.0%}", f"{t.dense_bytes:,}", f"{t.encoded_bytes:,}",
                      t.method.upper() if t.method else f"int8{mark}")
    console.print(table)
    for reason, mark in reasons.items():
        console.print(f"{mark} kept as int8: {escape(reason)}")
    console.print(f"flash: {result.dense_bytes:,} B -> {result.compressed_bytes:,} B ({result.flash_fraction:.1%}); "
                  f"arena (32-bit): {result.dense_arena.target_bytes:,} B -> {result.compressed_arena.target_bytes:,} B "
                  f"(+{result.extra_arena_bytes:,} B for the decoded weights)")
    console.print("outputs identical in TFLM on random inputs: yes (checked before writing)")
    console.print(f"[bold yellow]warning:[/] {report['note']}")
    console.print(f"wrote {escape(output)}")


def _short(name: str) -> str:
    """A converter tensor name such as 'model/conv2/Conv2D;...' shortened to 'conv2/Conv2D'."""
    return "/".join(name.split(";")[0].split("/")[-2:])
