"""THE .tflite reader of firmware_export: every subgraph's tensors and operators, as dataclasses.

inspect, fit, export and compress all read a model through `parse_tflite` / `read_tflite`:

- the bytes are validated first (`validate.check_structure`: every offset, vector and string in
  the file; then `validate.check_model` on the parsed model: indices, shapes, sizes), so nothing
  downstream (TFLM included) sees a malformed flatbuffer;
- every subgraph is read (`TfliteModel.subgraphs`); `tensors`, `operators`, `inputs`, `outputs`
  are subgraph 0's (the model's entry point), as before;
- one operator-code rule for everyone: `effective_builtin_code` = max(deprecated_builtin_code,
  builtin_code) (TFLite's rule: old converters wrote codes < 127 only in the deprecated field);
- constant data is kept as views into the file's bytes at parse time, so `constant(i)` does not
  re-parse the flatbuffer.

Uses the TFLite schema bindings that ship inside the `tflite-micro` package, so it needs
no TensorFlow. It only reads; it does not run the model (see `tflm.py`) nor estimate costs
(see `estimate.py`).

Example:
    >>> m = read_tflite("model.tflite")
    >>> sorted(m.op_names)
    ['CONV_2D', 'FULLY_CONNECTED', 'SOFTMAX']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from firmware_export.errors import InputFileError, TfliteFormatError
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

_TFLITE_IDENTIFIER = b"TFL3"  # file identifier at bytes 4..8 of every .tflite

TENSOR_TYPES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
_TENSOR_TYPES = TENSOR_TYPES
_BUILTIN_OPS = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}

_NUMPY_DTYPES = {
    "FLOAT32": np.float32, "FLOAT16": np.float16, "INT32": np.int32, "UINT8": np.uint8,
    "INT64": np.int64, "BOOL": np.bool_, "INT16": np.int16, "INT8": np.int8,
    "FLOAT64": np.float64, "UINT32": np.uint32, "UINT16": np.uint16, "UINT64": np.uint64,
}

ELEMENT_BITS = {
    "FLOAT32": 32, "FLOAT16": 16, "INT32": 32, "UINT8": 8, "INT64": 64, "BOOL": 8,
    "INT16": 16, "INT8": 8, "FLOAT64": 64, "UINT32": 32, "UINT16": 16, "UINT64": 64,
    "INT4": 4, "UINT4": 4, "INT2": 2, "BFLOAT16": 16, "COMPLEX64": 64, "COMPLEX128": 128,
}
_ELEMENT_BITS = ELEMENT_BITS


def effective_builtin_code(code: Any) -> int:
    """The operator code of an OperatorCode(T): max(deprecated_builtin_code, builtin_code), TFLite's rule."""
    if hasattr(code, "BuiltinCode"):  # the flatbuffer accessor class
        return max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
    return max(int(code.builtinCode), int(code.deprecatedBuiltinCode))


@dataclass(frozen=True)
class Tensor:
    """One tensor of a subgraph."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # TFLite type name, e.g. "INT8"
    buffer: int  # buffer index; 0 means no constant data
    const_bytes: int  # bytes of constant data stored in the file (0 for activations)
    scale: tuple[float, ...] = ()
    zero_point: tuple[int, ...] = ()
    quantized_dimension: int = 0
    is_variable: bool = False

    @property
    def is_constant(self) -> bool:
        return self.const_bytes > 0

    @property
    def num_elements(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        """Bytes of the tensor's data at run time (unpacked element size)."""
        return (self.num_elements * ELEMENT_BITS.get(self.dtype, 8) + 7) // 8

    @property
    def numpy_dtype(self) -> Any:
        return _NUMPY_DTYPES.get(self.dtype)


@dataclass(frozen=True)
class Operator:
    """One operator: its name (builtin name, or the custom code) and tensor indices."""

    index: int
    name: str  # "CONV_2D", or a custom op's code such as "TFLM_DECODE"
    builtin_code: int
    custom: bool
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class OpCode:
    """One entry of the operator-code table: effective builtin code, name, custom or not."""

    builtin_code: int
    name: str  # "CONV_2D", or the custom code ("TFLM_DECODE")
    custom: bool


@dataclass
class Subgraph:
    """One subgraph: its tensors, operators and input/output tensor indices."""

    index: int
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]
    name: str = ""


@dataclass
class TfliteModel:
    """A validated, parsed .tflite: every subgraph, the operator codes, and file facts.

    `tensors`, `operators`, `inputs` and `outputs` are subgraph 0's (the entry point).
    """

    size_bytes: int
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]
    subgraph_count: int
    description: str
    data: bytes = field(repr=False, default=b"")
    subgraphs: list[Subgraph] = field(repr=False, default_factory=list)
    op_codes: list[OpCode] = field(repr=False, default_factory=list)
    buffer_data: list[np.ndarray | None] = field(repr=False, default_factory=list)  # views into `data`

    @property
    def op_names(self) -> set[str]:
        return {op.name for op in self.operators}

    def used_op_codes(self) -> set[tuple[str, bool]]:
        """(name, is_custom) of every operator used in any subgraph (IF/WHILE bodies count)."""
        return {(op.name, op.custom) for sg in self.subgraphs for op in sg.operators}

    @property
    def weight_bytes(self) -> int:
        """Bytes of constant tensor data (weights, biases, tables)."""
        return sum(t.const_bytes for t in self.tensors)

    def constant(self, index: int, subgraph: int = 0) -> np.ndarray:
        """The stored data of constant tensor `index`, shaped, in its numpy dtype (no re-parse)."""
        t = self.subgraphs[subgraph].tensors[index] if self.subgraphs else self.tensors[index]
        if not t.is_constant or t.numpy_dtype is None:
            raise TfliteFormatError(f"tensor {index} ({t.name!r}) has no constant data of a numpy type")
        raw = self.buffer_data[t.buffer] if t.buffer < len(self.buffer_data) else None
        if raw is None:
            raise TfliteFormatError(f"tensor {index} ({t.name!r}) keeps its data outside the flatbuffer body")
        count = t.num_elements
        return np.frombuffer(raw, dtype=t.numpy_dtype, count=count).reshape(t.shape)

    def input_tensors(self) -> list[Tensor]:
        return [self.tensors[i] for i in self.inputs]

    def output_tensors(self) -> list[Tensor]:
        return [self.tensors[i] for i in self.outputs]


def _options_dict(op: Any) -> dict:
    opts = op.builtinOptions
    if opts is None:
        return {}
    return {k: v for k, v in vars(opts).items() if isinstance(v, (int, float, bool))}


def _quant(t: Any) -> tuple[tuple[float, ...], tuple[int, ...], int]:
    q = t.quantization
    if q is None or q.scale is None:
        return (), (), 0
    zp = tuple(int(z) for z in q.zeroPoint) if q.zeroPoint is not None else ()
    return tuple(float(s) for s in q.scale), zp, int(q.quantizedDimension)


def _tensor(i: int, t: Any, buffers: list) -> Tensor:
    buf = buffers[t.buffer] if t.buffer < len(buffers) else None
    nbytes = 0
    if buf is not None:
        if buf.data is not None:
            nbytes = len(buf.data)
        elif getattr(buf, "size", 0):
            nbytes = int(buf.size)  # stored outside the flatbuffer body (>2 GB format)
    scale, zp, qdim = _quant(t)
    return Tensor(
        index=i,
        name=(t.name or b"").decode("utf-8", "replace"),
        shape=tuple(int(d) for d in (t.shape if t.shape is not None else ())),
        dtype=TENSOR_TYPES.get(t.type, f"TYPE_{t.type}"),
        buffer=int(t.buffer),
        const_bytes=nbytes,
        scale=scale, zero_point=zp, quantized_dimension=qdim,
        is_variable=bool(t.isVariable),
    )


def _op_code(c: Any) -> OpCode:
    builtin = effective_builtin_code(c)
    custom = builtin == schema.BuiltinOperator.CUSTOM
    name = (c.customCode or b"").decode("utf-8", "replace") if custom else _BUILTIN_OPS.get(builtin, f"OP_{builtin}")
    return OpCode(builtin, name, custom)


def parse_tflite(data: bytes, source: str = "<bytes>") -> TfliteModel:
    """Validate and parse .tflite bytes. Raises TfliteFormatError (or TflmError) with a one-line reason."""
    from firmware_export import validate

    data = bytes(data)
    validate.check_structure(data, source)
    try:
        m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    except Exception:  # the object API's reads are bounds-checked; any failure is a damaged file
        raise TfliteFormatError(
            f"{source} is a damaged or truncated .tflite file (parser stopped early); "
            "re-export it from the converter"
        ) from None
    validate.check_model(m, len(data), source)
    buffers = m.buffers or []
    codes = [_op_code(c) for c in (m.operatorCodes or [])]
    subgraphs = []
    for s, sg in enumerate(m.subgraphs):
        tensors = [_tensor(i, t, buffers) for i, t in enumerate(sg.tensors or [])]
        operators = []
        for i, op in enumerate(sg.operators or []):
            code = codes[op.opcodeIndex]
            operators.append(Operator(
                index=i, name=code.name, builtin_code=code.builtin_code, custom=code.custom,
                inputs=tuple(int(x) for x in (op.inputs if op.inputs is not None else ())),
                outputs=tuple(int(x) for x in (op.outputs if op.outputs is not None else ())),
                options=_options_dict(op),
            ))
        subgraphs.append(Subgraph(s, tensors, operators,
                                  [int(x) for x in (sg.inputs if sg.inputs is not None else ())],
                                  [int(x) for x in (sg.outputs if sg.outputs is not None else ())],
                                  (sg.name or b"").decode("utf-8", "replace")))
    main = subgraphs[0]
    return TfliteModel(
        size_bytes=len(data),
        tensors=main.tensors,
        operators=main.operators,
        inputs=main.inputs,
        outputs=main.outputs,
        subgraph_count=len(subgraphs),
        description=(m.description or b"").decode("utf-8", "replace"),
        data=data,
        subgraphs=subgraphs,
        op_codes=codes,
        buffer_data=[b.data if b.data is not None else None for b in buffers],
    )


def read_tflite(path: str | Path) -> TfliteModel:
    """Read, validate and parse a .tflite file. Raises InputFileError or TfliteFormatError."""
    from firmware_export.validate import MAX_MODEL_BYTES

    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such file; give the path to a .tflite model")
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise TfliteFormatError(f"{path} is {size:,} bytes, more than the {MAX_MODEL_BYTES >> 20} MiB tinyprune "
                                "accepts for a microcontroller model; check that it is the right file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputFileError(f"{path} cannot be read ({e.strerror}); check its permissions") from None
    return parse_tflite(data, source=str(path))
