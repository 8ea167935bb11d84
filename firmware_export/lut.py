"""TFLM look-up-table (LUT) compression of an int8 .tflite, with honest byte and arena accounting.

A weight tensor whose every output channel holds at most 2^k distinct int8 values (for example
after weight clustering, see `tinyprune.clustering`) can be stored as k-bit indices plus one small
value table per channel. The `tflite_micro.compression` module writes that form: it replaces the
tensor's data with packed indices, stores the tables in an ancillary tensor and inserts a DECODE
operator that rebuilds the int8 weights in the tensor arena before the layer runs. TFLM's
interpreter decodes it; the decoded weights are bit-identical to the uncompressed ones.

What this module does: choose which weight tensors (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
TRANSPOSE_CONV filters) can be compressed at `bits` per index, per channel along the tensor's
quantized dimension, compress them, and measure the resulting file size and the TFLM arena
before and after (the decoded tensors live in the arena, so RAM grows while flash shrinks).

What it does not do: cluster weights (it only compresses what is already clustered), use
per-tensor tables (per-channel int8 scales make a per-tensor table far larger than 2^k
entries, and a quick team test saw wrong outputs with them; per-channel tables are bit-exact), or change any value. It never imports TensorFlow.

EXPERIMENTAL on Cortex-M: TFLM documents LUT decoding as verified on x86 and Xtensa only, and
some optimized (e.g. CMSIS-NN) kernels read weights in Prepare, before DECODE has run. Check the
compressed model on the device before relying on it.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass

import numpy as np

from firmware_export.tflm import ArenaReport, measure_arena
from tinyprune.errors import ConfigError, TfliteFormatError

MIN_BITS, MAX_BITS = 2, 7  # tinyprune's range; the DCM bitwidth field allows 1..7 (compression/lut.py)

EXPERIMENTAL_NOTE = ("LUT decoding is experimental on Cortex-M: TFLM documents it as verified on x86 and "
                     "Xtensa only; check the compressed model on your device")

# A DECODE op, its output tensor, the ancillary tensor and their buffers add flatbuffer bytes
# beyond the packed indices + tables. Measured here on the digits demo CNN (clustered to 16
# values): each compressed tensor cost 342..592 bytes more than that payload (marginal, with the
# others compressed too). A tensor is compressed only if its payload saves more than this.
DECODE_OVERHEAD_BYTES = 600
DCM_HEADER_BYTES = 16  # DecodeCommonMetadata header in each ancillary tensor (compression/decode.py)

_FILTER_INPUT = 1  # the filter is input 1 of each op below (TFLite builtin op definitions)


@dataclass(frozen=True)
class TensorPlan:
    """One candidate weight tensor and what LUT compression does (or would do) to it."""

    name: str
    op: str
    subgraph: int
    tensor: int
    shape: tuple[int, ...]
    axis: int  # channel axis of the value tables
    channels: int
    max_values: int  # most distinct int8 values in any channel
    index_bits: int  # bits per index if compressed (the fewest that hold max_values)
    dense_bytes: int
    lut_bytes: int  # packed indices + value tables + DCM header (flatbuffer overhead excluded)
    compress: bool
    reason: str = ""  # why it is left dense


@dataclass(frozen=True)
class LutResult:
    """A LUT-compressed .tflite and what it costs and saves, all measured."""

    data: bytes
    bits: int
    tensors: tuple[TensorPlan, ...]
    dense_bytes: int  # the int8 .tflite before compression
    compressed_bytes: int  # the .tflite written here (what goes into flash)
    dense_arena: ArenaReport | None
    compressed_arena: ArenaReport | None

    @property
    def saved_bytes(self) -> int:
        return self.dense_bytes - self.compressed_bytes

    @property
    def flash_fraction(self) -> float:
        return self.compressed_bytes / self.dense_bytes

    @property
    def extra_arena_bytes(self) -> int | None:
        """Extra arena (32-bit target) the decoded tensors need; None when not measured."""
        if self.dense_arena is None or self.compressed_arena is None:
            return None
        return self.compressed_arena.target_bytes - self.dense_arena.target_bytes

    def to_dict(self) -> dict:
        return {
            "method": "tflm-lut", "bits": self.bits, "dense_int8_bytes": self.dense_bytes,
            "compressed_bytes": self.compressed_bytes, "saved_bytes": self.saved_bytes,
            "flash_fraction": round(self.flash_fraction, 4),
            "arena_bytes_target32_dense": self.dense_arena.target_bytes if self.dense_arena else None,
            "arena_bytes_target32_compressed": self.compressed_arena.target_bytes if self.compressed_arena else None,
            "extra_arena_bytes_target32": self.extra_arena_bytes,
            "tensors": [vars(t) | {"shape": list(t.shape)} for t in self.tensors],
            "note": EXPERIMENTAL_NOTE,
        }


def _compression():
    from tflite_micro.tensorflow.lite.micro.compression import compress, model_editor, spec

    return compress, model_editor, spec


def check_bits(bits: int) -> None:
    if not MIN_BITS <= int(bits) <= MAX_BITS:
        raise ConfigError(f"LUT index bits must be in {MIN_BITS}..{MAX_BITS}, got {bits}")


def channel_value_counts(array: np.ndarray, axis: int) -> np.ndarray:
    """Number of distinct values in each slice of `array` along `axis`."""
    moved = np.moveaxis(array, axis, 0).reshape(array.shape[axis], -1)
    return np.array([len(np.unique(row)) for row in moved], dtype=np.int64)


def index_bits_for(values: int) -> int:
    """The fewest index bits that address `values` table entries (at least 1)."""
    return max(1, int(values - 1).bit_length())


def lut_payload_bytes(num_elements: int, channels: int, bits: int, table_len: int) -> int:
    """Packed k-bit indices + one int8 table of `table_len` per channel + the DCM header."""
    return -(-num_elements * bits // 8) + channels * table_len + DCM_HEADER_BYTES


def read_model(data: bytes):
    _, model_editor, _ = _compression()
    try:
        return model_editor.read(bytes(data))
    except Exception as e:  # the flatbuffer reader raises assorted errors on garbage
        raise TfliteFormatError(f"not a readable .tflite flatbuffer ({type(e).__name__})") from None


def _plan_tensor(t, opname: str, subgraph: int, bits: int) -> TensorPlan:
    """The plan for one filter tensor (a tflite_micro model_editor Tensor)."""
    arr = t.array
    name = t.name or f"tensor {t.index}"
    if arr.dtype != np.int8:
        return TensorPlan(name, opname, subgraph, t.index, tuple(arr.shape), 0, 0, 0, 0, arr.nbytes, arr.nbytes,
                          False, f"{arr.dtype} weights; only int8 is compressed")
    q = t.quantization
    axis = int(q.axis) if q is not None and q.axis is not None else 0
    if axis not in (0, arr.ndim - 1):
        axis = 0  # the DECODE kernels accept axis 0 or the last axis only (compression/lut.py)
    max_values = int(channel_value_counts(arr, axis).max())
    need = index_bits_for(max_values)
    payload = lut_payload_bytes(arr.size, arr.shape[axis], need, max_values)
    reason = ""
    if need > bits:
        reason = f"{max_values} values in a channel need {need} bits > {bits}; cluster it first"
    elif arr.nbytes - payload <= DECODE_OVERHEAD_BYTES:
        reason = "too small to save flash"
    return TensorPlan(name, opname, subgraph, t.index, tuple(arr.shape), axis, arr.shape[axis], max_values, need,
                      arr.nbytes, payload, not reason, reason)


def plan_lut(data: bytes, bits: int) -> list[TensorPlan]:
    """Which weight tensors of an int8 .tflite can be LUT-compressed with at most `bits` per index."""
    check_bits(bits)
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    filter_ops = {schema.BuiltinOperator.CONV_2D: "CONV_2D",
                  schema.BuiltinOperator.DEPTHWISE_CONV_2D: "DEPTHWISE_CONV_2D",
                  schema.BuiltinOperator.FULLY_CONNECTED: "FULLY_CONNECTED",
                  schema.BuiltinOperator.TRANSPOSE_CONV: "TRANSPOSE_CONV"}
    model = read_model(data)
    plans: list[TensorPlan] = []
    seen: set[int] = set()
    for sg_index, sg in enumerate(model.subgraphs):
        for op in sg.operators:
            if op.opcode not in filter_ops or len(op.inputs) <= _FILTER_INPUT:
                continue
            t = op.inputs[_FILTER_INPUT]
            if t is None or t.buffer is None or not t.buffer.data or id(t) in seen:
                continue
            seen.add(id(t))
            plans.append(_plan_tensor(t, filter_ops[op.opcode], sg_index, bits))
    return plans


def compress_lut(data: bytes, bits: int = 4, measure: bool = True) -> LutResult:
    """LUT-compress every weight tensor of `data` that fits `bits` per index (per-channel tables).

    Raises ConfigError when no tensor qualifies (the model is not clustered to 2^bits values
    per channel). With `measure`, the TFLM arena of both models is measured.
    """
    check_bits(bits)
    compress, _, spec = _compression()
    plans = plan_lut(data, bits)
    chosen = [p for p in plans if p.compress]
    if not chosen:
        worst = max((p.max_values for p in plans), default=0)
        raise ConfigError(f"no weight tensor has at most {2 ** bits} values per channel (up to {worst} found); "
                          "cluster the model first (tinyprune.clustering.cluster_model) or use more bits")
    specs = [spec.Tensor(subgraph=p.subgraph, tensor=p.tensor,
                         compression=[spec.LookUpTableCompression(index_bitwidth=p.index_bits,
                                                                  mode=spec.PerChannel(axis=p.axis))])
             for p in chosen]
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        out = bytes(compress(bytes(data), specs))
    dense_arena = measure_arena(bytes(data)) if measure else None
    lut_arena = measure_arena(out) if measure else None
    return LutResult(out, bits, tuple(plans), len(data), len(out), dense_arena, lut_arena)
