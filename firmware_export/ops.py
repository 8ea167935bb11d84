"""Which operators a .tflite uses, which of them TFLite Micro can run, and how to register them.

The table of supported operators and their `tflite::MicroMutableOpResolver` methods is data, in
`tflm_ops.toml` next to this module (with its sources). This module reads the operator set of
every subgraph through the one reader, `tflite_model` (so IF/WHILE bodies count) and maps it onto
that table. It also picks the narrowest registration TFLM offers for each operator (`[narrow]` in
the table: `Register_CONV_2D_INT8()` when every CONV_2D of the model is int8 with int8 weights, ...),
which the export writes and the flash estimate follows. It does not write C (`cexport.py`) and
does not run the model (`tflm.py`).

Example:
    >>> ops = model_ops(data)
    >>> [op.call for op in ops]
    ['AddConv2D(tflite::Register_CONV_2D_INT8())', 'AddReshape()', 'AddSoftmax(tflite::Register_SOFTMAX_INT8())']
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from firmware_export.tflite_model import TfliteModel, parse_tflite

from firmware_export.errors import TflmError

OPS_TABLE = Path(__file__).with_name("tflm_ops.toml")


@dataclass(frozen=True)
class ModelOp:
    """One distinct operator of a model and the resolver method that registers it."""

    name: str  # builtin name ("CONV_2D") or custom code ("TFLM_DECODE")
    custom: bool
    method: str | None  # e.g. "AddConv2D"; None when TFLM has no kernel for it
    registration: str | None = None  # e.g. "Register_CONV_2D_INT8"; None = the generic default
    header: str | None = None  # the TFLM header declaring `registration`

    @property
    def supported(self) -> bool:
        return self.method is not None

    @property
    def narrow(self) -> bool:
        """True when a type-specific (int8-only) registration is used."""
        return self.registration is not None

    @property
    def call(self) -> str:
        """The resolver call as written in C++, e.g. `AddConv2D(tflite::Register_CONV_2D_INT8())`."""
        arg = f"tflite::{self.registration}()" if self.registration else ""
        return f"{self.method}({arg})"


_NARROW_ROLES = ("input", "weights", "output")  # first input, second input, first output


@functools.cache
def op_table() -> tuple[dict[str, str], dict[str, str]]:
    """(builtin name -> method, custom code -> method), from tflm_ops.toml."""
    table = tomllib.loads(OPS_TABLE.read_text(encoding="utf-8"))
    return dict(table["builtin"]), dict(table["custom"])


@functools.cache
def narrow_table() -> dict[str, dict[str, str]]:
    """Builtin name -> {function, header, input, weights, output} of its int8-only registration."""
    table = tomllib.loads(OPS_TABLE.read_text(encoding="utf-8"))
    return {name: dict(v) for name, v in table.get("narrow", {}).items()}


# One use of an operator: (name, is_custom, (first input type, second input type, first output type)).
_Use = tuple[str, bool, tuple[str | None, str | None, str | None]]


def _op_uses(model: TfliteModel) -> list[_Use]:
    """Every operator use in every subgraph, with the tensor types it reads and writes."""
    uses: list[_Use] = []
    for sg in model.subgraphs:
        def dtype(i: int, sg=sg) -> str | None:
            return sg.tensors[i].dtype if 0 <= i < len(sg.tensors) else None

        for op in sg.operators:
            types = (dtype(op.inputs[0]) if op.inputs else None, dtype(op.inputs[1]) if len(op.inputs) > 1 else None,
                     dtype(op.outputs[0]) if op.outputs else None)
            uses.append((op.name, op.custom, types))
    return uses


def _narrow_registration(name: str, types: list[tuple[str | None, ...]]) -> tuple[str, str] | None:
    """(function, header) of the int8-only registration for `name` if every use of it has the
    required tensor types, else None."""
    rule = narrow_table().get(name)
    if rule is None or not types:
        return None
    for use in types:
        for role, actual in zip(_NARROW_ROLES, use):
            if role in rule and actual != rule[role]:
                return None
    return rule["function"], rule["header"]


def model_ops(model: "bytes | TfliteModel", narrow: bool = True) -> list[ModelOp]:
    """The distinct operators of every subgraph of `model` (parsed, or .tflite bytes), sorted by
    name, each with its resolver method and, with `narrow` (the default), the int8-only
    registration when TFLM has one that fits every use."""
    builtin, custom = op_table()
    if not isinstance(model, TfliteModel):
        model = parse_tflite(bytes(model))
    found: dict[tuple[str, bool], list] = {}
    for name, is_custom, types in _op_uses(model):
        found.setdefault((name, is_custom), []).append(types)
    result = []
    for (name, is_custom), types in found.items():
        method = (custom if is_custom else builtin).get(name)
        reg = _narrow_registration(name, types) if narrow and method and not is_custom else None
        result.append(ModelOp(name, is_custom, method, *(reg or (None, None))))
    return sorted(result, key=lambda op: op.name)


def check_supported(ops: list[ModelOp], source: str = "the model") -> None:
    """Raise TflmError naming every operator TFLM cannot run (one line)."""
    missing = [op.name + (" (custom)" if op.custom else "") for op in ops if not op.supported]
    if missing:
        raise TflmError(
            f"{source} uses {len(missing)} operator(s) TensorFlow Lite Micro does not support: "
            f"{', '.join(missing)}; replace those layers or convert with TFLITE_BUILTINS_INT8 only"
        )
