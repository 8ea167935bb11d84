"""Which operators a .tflite uses, which of them TFLite Micro can run, and how to register them.

The table of supported operators and their `tflite::MicroMutableOpResolver` methods is data, in
`tflm_ops.toml` next to this module (with its sources). This module reads the operator set of
every subgraph through the one reader, `tflite_model` (so IF/WHILE bodies count) and maps it onto that
table. It does not write C (`cexport.py`) and does not run the model (`tflm.py`).

Example:
    >>> ops = model_ops(data)
    >>> [op.method for op in ops]
    ['AddConv2D', 'AddFullyConnected', 'AddSoftmax']
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from firmware_export.errors import TflmError
from firmware_export.tflite_model import TfliteModel, parse_tflite

OPS_TABLE = Path(__file__).with_name("tflm_ops.toml")


@dataclass(frozen=True)
class ModelOp:
    """One distinct operator of a model and the resolver method that registers it."""

    name: str  # builtin name ("CONV_2D") or custom code ("TFLM_DECODE")
    custom: bool
    method: str | None  # e.g. "AddConv2D"; None when TFLM has no kernel for it

    @property
    def supported(self) -> bool:
        return self.method is not None


@functools.cache
def op_table() -> tuple[dict[str, str], dict[str, str]]:
    """(builtin name -> method, custom code -> method), from tflm_ops.toml."""
    table = tomllib.loads(OPS_TABLE.read_text(encoding="utf-8"))
    return dict(table["builtin"]), dict(table["custom"])


def model_ops(model: "bytes | TfliteModel") -> list[ModelOp]:
    """The distinct operators of every subgraph of `model` (parsed, or .tflite bytes), sorted by
    name, each with its resolver method."""
    builtin, custom = op_table()
    if not isinstance(model, TfliteModel):
        model = parse_tflite(bytes(model))
    return sorted((ModelOp(name, is_custom, (custom if is_custom else builtin).get(name))
                   for name, is_custom in model.used_op_codes()), key=lambda op: op.name)


def check_supported(ops: list[ModelOp], source: str = "the model") -> None:
    """Raise TflmError naming every operator TFLM cannot run (one line)."""
    missing = [op.name + (" (custom)" if op.custom else "") for op in ops if not op.supported]
    if missing:
        raise TflmError(
            f"{source} uses {len(missing)} operator(s) TensorFlow Lite Micro does not support: "
            f"{', '.join(missing)}; replace those layers or convert with TFLITE_BUILTINS_INT8 only"
        )
