"""Compression of an int8 .tflite that TFLite Micro itself decodes, with honest byte and arena accounting.

TFLM's DECODE operator rebuilds a constant tensor in the arena just before the layer that reads
it. Two of its formats are usable here:

* LUT (`firmware_export.lut`): k-bit indices into one small value table per channel. Needs the
  tensor clustered to at most 2^k values per channel (`tinyprune.prune.clustering`). Costs k/8 of the
  int8 bytes whatever the sparsity.
* PRUNE (`firmware_export.tflm_prune`): a 1-bit-per-element mask plus the non-zero values. Needs
  no clustering and is lossless; costs 1/8 + (1 - sparsity) of the int8 bytes. This is the form
  in which magnitude sparsity saves flash.

`compress_model(data, method, bits)` plans every weight tensor (CONV_2D, DEPTHWISE_CONV_2D,
FULLY_CONNECTED, TRANSPOSE_CONV filters), encodes the ones where the chosen method saves more
than a DECODE costs (`method="auto"` takes the smaller of LUT and PRUNE per tensor), inserts the
DECODE operators with the `tflite_micro.compression` editor, and measures the file and the TFLM
arena before and after: the decoded tensors live in the arena, so RAM grows while flash
shrinks. The decoded weights are bit-identical to the uncompressed ones (tests check the outputs
in the real interpreter).

What it does not do: cluster or prune (the Keras side does), compress biases or activations, or
change any value. It never imports TensorFlow.

EXPERIMENTAL on Cortex-M: TFLM documents DECODE as verified on x86 and Xtensa only, and some
optimized (e.g. CMSIS-NN) kernels read weights in Prepare, before DECODE has run. Check the
compressed model on the device before relying on it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from firmware_export import lut, tflm_prune
from firmware_export.tflm import ArenaReport, measure_arena
from firmware_export.errors import ConfigError, TfliteFormatError

METHODS = ("lut", "prune", "auto")

EXPERIMENTAL_NOTE = ("DECODE (LUT / PRUNE) decompression is experimental on Cortex-M: TFLM documents it as "
                     "verified on x86 and Xtensa only; check the compressed model on your device")

# A DECODE op, its output tensor, the ancillary tensor and their buffers add flatbuffer bytes
# beyond the payload. MEASURED here (compressing one tensor at a time, PRUNE, 70-80% sparse, 52
# tensors of the digits CNN and the MLPerf VWW, KWS and ResNet-8 models): -76..+524 bytes
# (depthwise filters the most; negative = the rebuilt file packs tighter). The quantization moves
# to the decoded copy, so the cost does not grow with the channels. A tensor is compressed only
# if its payload saves more than this bound.
DECODE_OVERHEAD_BYTES = 600

ONLY_INT8 = "only INT8 is compressed"
_FILTER_INPUT = 1  # the filter is input 1 of each op below (TFLite builtin op definitions)


@dataclass(frozen=True)
class TensorPlan:
    """One weight tensor: what each method would cost and what was chosen."""

    name: str
    op: str
    subgraph: int
    tensor: int
    shape: tuple[int, ...]
    axis: int  # channel axis (value tables, zero points)
    channels: int
    max_values: int  # most distinct int8 values in any channel
    index_bits: int  # LUT bits per index that hold max_values
    sparsity: float  # fraction of elements equal to their channel's zero point
    dense_bytes: int
    lut_bytes: int | None  # packed indices + tables + header; None when LUT is not allowed here
    prune_bytes: int | None  # bitmask + kept values + header; None when PRUNE is not allowed here
    method: str | None  # "lut", "prune", or None (stays plain int8)
    reason: str = ""  # why it stays plain int8

    @property
    def compress(self) -> bool:
        return self.method is not None

    @property
    def encoded_bytes(self) -> int:
        return {"lut": self.lut_bytes, "prune": self.prune_bytes}.get(self.method) or self.dense_bytes


@dataclass(frozen=True)
class CompressedModel:
    """A DECODE-compressed .tflite and what it costs and saves, all measured."""

    data: bytes
    method: str
    bits: int | None
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
        used = sorted({t.method for t in self.tensors if t.method})
        return {
            "method": f"tflm-{self.method}", "formats_used": used, "bits": self.bits,
            "dense_int8_bytes": self.dense_bytes, "compressed_bytes": self.compressed_bytes,
            "saved_bytes": self.saved_bytes, "flash_fraction": round(self.flash_fraction, 4),
            "arena_target_bytes_dense": self.dense_arena.target_bytes if self.dense_arena else None,
            "arena_target_bytes_compressed": self.compressed_arena.target_bytes if self.compressed_arena else None,
            "extra_arena_target_bytes": self.extra_arena_bytes,
            "tensors": [vars(t) | {"shape": list(t.shape), "sparsity": round(t.sparsity, 4),
                                   "encoded_bytes": t.encoded_bytes} for t in self.tensors],
            "note": EXPERIMENTAL_NOTE,
        }


def check_method(method: str, bits: int | None) -> None:
    """Raise ConfigError for an unknown method, or LUT bits outside the supported range."""
    if method not in METHODS:
        raise ConfigError(f"unknown compression {method!r}; choose one of {', '.join(METHODS)}")
    if method != "prune":
        lut.check_bits(4 if bits is None else bits)


def _editor():
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    return model_editor


def read_model(data: bytes):
    """The tflite_micro model_editor view of `data` (TfliteFormatError when it is not a .tflite).

    Older converters wrote operator codes below 127 only in the deprecated one-byte field (the
    MLPerf Tiny models do). The editor reads the newer field alone, so every such operator looks
    like ADD and its rebuilt model is broken (seen here: the KWS DS-CNN came back as 13 SOFTMAX
    ops). The effective code, the larger of the two (TFLite's rule), is set before anything is
    built: it comes from the one reader (`tflite_model.parse_tflite`), which also validates the
    bytes before the editor (which needs its own object model to rewrite the file) sees them.
    """
    from firmware_export.tflite_model import parse_tflite

    parsed = parse_tflite(bytes(data))  # validated by the one reader; TfliteFormatError otherwise
    codes = [c.builtin_code for c in parsed.op_codes]  # its one opcode rule
    try:
        model = _editor().read(parsed.data)
    except Exception as e:  # the editor's reader raises assorted errors on odd (but valid) data
        raise TfliteFormatError(f"not a .tflite flatbuffer the TFLM model editor can read ({type(e).__name__})") from None
    for opcode, code in zip(model.operator_codes, codes):
        opcode.builtin_code = code
    for sg in model.subgraphs:
        for op in sg.operators:
            if op.opcode_index is not None:
                op.opcode = codes[op.opcode_index]
    return model


def _channel_axis(t, ndim: int) -> tuple[int, np.ndarray, bool]:
    """(channel axis, zero points, whether TFLM's DECODE kernels accept this layout).

    DecodeStateLut::Setup and DecodeStatePrune::Setup both take channels on axis 0, or on the
    last axis when there are several channels; anything else fails at Prepare.
    """
    q = t.quantization
    if q is None:
        return 0, np.zeros(1, np.int64), True
    zps = np.atleast_1d(np.asarray(q.zero_points, dtype=np.int64))
    axis = int(q.axis) if q.axis is not None else 0
    ok = axis == 0 or (axis == ndim - 1 and zps.size > 1)
    return (axis if ok else 0), zps, ok


def _plain(t, opname: str, subgraph: int, shape: tuple[int, ...], nbytes: int, reason: str) -> TensorPlan:
    return TensorPlan(t.name or f"tensor {t.index}", opname, subgraph, t.index, shape, 0, 0, 0, 0, 0.0, nbytes,
                      None, None, None, reason)


def _plan_tensor(t, opname: str, subgraph: int, method: str, bits: int) -> TensorPlan:
    """The plan for one filter tensor (a tflite_micro model_editor Tensor)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    shape = tuple(int(d) for d in t.shape)
    if t.dtype != schema.TensorType.INT8:
        kind = next((k for k, v in vars(schema.TensorType).items() if v == t.dtype), str(t.dtype))
        return _plain(t, opname, subgraph, shape, len(t.buffer.data), f"{kind} weights; {ONLY_INT8}")
    try:
        arr = t.array
    except ValueError as e:  # data that does not fill the tensor's shape
        raise TfliteFormatError(f"weight tensor {t.name!r} does not match its shape {list(shape)} ({e})") from None
    axis, zps, layout_ok = _channel_axis(t, arr.ndim)
    if not layout_ok:
        return _plain(t, opname, subgraph, shape, arr.nbytes, "quantization axis the DECODE kernels do not accept")
    max_values = int(lut.channel_value_counts(arr, axis).max())
    need = lut.index_bits_for(max_values)
    kept = int(tflm_prune.keep_mask(arr, zps, axis).sum())
    lut_bytes = (lut.lut_payload_bytes(arr.size, arr.shape[axis], need, max_values)
                 if method in ("lut", "auto") and need <= bits else None)
    prune_bytes = tflm_prune.payload_bytes(arr.size, kept) if method in ("prune", "auto") else None
    options = {m: b for m, b in (("lut", lut_bytes), ("prune", prune_bytes)) if b is not None}
    chosen, reason = None, ""
    if not options:
        reason = f"{max_values} values in a channel need {need} bits > {bits}; cluster it first"
    else:
        best = min(options, key=options.get)
        if arr.nbytes - options[best] <= DECODE_OVERHEAD_BYTES:
            reason = "too small or not sparse enough to save flash"
        else:
            chosen = best
    return TensorPlan(t.name or f"tensor {t.index}", opname, subgraph, t.index, shape, axis, arr.shape[axis],
                      max_values, need, 1.0 - kept / arr.size, arr.nbytes, lut_bytes, prune_bytes, chosen, reason)


FILTER_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


def _filter_tensors(model):
    """(subgraph index, op name, tensor) for every constant filter tensor, each once."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    codes = {getattr(schema.BuiltinOperator, name): name for name in FILTER_OPS}
    seen: set[int] = set()
    for sg_index, sg in enumerate(model.subgraphs):
        for op in sg.operators:
            if op.opcode not in codes or len(op.inputs) <= _FILTER_INPUT:
                continue
            t = op.inputs[_FILTER_INPUT]
            if t is None or t.buffer is None or not t.buffer.data or id(t) in seen:
                continue
            seen.add(id(t))
            yield sg_index, codes[op.opcode], t


def plan(data: bytes, method: str = "auto", bits: int = 4) -> list[TensorPlan]:
    """What `compress_model` would do to each weight tensor of an int8 .tflite."""
    check_method(method, bits)
    return [_plan_tensor(t, opname, sg, method, bits) for sg, opname, t in _filter_tensors(read_model(data))]


def _encode(tensor, p: TensorPlan):
    from tflite_micro.tensorflow.lite.micro.compression import compressor, spec
    from tflite_micro.tensorflow.lite.micro.compression import lut as tflm_lut

    if p.method == "lut":
        return tflm_lut.LutCompressor().compress(
            tensor, spec.LookUpTableCompression(index_bitwidth=p.index_bits, mode=spec.PerChannel(axis=p.axis)))
    _, zps, _ = _channel_axis(tensor, tensor.array.ndim)
    encoded, ancillary = tflm_prune.encode(tensor.array, zps, p.axis)
    return compressor.CompressionResult(encoded, ancillary)


def _aligned(model) -> bytes:
    """Build the flatbuffer with the alignment TFLM needs (the Python builder ignores force_align)."""
    from tflite_micro.tensorflow.lite.micro.tools import tflite_flatbuffer_align_wrapper

    with tempfile.TemporaryDirectory(prefix="tinyprune-compress-") as d:
        src, dst = Path(d) / "in.tflite", Path(d) / "out.tflite"
        src.write_bytes(bytes(model.build()))
        tflite_flatbuffer_align_wrapper.align_tflite_model(str(src), str(dst))
        return dst.read_bytes()


def compress_model(data: bytes, method: str = "auto", bits: int = 4, measure: bool = True) -> CompressedModel:
    """Compress every weight tensor of `data` where `method` saves flash; DECODE ops decode them.

    method: "lut" (needs clustering to 2^bits values per channel), "prune" (lossless; pays off
    above 1/8 sparsity) or "auto" (per tensor, the smaller of the two). Raises ConfigError when
    no tensor qualifies. With `measure`, the TFLM arena of both models is measured.
    """
    from tflite_micro.tensorflow.lite.micro.compression import decode_insert

    check_method(method, bits)
    model = read_model(data)
    plans, results, encoded = [], {}, {}
    for sg, opname, t in _filter_tensors(model):
        p = _plan_tensor(t, opname, sg, method, bits)
        plans.append(p)
        if p.compress:
            results[(p.subgraph, p.tensor)] = _encode(t, p)
            encoded[(p.subgraph, p.tensor)] = t
    if results:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            decode_insert.insert_decode_operators(model, results)
        plans = [_as_inserted(p, encoded) for p in plans]
    if not any(p.compress for p in plans):
        raise ConfigError(_nothing_to_compress(plans, method, bits))
    out = _aligned(model)
    dense_arena = measure_arena(bytes(data)) if measure else None
    new_arena = measure_arena(out) if measure else None
    return CompressedModel(out, method, None if method == "prune" else bits, tuple(plans), len(data), len(out),
                           dense_arena, new_arena)


def _as_inserted(p: TensorPlan, encoded: dict) -> TensorPlan:
    """The plan as the editor carried it out.

    The editor leaves a tensor uncompressed when its buffer is shared with a tensor that is not
    compressed (the data would stay in the file anyway). For the tensors it did encode, it keeps
    their old per-channel quantization in the flatbuffer (a scale and a zero point per channel
    on a now-UINT8 tensor that nothing reads; measured: 49 KB of the sparse VWW model); it is
    dropped here. The decoded copy keeps its quantization: the DECODE kernels read it.
    """
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    t = encoded.get((p.subgraph, p.tensor))
    if t is None:
        return p
    if t.dtype != schema.TensorType.UINT8:
        return dataclasses.replace(p, method=None, reason="buffer shared with a tensor that stays uncompressed")
    t._fb.quantization = None  # the editor's Tensor has no public way to remove quantization
    return p


def _nothing_to_compress(plans: list[TensorPlan], method: str, bits: int) -> str:
    if not plans:
        return "the model has no constant weight tensors to compress"
    if all(p.reason.endswith(ONLY_INT8) for p in plans):
        return f"the model's weights are not int8 ({plans[0].reason}); convert it to int8 first"
    if all(p.channels == 0 for p in plans):  # every tensor was ruled out before sizing (see _plain)
        return f"no weight tensor can be compressed: {'; '.join(sorted({p.reason for p in plans}))}"
    shared = [p for p in plans if p.reason.startswith("buffer shared")]
    if shared:
        return f"every compressible weight tensor shares its buffer with an uncompressed one ({shared[0].name})"
    if method == "lut":
        worst = max(p.max_values for p in plans)
        if worst <= 2 ** bits:  # every tensor fits the table: it is too small for the table to pay
            reasons = "; ".join(sorted({p.reason for p in plans if p.reason}))
            return f"no weight tensor saves flash as a {bits}-bit LUT: {reasons}"
        from firmware_export.lut import MAX_BITS

        more = " or use more bits (--bits, at most 7)" if bits < MAX_BITS else ""
        return (f"no weight tensor has at most {2 ** bits} values per channel (up to {worst} found); "
                f"cluster the model first (tinyprune.prune.clustering.cluster_model){more}")
    most = max(p.sparsity for p in plans)
    hint = "prune it first (tinyprune prune --method magnitude)"
    if method == "auto":
        hint += f" or cluster it to {2 ** bits} values per channel"
    return f"no weight tensor is sparse enough to save flash (most zeros: {most:.1%}); {hint}"


def same_outputs(original: bytes, compressed: bytes, samples: int = 8, seed: int = 0) -> bool:
    """Whether TFLM gives bit-identical outputs for both models on `samples` random inputs.

    A check of the encoding, not of accuracy: DECODE must rebuild exactly the stored weights,
    so any difference at all is a defect.
    """
    from firmware_export.tflm import input_detail, run

    detail = input_detail(original)
    shape, dtype = (samples, *detail["shape"][1:]), np.dtype(detail["dtype"])
    rng = np.random.default_rng(seed)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        x = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
        return bool(np.array_equal(run(original, x, True), run(compressed, x, True)))
    x = rng.standard_normal(shape).astype(np.float32)
    return bool(np.array_equal(run(original, x), run(compressed, x)))


def compress_file(model: str | Path, output: str | Path, method: str = "auto", bits: int = 4,
                  force: bool = False) -> CompressedModel:
    """What `tinyprune compress MODEL -o OUTPUT` does: compress a .tflite file, check the result's
    TFLM outputs on random inputs (`same_outputs`) and only then write OUTPUT atomically.

    Raises ConfigError for a bad method or bits, OutputExistsError for an existing OUTPUT without
    `force` (or one that is the input or a folder), TfliteFormatError for a file that is not a
    .tflite, and TflmError when the compressed model's outputs differ (nothing is written)."""
    from firmware_export.errors import TflmError
    from firmware_export.files import check_writable_file, write_bytes
    from firmware_export.tflite_model import read_tflite

    check_method(method, bits)
    check_writable_file(Path(output), force, inputs=[model])
    data = read_tflite(model).data
    result = compress_model(data, method, bits)
    if not same_outputs(data, result.data):
        raise TflmError("the compressed model's TFLM outputs differ from the original's on random inputs; "
                        "nothing was written (please report this model)")
    write_bytes(Path(output), result.data, force=force, inputs=[model])
    return result
