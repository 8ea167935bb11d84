"""An upper bound of the smallest tensor arena that works on a 32-bit Cortex-M target.

The host measurement (`tflm.measure_arena`) runs TFLM's reference kernels on a 64-bit machine.
`ArenaReport.target_bytes` takes off what 64-bit pointers cost; that figure can still be a few
bytes *under* what the target needs (96 B on the digits model on a Cortex-M4, bisected), for two
reasons this module adds back, so that the figure is never below the need:

1. Scratch buffers of the optimized kernels (CMSIS-NN), which the reference kernels do not ask
   for: the im2col buffer of a convolution, the depthwise and average-pool buffers. Their sizes
   are the CMSIS-NN `arm_*_get_buffer_size` formulas (CMSIS-NN Source/ConvolutionFunctions/
   arm_convolve_get_buffer_sizes_s8.c, arm_depthwise_conv_get_buffer_sizes_s8.c, PoolingFunctions)
   for the core's instruction set (DSP extension, Helium/MVE or neither). A scratch buffer lives
   only while its op runs, so TFLM's greedy memory planner often places it in memory that
   activations leave free: the extra head is found by re-running a greedy planner (same rule as
   TFLM's GreedyMemoryPlanner: largest buffer first, lowest offset that does not overlap a
   buffer alive at the same time) with and without the scratch buffers. One 16-byte slot per
   scratch buffer (its handle and request) is added to the persistent part.
2. Alignment: every persistent allocation (op data, quantization arrays) may lose up to 16 bytes
   to TFLM's 16-byte arena alignment on the target where the host layout lost less; one slot of
   `ALIGN_SLACK_BYTES` per allocation counts that.

The result is rounded up to 16 bytes. The exported header allocates more: the bound plus a margin
(`header_arena_bytes`: 5% + 512 B, for another TFLM version or vendor kernels), and that is the
arena the firmware holds in RAM, so `fit` and the budget's RAM count it. The bound is checked
(tests/firmware_export/test_flash_ram_truth.py)
against the smallest arena that works on a Cortex-M4 (bisected in QEMU) for the models in
../shared/reference/tflm_cortex_m_sizes.md. It does not run TFLM (`tflm.py` does) and never
imports TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from firmware_export.costmodel import tensor_lifetimes
from firmware_export.tflite_model import Operator, TfliteModel
from firmware_export.tflm import ARENA_ALIGNMENT, ArenaReport

ARENA_MARGIN_FRACTION = 0.05  # CMSIS-NN scratch buffers the host's reference kernels do not ask for
ARENA_MARGIN_BYTES = 512  # allocator alignment / TFLM version drift (cexport.py's docstring)
ALIGN_SLACK_BYTES = 16  # worst-case alignment loss of one persistent allocation on the target
_FIXED_ALLOCATIONS = 4  # the eval-tensor, node and tensor-pointer arrays and the planner's own
CH_IN_BLOCK_MVE = 124  # CMSIS-NN arm_nnsupportfunctions.h: channels per block of the MVE depthwise

# Instruction-set class of each core for CMSIS-NN's buffer-size formulas.
DSP, MVE, PLAIN = "dsp", "mve", "plain"
ISA = {"cortex-m0plus": PLAIN, "cortex-m3": PLAIN, "cortex-m4": DSP, "cortex-m4f": DSP,
       "cortex-m7": DSP, "cortex-m33": DSP, "cortex-m55": MVE, "cortex-m85": MVE}


@dataclass(frozen=True)
class ArenaBound:
    """The 32-bit arena figure and what was added to make it an upper bound."""

    host_bytes: int  # smallest arena that works on the 64-bit host (TFLM, reference kernels)
    target_bytes: int  # host minus the 64-bit pointer overhead (ArenaReport.target_bytes)
    scratch_bytes: int  # extra head the optimized kernels' scratch buffers need (after planning)
    slack_bytes: int  # alignment slack + scratch handles (persistent)
    kernels: str
    isa: str

    @property
    def bound_bytes(self) -> int:
        """Upper bound of the smallest working arena on the target, rounded up to 16 bytes."""
        raw = self.target_bytes + self.scratch_bytes + self.slack_bytes
        return -(-raw // ARENA_ALIGNMENT) * ARENA_ALIGNMENT


def _align4(n: int) -> int:
    return n + (-n % 4)


def _dims(model: TfliteModel, i: int) -> tuple[int, ...]:
    return model.tensors[i].shape if 0 <= i < len(model.tensors) else ()


def scratch_bytes(model: TfliteModel, op: Operator, isa: str) -> int:
    """Bytes of the CMSIS-NN scratch buffer `op` asks TFLM for on a core of class `isa` (0 if none)."""
    o = op.options
    if op.name == "CONV_2D" and len(op.inputs) >= 2:
        inp, flt = _dims(model, op.inputs[0]), _dims(model, op.inputs[1])
        if len(inp) != 4 or len(flt) != 4:
            return 0
        _co, kh, kw, ci = flt
        cols = kh * kw * ci
        one_by_one = kh == kw == 1
        if isa == MVE:
            return 0 if one_by_one else 4 * (-(-cols // 16)) * 16
        if one_by_one:
            # DSP 1x1 fast path: (2 x channels) int16 with Arm Compiler 6, 0 with gcc; take the larger
            return 2 * ci * 2 if isa == DSP else 0
        return 2 * _align4(cols) * 2
    if op.name == "DEPTHWISE_CONV_2D" and len(op.inputs) >= 2 and op.outputs:
        inp, flt = _dims(model, op.inputs[0]), _dims(model, op.inputs[1])
        out = _dims(model, op.outputs[0])
        if len(inp) != 4 or len(flt) != 4 or len(out) != 4:
            return 0
        _one, kh, kw, _c = flt
        if inp[3] != out[3] or inp[0] != 1 or o.get("dilationWFactor", 1) != 1 or o.get("dilationHFactor", 1) != 1:
            return 0
        if isa == MVE:
            return 4 * CH_IN_BLOCK_MVE * kw * kh
        if isa == DSP:
            if kh == kw == 3:  # arm_depthwise_conv_3x3_s8 (padding <= 1, always so for SAME 3x3)
                return 0
            return inp[3] * kw * kh * 2
        return 0
    if op.name == "AVERAGE_POOL_2D" and op.inputs and isa == DSP:
        inp = _dims(model, op.inputs[0])
        return inp[-1] * 4 if inp else 0  # arm_avgpool_s8_get_buffer_size: ch_src x int32
    if op.name == "FULLY_CONNECTED" and len(op.inputs) >= 2 and isa == MVE:
        flt = _dims(model, op.inputs[1])
        return flt[0] * 4 if flt else 0  # kernel sums, one int32 per output channel
    return 0


def _buffers(model: TfliteModel) -> list[tuple[int, int, int]]:
    """(bytes, first op, last op) of every tensor TFLM plans in the head (non-constant, non-variable)."""
    out = []
    for t, (a, b) in tensor_lifetimes(model).items():
        tensor = model.tensors[t]
        if tensor.is_variable:  # persists for the whole run: TFLM keeps it outside the planned head
            continue
        out.append((-(-tensor.nbytes // ARENA_ALIGNMENT) * ARENA_ALIGNMENT, a, b))
    return out


def greedy_head(buffers: list[tuple[int, int, int]]) -> int:
    """Head size a greedy planner needs: largest buffer first, each at the lowest offset that
    does not overlap an already placed buffer alive at the same time."""
    placed: list[tuple[int, int, int, int]] = []  # offset, size, first, last
    for size, a, b in sorted(buffers, key=lambda x: -x[0]):
        live = sorted((off, sz) for off, sz, pa, pb in placed if not (pb < a or b < pa))
        offset = 0
        for off, sz in live:
            if off - offset >= size:
                break
            offset = max(offset, off + sz)
        placed.append((offset, size, a, b))
    return max((off + sz for off, sz, _a, _b in placed), default=0)


def arena_bound(model: TfliteModel, report: ArenaReport, kernels: str = "cmsis-nn",
                core: str = "cortex-m4f") -> ArenaBound:
    """Upper bound of the smallest arena `model` needs on `core` with `kernels` (module docstring)."""
    isa = ISA.get(core, DSP)
    buffers = _buffers(model)
    scratch = []
    if kernels == "cmsis-nn":
        scratch = [(-(-s // ARENA_ALIGNMENT) * ARENA_ALIGNMENT, op.index, op.index)
                   for op in model.operators if (s := scratch_bytes(model, op, isa)) > 0]
    planned = greedy_head(buffers)
    if planned == report.head_bytes:  # the simulation reproduces TFLM's plan: trust its placement
        extra = max(0, greedy_head(buffers + scratch) - planned)
    else:  # it does not: assume the largest scratch buffer finds no free hole
        extra = max((size for size, _a, _b in scratch), default=0)
    allocations = _FIXED_ALLOCATIONS + sum(r.count for r in report.records if r.name == "Persistent buffer data")
    slack = ALIGN_SLACK_BYTES * (allocations + len(scratch))
    return ArenaBound(report.host_bytes, report.target_bytes, extra, slack, kernels, isa)


PORTABLE_CORES = ("cortex-m4f", "cortex-m0plus")  # one core per instruction-set class but Helium (MVE)


def arena_bound_portable(model: TfliteModel, report: ArenaReport, kernels: str = "cmsis-nn") -> ArenaBound:
    """The largest bound over the cores without Helium (Cortex-M0+ to M7/M33): the arena figure
    of an exported header (Helium cores get their own, cexport.py) and of a budget without a board."""
    return max((arena_bound(model, report, kernels, core) for core in PORTABLE_CORES), key=lambda b: b.bound_bytes)


def arena_bound_any_core(model: TfliteModel, report: ArenaReport, kernels: str = "cmsis-nn") -> ArenaBound:
    """The largest bound over the instruction-set classes (for a header that runs on any core)."""
    bounds = [arena_bound(model, report, kernels, core) for core in ("cortex-m4f", "cortex-m55", "cortex-m0plus")]
    return max(bounds, key=lambda b: b.bound_bytes)


def arena_constant(bound_bytes: int) -> int:
    """The header's arena size for a bound: + 5% + 512 B, rounded up to 16 bytes."""
    raw = bound_bytes + math.ceil(bound_bytes * ARENA_MARGIN_FRACTION) + ARENA_MARGIN_BYTES
    return -(-raw // ARENA_ALIGNMENT) * ARENA_ALIGNMENT


def header_bound(model: TfliteModel, report: ArenaReport, core: str | None = None) -> ArenaBound:
    """The bound an exported header's constant for `core` is made from: the portable bound, or
    on a Helium core its own bound when that is larger (without a core: the portable one)."""
    portable = arena_bound_portable(model, report)
    if core is None or ISA.get(core) != MVE:
        return portable
    own = arena_bound(model, report, "cmsis-nn", core)
    return own if own.bound_bytes > portable.bound_bytes else portable


def header_arena_bytes(model: TfliteModel, report: ArenaReport, core: str | None = None) -> int:
    """The `NAME_tensor_arena_size` an exported header (cexport.py) gives `core`: the constant of
    `header_bound` (the header's first constant without a core). This is the arena a firmware
    built from the export allocates, whatever kernels the board's build links."""
    return arena_constant(header_bound(model, report, core).bound_bytes)
