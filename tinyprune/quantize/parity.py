"""Does the int8 model behave like the float one, and does TFLite Micro agree with TFLite?

`parity_report` runs the same validation inputs through three runtimes:
- the float tf_keras model (`training.predict`),
- the int8 .tflite in the TFLite interpreter (`ai_edge_litert.interpreter`, not tf.lite),
- the int8 .tflite in the real TFLite Micro interpreter (`firmware_export.tflm.run`),
and reports accuracy against labels (or, without labels, only agreement), top-1 agreement
between each pair, and the largest difference between the TFLite and TFLM raw outputs in
quantized units (output steps; for a float-output model, in output units). Both interpreters
get the same quantized inputs, so any difference comes from their kernels alone.

The TFLite interpreter runs its builtin kernels without the default XNNPACK delegate unless
`tflite_delegates=True`: XNNPACK's int8 kernels round differently (measured on the digits demo:
6 of 3,590 output values differ from TFLM, by up to 13 steps, with no top-1 change), which would
hide real TFLite/TFLM kernel differences behind delegate noise.

It measures; it does not convert (`quantize.py`) or decide what is acceptable (callers do).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from firmware_export import tflm
from tinyprune.errors import DataError
from tinyprune.metrics import agreement, top1

MAX_DIFF_SHOWN = 1  # quantized steps; above this the table marks the TFLite/TFLM difference


@dataclass
class ParityReport:
    """Accuracy and agreement of float Keras, int8 TFLite and int8 TFLM on one validation set."""

    samples: int
    labelled: bool
    float_accuracy: float | None  # None without (class) labels
    tflite_accuracy: float | None
    tflm_accuracy: float | None
    agree_float_tflite: float  # fraction of samples with the same top-1
    agree_float_tflm: float
    agree_tflite_tflm: float
    max_abs_diff: float  # |TFLite - TFLM| raw outputs, in quantized units (float units if float output)
    output_dtype: str

    def to_dict(self) -> dict:
        return asdict(self)

    def render(self, console) -> None:
        """Print the report as a rich table."""
        from rich.table import Table

        def pct(v: float | None) -> str:
            return "-" if v is None else f"{v:.2%}"

        t = Table(title=f"parity on {self.samples} validation samples")
        t.add_column("runtime")
        t.add_column("accuracy" if self.labelled else "accuracy (no labels)", justify="right")
        t.add_column("top-1 agreement", justify="right")
        t.add_row("Keras float", pct(self.float_accuracy), "-")
        t.add_row("TFLite int8 (ai-edge-litert)", pct(self.tflite_accuracy),
                  f"{pct(self.agree_float_tflite)} with float")
        t.add_row("TFLM int8 (tflite-micro)", pct(self.tflm_accuracy),
                  f"{pct(self.agree_float_tflm)} with float, {pct(self.agree_tflite_tflm)} with TFLite")
        console.print(t)
        unit = "quantized steps" if self.output_dtype != "float32" else "output units"
        style = "red" if self.max_abs_diff > MAX_DIFF_SHOWN else "green"
        console.print(f"max |TFLite - TFLM| output difference: [{style}]{self.max_abs_diff:g}[/] {unit}")


def tflite_run(data: bytes, x: np.ndarray, delegates: bool = False) -> np.ndarray:
    """Raw outputs of the TFLite interpreter (ai-edge-litert), one row per sample of float `x`.

    Inputs are quantized exactly as `firmware_export.tflm.run` does, so the two are comparable.
    `delegates` keeps TFLite's default (XNNPACK) delegate; see the module docstring.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interp = Interpreter(model_content=data, experimental_op_resolver_type=resolver)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    rows = []
    for row in x:
        interp.set_tensor(inp["index"], tflm.quantize_input(row.reshape(inp["shape"]), inp))
        interp.invoke()
        rows.append(interp.get_tensor(out["index"]).reshape(-1).copy())
    return np.stack(rows)


def _accuracy(pred: np.ndarray, y: np.ndarray | None) -> float | None:
    return None if y is None else top1(pred, y)


def parity_report(keras_model, tflite_bytes: bytes, x_val: np.ndarray,
                  y_val: np.ndarray | None = None, tflite_delegates: bool = False) -> ParityReport:
    """Compare float Keras, int8 TFLite and int8 TFLM on `x_val` (and `y_val` if given).

    `y_val` counts as labels only when it holds integer class indices; other targets
    (regression, autoencoders) give agreement without accuracy.
    """
    from tinyprune.training import predict

    x_val = np.asarray(x_val, dtype=np.float32)
    labels = None
    if y_val is not None:
        y = np.asarray(y_val)
        if len(y) != len(x_val):
            raise DataError(f"{len(x_val)} validation inputs but {len(y)} labels; give one label per input")
        if y.ndim == 1 and np.issubdtype(y.dtype, np.integer):
            labels = y
    y_float = np.asarray(predict(keras_model, x_val)).reshape(len(x_val), -1)
    y_lite = tflite_run(tflite_bytes, x_val, delegates=tflite_delegates)
    y_micro = tflm.run(tflite_bytes, x_val)
    diff = np.abs(y_lite.astype(np.float64) - y_micro.astype(np.float64))
    return ParityReport(
        samples=len(x_val),
        labelled=labels is not None,
        float_accuracy=_accuracy(y_float, labels),
        tflite_accuracy=_accuracy(y_lite, labels),
        tflm_accuracy=_accuracy(y_micro, labels),
        agree_float_tflite=agreement(y_float, y_lite),
        agree_float_tflm=agreement(y_float, y_micro),
        agree_tflite_tflm=agreement(y_lite, y_micro),
        max_abs_diff=float(diff.max()) if diff.size else 0.0,
        output_dtype=str(y_lite.dtype),
    )
