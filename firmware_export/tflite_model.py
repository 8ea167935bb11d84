"""Read a .tflite flatbuffer into plain dataclasses: tensors, operators, buffers.

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

_TENSOR_TYPES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
_BUILTIN_OPS = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}

_NUMPY_DTYPES = {
    "FLOAT32": np.float32, "FLOAT16": np.float16, "INT32": np.int32, "UINT8": np.uint8,
    "INT64": np.int64, "BOOL": np.bool_, "INT16": np.int16, "INT8": np.int8,
    "FLOAT64": np.float64, "UINT32": np.uint32, "UINT16": np.uint16, "UINT64": np.uint64,
}

_ELEMENT_BITS = {
    "FLOAT32": 32, "FLOAT16": 16, "INT32": 32, "UINT8": 8, "INT64": 64, "BOOL": 8,
    "INT16": 16, "INT8": 8, "FLOAT64": 64, "UINT32": 32, "UINT16": 16, "UINT64": 64,
    "INT4": 4, "UINT4": 4, "INT2": 2, "BFLOAT16": 16, "COMPLEX64": 64, "COMPLEX128": 128,
}


@dataclass(frozen=True)
class Tensor:
    """One tensor of the first subgraph."""

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
        return (self.num_elements * _ELEMENT_BITS.get(self.dtype, 8) + 7) // 8

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


@dataclass
class TfliteModel:
    """A parsed .tflite: the first subgraph's tensors and operators, and file facts."""

    size_bytes: int
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: list[int]
    outputs: list[int]
    subgraph_count: int
    description: str
    data: bytes = field(repr=False, default=b"")

    @property
    def op_names(self) -> set[str]:
        return {op.name for op in self.operators}

    @property
    def weight_bytes(self) -> int:
        """Bytes of constant tensor data (weights, biases, tables)."""
        return sum(t.const_bytes for t in self.tensors)

    def constant(self, index: int) -> np.ndarray:
        """The stored data of constant tensor `index`, shaped, in its numpy dtype."""
        t = self.tensors[index]
        if not t.is_constant or t.numpy_dtype is None:
            raise ValueError(f"tensor {index} ({t.name}) has no constant data of a numpy type")
        m = schema.Model.GetRootAsModel(self.data, 0)
        raw = m.Buffers(t.buffer).DataAsNumpy()
        return np.frombuffer(raw.tobytes(), dtype=t.numpy_dtype).reshape(t.shape)

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


def parse_tflite(data: bytes, source: str = "<bytes>") -> TfliteModel:
    """Parse .tflite bytes. Raises TfliteFormatError with a one-line reason."""
    if len(data) < 8 or data[4:8] != _TFLITE_IDENTIFIER:
        raise TfliteFormatError(
            f"{source} is not a .tflite flatbuffer (no 'TFL3' identifier); "
            "convert the Keras model first (tinyprune run or tf.lite.TFLiteConverter)"
        )
    try:
        m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
        sg = m.subgraphs[0]
        buffers = m.buffers or []
        tensors = []
        for i, t in enumerate(sg.tensors or []):
            buf = buffers[t.buffer] if t.buffer < len(buffers) else None
            nbytes = 0
            if buf is not None:
                if buf.data is not None:
                    nbytes = len(buf.data)
                elif getattr(buf, "size", 0):
                    nbytes = int(buf.size)  # stored outside the flatbuffer body (>2 GB format)
            scale, zp, qdim = _quant(t)
            tensors.append(Tensor(
                index=i,
                name=(t.name or b"").decode("utf-8", "replace"),
                shape=tuple(int(d) for d in (t.shape if t.shape is not None else ())),
                dtype=_TENSOR_TYPES.get(t.type, f"TYPE_{t.type}"),
                buffer=int(t.buffer),
                const_bytes=nbytes,
                scale=scale, zero_point=zp, quantized_dimension=qdim,
                is_variable=bool(t.isVariable),
            ))
        operators = []
        for i, op in enumerate(sg.operators or []):
            code = m.operatorCodes[op.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            custom = builtin == schema.BuiltinOperator.CUSTOM
            name = (code.customCode or b"").decode() if custom else _BUILTIN_OPS.get(builtin, f"OP_{builtin}")
            operators.append(Operator(
                index=i, name=name, builtin_code=int(builtin), custom=custom,
                inputs=tuple(int(x) for x in (op.inputs if op.inputs is not None else ())),
                outputs=tuple(int(x) for x in (op.outputs if op.outputs is not None else ())),
                options=_options_dict(op),
            ))
        return TfliteModel(
            size_bytes=len(data),
            tensors=tensors,
            operators=operators,
            inputs=[int(x) for x in sg.inputs],
            outputs=[int(x) for x in sg.outputs],
            subgraph_count=len(m.subgraphs),
            description=(m.description or b"").decode("utf-8", "replace"),
            data=bytes(data),
        )
    except TfliteFormatError:
        raise
    except Exception:  # the flatbuffers runtime raises assorted errors on bad data
        raise TfliteFormatError(
            f"{source} is a damaged or truncated .tflite file (parser stopped early); "
            "re-export it from the converter"
        ) from None


def read_tflite(path: str | Path) -> TfliteModel:
    """Read and parse a .tflite file. Raises InputFileError or TfliteFormatError."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such file; give the path to a .tflite model")
    return parse_tflite(path.read_bytes(), source=str(path))
