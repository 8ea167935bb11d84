"""Check that .tflite bytes are a well-formed model before anything (TFLM included) reads them.

TFLite Micro trusts its flatbuffer: it does not verify it, and a bad offset, index or shape makes
it read out of bounds (segfaults seen: out-of-range tensor, buffer and opcode indices, a shape of
[1, 65536, 65536, 16], rank 64). So every .tflite goes through two checks here first:

1. `check_structure(data)` walks the flatbuffer itself, table by table, against the TFLite schema
   (Model, OperatorCode, SubGraph, Tensor, QuantizationParameters, Operator, Buffer, Metadata,
   SignatureDef, TensorMap): every table's vtable and inline fields, every vector and string
   (strings NUL-terminated), every offset inside the file. Union tables (builtin options, custom
   quantization) and tables of newer schema fields are checked as tables (vtable and inline
   fields); the vectors inside builtin options are then read by the schema's Python object API,
   whose reads are bounds-checked (`tflite_model.parse_tflite` maps its errors to
   TfliteFormatError).
2. `check_model(model_t, size)` checks what the bytes mean, on the parsed `schema.ModelT`:
   operator codes, tensor, buffer and subgraph indices in range (input -1 = optional), tensor
   types known, shapes non-negative with rank <= MAX_RANK and at most MAX_TENSOR_BYTES, constant
   data at least as long as its shape needs, external buffers inside the file, per-channel
   quantization consistent with the shape, subgraph 0 with inputs and outputs, and no sparse
   tensors (TFLM has no sparse kernels).

Both raise `TfliteFormatError` (or `TflmError` for what is valid TFLite but not for TFLM) with a
one-line reason. This module only checks; `tflite_model.py` is the reader that calls it.
"""

from __future__ import annotations

import struct
from typing import Any

from firmware_export.errors import TfliteFormatError, TflmError

MAX_MODEL_BYTES = 64 << 20  # 64 MiB: 4x the largest external flash of any profile; larger is not a TFLM model
MAX_RANK = 6  # TFLM's RuntimeShape::kMaxSize (tensorflow/lite/kernels/internal/runtime_shape.h)
MAX_TENSOR_BYTES = 1 << 30  # 1 GiB; TFLM counts elements and bytes in int32, far above any MCU memory
_MIN_BYTES = 8  # root offset + file identifier

# Field kinds: ("s", n) scalar of n bytes; ("v", n) vector of n-byte scalars; ("str",) string;
# ("t", Name) table; ("vt", Name) vector of tables; Name None = any table (checked as a table).
_S1, _S4, _S8 = ("s", 1), ("s", 4), ("s", 8)
_SCHEMA: dict[str, dict[int, tuple]] = {  # vtable slot byte offset -> kind (schema_py_generated Offset(n))
    "Model": {4: _S4, 6: ("vt", "OperatorCode"), 8: ("vt", "SubGraph"), 10: ("str",), 12: ("vt", "Buffer"),
              14: ("v", 4), 16: ("vt", "Metadata"), 18: ("vt", "SignatureDef"), 20: ("vt", None),
              22: ("vt", None)},
    "OperatorCode": {4: _S1, 6: ("str",), 8: _S4, 10: _S4},
    "SubGraph": {4: ("vt", "Tensor"), 6: ("v", 4), 8: ("v", 4), 10: ("vt", "Operator"), 12: ("str",), 14: _S4},
    "Tensor": {4: ("v", 4), 6: _S1, 8: _S4, 10: ("str",), 12: ("t", "QuantizationParameters"), 14: _S1,
               16: ("t", None), 18: ("v", 4), 20: _S1, 22: ("vt", None), 24: _S4},
    "QuantizationParameters": {4: ("v", 4), 6: ("v", 4), 8: ("v", 4), 10: ("v", 8), 12: _S1, 14: ("t", None),
                               16: _S4},
    "Operator": {4: _S4, 6: ("v", 4), 8: ("v", 4), 10: _S1, 12: ("t", None), 14: ("v", 1), 16: _S1,
                 18: ("v", 1), 20: ("v", 4), 22: _S8, 24: _S8, 26: _S1, 28: ("t", None), 30: _S4},
    "Buffer": {4: ("v", 1), 6: _S8, 8: _S8},
    "Metadata": {4: ("str",), 6: _S4},
    "SignatureDef": {4: ("vt", "TensorMap"), 6: ("vt", "TensorMap"), 8: ("str",), 12: _S4},
    "TensorMap": {4: ("str",), 6: _S4},
}


def _bad(source: str, what: str) -> TfliteFormatError:
    return TfliteFormatError(f"{source} is a damaged .tflite file ({what}); re-export it from the converter")


class _Walker:
    """Bounds-checked walk of a flatbuffer against `_SCHEMA`."""

    def __init__(self, data: bytes, source: str):
        self.data, self.n, self.source = data, len(data), source
        self.steps = 0

    def u32(self, pos: int, what: str) -> int:
        if pos < 0 or pos + 4 > self.n:
            raise _bad(self.source, f"{what} at byte {pos} is past the end of the file")
        return struct.unpack_from("<I", self.data, pos)[0]

    def table(self, pos: int, name: str | None, what: str) -> None:
        self.steps += 1
        if pos < 0 or pos + 4 > self.n:
            raise _bad(self.source, f"{what} starts past the end of the file")
        vt = pos - struct.unpack_from("<i", self.data, pos)[0]
        if vt < 0 or vt + 4 > self.n:
            raise _bad(self.source, f"{what} has its field table outside the file")
        vt_size, obj_size = struct.unpack_from("<HH", self.data, vt)
        if vt_size < 4 or vt_size % 2 or vt + vt_size > self.n or obj_size < 4 or pos + obj_size > self.n:
            raise _bad(self.source, f"{what} has a field table of impossible size")
        fields = _SCHEMA.get(name, {}) if name else {}
        for slot in range(4, vt_size, 2):
            off = struct.unpack_from("<H", self.data, vt + slot)[0]
            if not off:
                continue
            kind = fields.get(slot, ("s", 1))  # unknown field: at least its first byte is inside the table
            width = kind[1] if kind[0] == "s" else 4
            if off + width > obj_size:
                raise _bad(self.source, f"{what} has field {(slot - 4) // 2} outside the table")
            if kind[0] != "s":
                self.child(pos + off, kind, f"{what} field {(slot - 4) // 2}")

    def child(self, at: int, kind: tuple, what: str) -> None:
        target = at + self.u32(at, what)
        if kind[0] == "t":
            self.table(target, kind[1], what)
            return
        length = self.u32(target, what)
        width = kind[1] if kind[0] == "v" else 1 if kind[0] == "str" else 4
        end = target + 4 + length * width
        if end > self.n or (kind[0] == "str" and (end >= self.n or self.data[end] != 0)):
            raise _bad(self.source, f"{what}: a {'string' if kind[0] == 'str' else 'vector'} of {length} "
                                    "elements runs past the end of the file")
        if kind[0] == "vt":
            for i in range(length):
                elem = target + 4 + 4 * i
                self.table(elem + self.u32(elem, what), kind[1], f"{what}[{i}]")


def check_structure(data: bytes, source: str = "<bytes>") -> None:
    """Raise TfliteFormatError unless every offset, vector and string of `data` lies inside it."""
    if len(data) > MAX_MODEL_BYTES:
        raise TfliteFormatError(f"{source} is {len(data):,} bytes, more than the {MAX_MODEL_BYTES >> 20} MiB "
                                "tinyprune accepts for a microcontroller model; check that it is the right file")
    if len(data) < _MIN_BYTES or data[4:8] != b"TFL3":
        raise TfliteFormatError(f"{source} is not a .tflite flatbuffer (no 'TFL3' identifier); "
                                "convert the Keras model first (tinyprune run or tf.lite.TFLiteConverter)")
    w = _Walker(bytes(data), source)
    w.table(w.u32(0, "the root offset"), "Model", "the model table")


def _ints(v: Any) -> list[int]:
    return [] if v is None else [int(x) for x in v]


def _elements(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def check_model(m: Any, size: int, source: str = "<bytes>") -> None:
    """Raise TfliteFormatError / TflmError unless the parsed `schema.ModelT` `m` makes sense."""
    from firmware_export.tflite_model import ELEMENT_BITS, TENSOR_TYPES, effective_builtin_code

    codes = m.operatorCodes or []
    subgraphs = m.subgraphs or []
    buffers = m.buffers or []
    if not subgraphs:
        raise _bad(source, "no subgraph")
    for k, c in enumerate(codes):
        if effective_builtin_code(c) < 0:
            raise _bad(source, f"operator code {k} is negative")
    for k, b in enumerate(buffers):
        off, sz = int(b.offset or 0), int(b.size or 0)
        if off > 1 and (off + sz > size):
            raise _bad(source, f"buffer {k} points at bytes {off}..{off + sz}, past the end of the file")
    for s, sg in enumerate(subgraphs):
        tensors = sg.tensors or []
        nt = len(tensors)
        where = f"subgraph {s}"
        for t_i, t in enumerate(tensors):
            tw = f"{where} tensor {t_i}"
            shape = _ints(t.shape)
            if len(shape) > MAX_RANK:
                raise TflmError(f"{source}: {tw} has rank {len(shape)}; TFLite Micro supports at most {MAX_RANK} "
                                "dimensions")
            if any(d < 0 for d in shape):
                raise _bad(source, f"{tw} has a negative dimension in shape {shape}")
            name = TENSOR_TYPES.get(t.type)
            if name is None:
                raise _bad(source, f"{tw} has unknown type {t.type}")
            nbytes = (_elements(shape) * ELEMENT_BITS.get(name, 8) + 7) // 8
            if nbytes > MAX_TENSOR_BYTES:
                raise _bad(source, f"{tw} of shape {shape} would take {nbytes:,} bytes (limit "
                                   f"{MAX_TENSOR_BYTES >> 20} MiB)")
            if t.buffer >= len(buffers) and t.buffer:
                raise _bad(source, f"{tw} names buffer {t.buffer} of {len(buffers)}")
            if t.sparsity is not None:
                raise TflmError(f"{source}: {tw} is sparse; TFLite Micro has no sparse tensors (convert without "
                                "sparsity)")
            buf = buffers[t.buffer] if t.buffer < len(buffers) else None
            stored = len(buf.data) if buf is not None and buf.data is not None else int(getattr(buf, "size", 0) or 0)
            if stored and stored < nbytes and name != "STRING":
                raise _bad(source, f"{tw} holds {stored} bytes of data but its shape {shape} needs {nbytes}")
            q = t.quantization
            if q is not None and q.scale is not None and len(q.scale):
                nscale, nzp = len(q.scale), 0 if q.zeroPoint is None else len(q.zeroPoint)
                if nzp != nscale:
                    raise _bad(source, f"{tw} has {nscale} scales but {nzp} zero points")
                qd = int(q.quantizedDimension)
                if nscale > 1 and not 0 <= qd < max(len(shape), 1):
                    raise _bad(source, f"{tw} has per-channel quantization on dimension {qd} of shape {shape}")
        for kind, idx in (("input", sg.inputs), ("output", sg.outputs)):
            for i in _ints(idx):
                if not 0 <= i < nt:
                    raise _bad(source, f"{where} {kind} tensor {i} is out of range (0..{nt - 1})")
        if s == 0 and (not _ints(sg.inputs) or not _ints(sg.outputs)):
            raise TfliteFormatError(f"{source}: the main subgraph has no {'input' if not _ints(sg.inputs) else 'output'} "
                                    "tensor; tinyprune needs a model with inputs and outputs (re-export it)")
        for o_i, op in enumerate(sg.operators or []):
            ow = f"{where} operator {o_i}"
            if not 0 <= op.opcodeIndex < len(codes):
                raise _bad(source, f"{ow} has operator code index {op.opcodeIndex} of {len(codes)}")
            for kind, idx, low in (("input", op.inputs, -1), ("output", op.outputs, 0),
                                   ("intermediate", op.intermediates, 0)):
                for i in _ints(idx):
                    if not low <= i < nt:
                        raise _bad(source, f"{ow} {kind} tensor {i} is out of range (0..{nt - 1})")
            for opts in (op.builtinOptions, getattr(op, "builtinOptions2", None)):
                for attr, v in getattr(opts, "__dict__", {}).items():
                    if attr.lower().endswith("subgraphindex") and isinstance(v, int) and not 0 <= v < len(subgraphs):
                        raise _bad(source, f"{ow} refers to subgraph {v} of {len(subgraphs)}")
    for sig in m.signatureDefs or []:
        if not 0 <= int(sig.subgraphIndex) < len(subgraphs):
            raise _bad(source, f"a signature refers to subgraph {sig.subgraphIndex} of {len(subgraphs)}")
