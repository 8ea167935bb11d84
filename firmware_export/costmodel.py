"""Per-operator work and activation memory of a .tflite, from its real tensor shapes.

For every operator of the first subgraph this computes
- `macs`: multiply-accumulates (convolutions, depthwise, fully connected, matmuls), and
- `elements`: element-wise work (outputs of adds and activations, the window reads of pooling,
  the elements moved by reshapes/concats), the part of a layer that is not MACs;
and the activation memory live while it runs (every non-constant tensor produced before or by
the op and read by it or later: a lower bound on what TFLM's planner must hold at that point).
The op with the most live bytes is the peak-memory op.

It does not turn work into time (`estimate.py` does, with per-core constants) and does not
run the model (`tflm.py` measures the real arena). No TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from firmware_export.tflite_model import Operator, TfliteModel

# Op families the latency model prices differently (see latency_calibration.toml).
CONV = "conv"  # CONV_2D, CONV_3D, TRANSPOSE_CONV: im2col + matrix multiply
DEPTHWISE = "depthwise"  # DEPTHWISE_CONV_2D: per-channel, little data reuse
MATMUL = "fc"  # FULLY_CONNECTED, BATCH_MATMUL: every weight read once per inference
ELEMENTWISE = "elementwise"  # everything else: priced per element

_CONV_OPS = {"CONV_2D", "CONV_3D", "TRANSPOSE_CONV"}
_MATMUL_OPS = {"FULLY_CONNECTED", "BATCH_MATMUL"}
# Ops whose element work is the window read per output (pooling).
_POOL_OPS = {"AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D"}
# Ops whose work scales with the input rather than the output (reductions).
_REDUCE_OPS = {"MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "ARG_MAX", "ARG_MIN"}


@dataclass(frozen=True)
class OpCost:
    """Work and memory of one operator."""

    index: int
    op: str  # builtin name, e.g. "CONV_2D"
    family: str  # CONV, DEPTHWISE, MATMUL or ELEMENTWISE
    macs: int
    elements: int  # element-wise work (see module docstring)
    output_shape: tuple[int, ...]
    weight_bytes: int  # constant input bytes (weights, bias, tables)
    io_bytes: int  # bytes of its own non-constant inputs and outputs
    live_bytes: int  # all activation bytes live while it runs


@dataclass(frozen=True)
class ModelCost:
    """Per-op costs of a model and its totals."""

    ops: list[OpCost]

    @property
    def total_macs(self) -> int:
        return sum(o.macs for o in self.ops)

    @property
    def total_elements(self) -> int:
        return sum(o.elements for o in self.ops)

    @property
    def peak_index(self) -> int:
        """Index of the op with the most live activation bytes (-1 for an empty model)."""
        if not self.ops:
            return -1
        return max(self.ops, key=lambda o: (o.live_bytes, -o.index)).index

    @property
    def peak_live_bytes(self) -> int:
        return max((o.live_bytes for o in self.ops), default=0)


def _shape(model: TfliteModel, i: int) -> tuple[int, ...]:
    return model.tensors[i].shape if i >= 0 else ()


def _filter(model: TfliteModel, op: Operator, i: int, rank: int) -> tuple[int, ...]:
    """The shape of `op`'s weight tensor `i`, which must have `rank` dimensions (TfliteFormatError if not)."""
    shape = _shape(model, i)
    if len(shape) != rank:
        from firmware_export.errors import TfliteFormatError

        raise TfliteFormatError(f"operator {op.index} {op.name} has a weight tensor of shape {list(shape)}; "
                                f"{op.name} needs {rank} dimensions (the model is damaged; re-export it)")
    return shape


def _elems(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape else 1


def _family(name: str) -> str:
    if name in _CONV_OPS:
        return CONV
    if name == "DEPTHWISE_CONV_2D":
        return DEPTHWISE
    if name in _MATMUL_OPS:
        return MATMUL
    return ELEMENTWISE


def op_macs(model: TfliteModel, op: Operator) -> int:
    """Multiply-accumulates of one op from its tensor shapes (0 for ops without a matmul)."""
    ins = op.inputs
    out = _shape(model, op.outputs[0]) if op.outputs else ()
    if op.name == "CONV_2D" and len(ins) >= 2:
        co, kh, kw, ci = _filter(model, op, ins[1], 4)  # OHWI filter
        return _elems(out) * kh * kw * ci
    if op.name == "CONV_3D" and len(ins) >= 2:
        kd, kh, kw, ci, _co = _filter(model, op, ins[1], 5)  # DHWIO filter
        return _elems(out) * kd * kh * kw * ci
    if op.name == "DEPTHWISE_CONV_2D" and len(ins) >= 2:
        _one, kh, kw, _c = _filter(model, op, ins[1], 4)  # 1HWC filter (C = in channels x multiplier)
        return _elems(out) * kh * kw
    if op.name == "TRANSPOSE_CONV" and len(ins) >= 3:
        co, kh, kw, _ci = _filter(model, op, ins[1], 4)  # inputs: output_shape, filter, input
        return _elems(_shape(model, ins[2])) * kh * kw * co
    if op.name == "FULLY_CONNECTED" and len(ins) >= 2:
        if len(_shape(model, ins[1])) < 2:
            _filter(model, op, ins[1], 2)
        units, depth = _shape(model, ins[1])[-2:]
        return (_elems(out) // max(units, 1)) * units * depth
    if op.name == "BATCH_MATMUL" and len(ins) >= 2:
        a = _shape(model, ins[0])
        if len(a) < 2:
            _filter(model, op, ins[0], 2)
        depth = a[-2] if op.options.get("adjX") else a[-1]
        return _elems(out) * depth
    return 0


def op_elements(model: TfliteModel, op: Operator) -> int:
    """Element-wise work of one op: outputs written, plus window reads for pooling."""
    out = _shape(model, op.outputs[0]) if op.outputs else ()
    if op.name in _POOL_OPS:
        kh, kw = op.options.get("filterHeight", 1), op.options.get("filterWidth", 1)
        return _elems(out) * kh * kw
    if op.name in _REDUCE_OPS and op.inputs:
        return _elems(_shape(model, op.inputs[0]))
    if _family(op.name) != ELEMENTWISE:
        return _elems(out)  # requantizing the output of a conv / matmul
    return sum(_elems(_shape(model, o)) for o in op.outputs)


def tensor_lifetimes(model: TfliteModel) -> dict[int, tuple[int, int]]:
    """Non-constant tensor -> (first op that needs it, last op that reads it)."""
    n = len(model.operators)
    life: dict[int, list[int]] = {}
    for t in model.inputs:
        life[t] = [0, 0]
    for op in model.operators:
        for t in op.outputs:
            life.setdefault(t, [op.index, op.index])
        for t in op.inputs:
            if t < 0 or model.tensors[t].is_constant:
                continue
            span = life.setdefault(t, [op.index, op.index])
            span[1] = max(span[1], op.index)
    for t in model.outputs:
        if t in life:
            life[t][1] = n - 1
    for t in model.tensors:  # variable tensors (streaming state) persist across the whole run
        if t.is_variable:
            life[t.index] = [0, n - 1]
    return {t: (a, b) for t, (a, b) in life.items() if not model.tensors[t].is_constant}


def model_cost(model: TfliteModel) -> ModelCost:
    """Per-op MACs, element work and live activation bytes of `model`."""
    life = tensor_lifetimes(model)
    ops = []
    for op in model.operators:
        tensors = [model.tensors[i] for i in (*op.inputs, *op.outputs) if i >= 0]
        weights = sum(t.const_bytes for t in tensors if t.is_constant)
        io = sum(t.nbytes for t in tensors if not t.is_constant)
        live = sum(model.tensors[t].nbytes for t, (a, b) in life.items() if a <= op.index <= b)
        ops.append(OpCost(
            index=op.index, op=op.name, family=_family(op.name),
            macs=op_macs(model, op), elements=op_elements(model, op),
            output_shape=_shape(model, op.outputs[0]) if op.outputs else (),
            weight_bytes=weights, io_bytes=io, live_bytes=live,
        ))
    return ModelCost(ops)
