"""`tinyprune export MODEL.tflite -o DIR`: C source for a TFLite Micro firmware project.

A thin wrapper over `firmware_export.cexport.export_c`; it never imports TensorFlow.
"""

from __future__ import annotations

import click


@click.command("export")
@click.argument("model", type=click.Path(path_type=str))
@click.option("-o", "--output", "output", required=True, help="Output folder (must not exist unless --force).")
@click.option("--name", default="model", show_default=True, help="C name prefix: NAME_model_data.h, ...")
@click.option("--arduino", is_flag=True, help="Also lay the folder out as an Arduino library (src/, examples/).")
@click.option("--labels", "labels_file", default=None, help="Text file with one class label per line.")
@click.option("--require-int8", is_flag=True, help="Refuse a model that computes in float.")
@click.option("--generic-kernels", is_flag=True,
              help="Register the generic kernels (every data type) instead of the int8-only variants.")
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def export(model: str, output: str, name: str, arduino: bool, labels_file: str | None,
           require_int8: bool, generic_kernels: bool, force: bool, as_json: bool) -> None:
    """Write NAME_model_data.h/.cc, NAME_model_settings.h, NAME_op_resolver.h, main.cc and
    CMakeLists.txt for MODEL.tflite, with the tensor arena measured in the real TFLM interpreter."""
    from firmware_export.cexport import export_c, read_labels

    labels = read_labels(labels_file) if labels_file else None
    result = export_c(model, output, name=name, arduino=arduino, force=force, labels=labels,
                      require_int8=require_int8, narrow_kernels=not generic_kernels)
    if as_json:
        click.echo(result.to_json())
    else:
        from rich.console import Console

        result.render(Console())
