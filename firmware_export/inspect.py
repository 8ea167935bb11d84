"""What is inside a .tflite: operators, tensors, per-op MACs, weight bytes and the TFLM arena.

`inspect_model` gathers the facts (from the flatbuffer, `costmodel.op_macs` for MACs, and the
real TFLM interpreter for the arena) into an `InspectReport`, which renders as rich tables or
as a dict for `--json`. It does not estimate latency or fit (`estimate.py`) and writes nothing.
No TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from firmware_export import ops as ops_mod
from firmware_export import tflm
from firmware_export.costmodel import op_macs
from firmware_export.tflite_model import TfliteModel, parse_tflite, read_tflite
from firmware_export.errors import TflmCrash, TflmError


@dataclass(frozen=True)
class OpRow:
    index: int
    name: str
    inputs: list[list[int]]  # shapes of non-constant inputs
    output: list[int]  # shape of the first output
    macs: int
    weight_bytes: int  # constant data the op reads (weights, biases, tables)


@dataclass(frozen=True)
class TensorRow:
    index: int
    name: str
    shape: list[int]
    dtype: str
    bytes: int
    constant: bool
    scale: float | None
    zero_point: int | None


@dataclass
class InspectReport:
    """The facts `tinyprune inspect` prints."""

    source: str
    model_bytes: int
    subgraphs: int
    ops: list[OpRow]
    tensors: list[TensorRow]
    op_set: list[str]  # distinct operators
    unsupported_ops: list[str]  # operators TFLM has no kernel for
    weight_bytes: int
    total_macs: int
    arena_host_bytes: int | None  # None when TFLM cannot run the model
    arena_target_bytes: int | None
    arena_error: str | None = None
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)

    def to_dict(self, tensors: bool = True) -> dict:
        d = asdict(self)
        if not tensors:
            del d["tensors"]
        return d

    def to_json(self, tensors: bool = True) -> str:
        return json.dumps(self.to_dict(tensors), indent=2)

    def render(self, console, tensors: bool = True) -> None:
        """Print the summary, the per-op table and (optionally) the tensor table."""
        from firmware_export.terminal import escape
        from rich.table import Table

        console.print(escape(self.source), highlight=False)  # a line, not a title: a title wraps to the table's width
        s = Table(show_header=False)
        s.add_row("file", f"{self.model_bytes:,} bytes, {self.subgraphs} subgraph(s)")
        s.add_row("operators", escape(f"{len(self.ops)} ({len(self.op_set)} distinct: {', '.join(self.op_set)})"))
        if self.unsupported_ops:
            s.add_row("[red]not in TFLM[/]", escape(", ".join(self.unsupported_ops)))
        s.add_row("weights", f"{self.weight_bytes:,} bytes")
        s.add_row("MACs", f"{self.total_macs:,}")
        if self.arena_host_bytes is not None:
            s.add_row("TFLM arena", f"{self.arena_host_bytes:,} bytes (64-bit host), "
                                    f"{self.arena_target_bytes:,} bytes (32-bit target)")
        else:
            s.add_row("TFLM arena", f"[red]not measured[/]: {escape(str(self.arena_error))}")
        console.print(s)

        t = Table(title="operators")
        for col in ("#", "op", "input shape(s)", "output shape"):
            t.add_column(col)
        t.add_column("MACs", justify="right")
        t.add_column("weights B", justify="right")
        for r in self.ops:
            t.add_row(str(r.index), escape(r.name), " ".join(_fmt_shape(x) for x in r.inputs), _fmt_shape(r.output),
                      f"{r.macs:,}", f"{r.weight_bytes:,}")
        t.add_row("", "[bold]total[/]", "", "", f"[bold]{self.total_macs:,}[/]", f"[bold]{self.weight_bytes:,}[/]")
        console.print(t)

        if tensors:
            tt = Table(title="tensors")
            for col in ("#", "name", "shape", "type", "bytes", "kind", "scale", "zero point"):
                tt.add_column(col, justify="right" if col in ("bytes",) else "left")
            io = set(self.inputs) | set(self.outputs)
            for r in self.tensors:
                kind = "input" if r.index in self.inputs else "output" if r.index in self.outputs else (
                    "const" if r.constant else "activation")
                tt.add_row(str(r.index), escape(r.name[:48]), _fmt_shape(r.shape), r.dtype, f"{r.bytes:,}",
                           f"[bold]{kind}[/]" if r.index in io else kind,
                           "" if r.scale is None else f"{r.scale:.6g}",
                           "" if r.zero_point is None else str(r.zero_point))
            console.print(tt)


def _fmt_shape(shape: list[int]) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def _op_rows(m: TfliteModel) -> list[OpRow]:
    rows = []
    for op in m.operators:
        ins = [m.tensors[i] for i in op.inputs if 0 <= i < len(m.tensors)]
        out = m.tensors[op.outputs[0]].shape if op.outputs else ()
        rows.append(OpRow(
            index=op.index, name=op.name,
            inputs=[list(t.shape) for t in ins if not t.is_constant],
            output=list(out),
            macs=int(op_macs(m, op)),
            weight_bytes=sum(t.const_bytes for t in ins if t.is_constant),
        ))
    return rows


def _tensor_rows(m: TfliteModel) -> list[TensorRow]:
    return [TensorRow(
        index=t.index, name=t.name, shape=list(t.shape), dtype=t.dtype,
        bytes=t.const_bytes if t.is_constant else t.nbytes, constant=t.is_constant,
        scale=t.scale[0] if len(t.scale) == 1 else None,
        zero_point=t.zero_point[0] if len(t.zero_point) == 1 else None,
    ) for t in m.tensors]


def inspect_model(path_or_bytes: bytes | str | Path, measure: bool = True) -> InspectReport:
    """Read a .tflite (path or bytes) and report its ops, tensors, MACs, weights and arena.

    The arena is measured in the real TFLM interpreter when `measure` is true and every operator
    has a TFLM kernel; otherwise it is reported as not measured, with the reason.
    """
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        m, source = parse_tflite(bytes(path_or_bytes)), "<bytes>"
    else:
        m, source = read_tflite(path_or_bytes), str(path_or_bytes)
    model_ops = ops_mod.model_ops(m)
    unsupported = [op.name for op in model_ops if not op.supported]
    host = target = None
    error = None
    if unsupported:
        error = f"TFLM has no kernel for {', '.join(unsupported)}"
    elif measure:
        try:
            arena = tflm.measure_arena(m.data)
            host, target = arena.host_bytes, arena.target_bytes
        except TflmCrash:  # TFLM aborted or crashed on it: the model is unusable, exit 2 like fit and export
            raise
        except TflmError as e:  # e.g. an allocation failure: report it in the table instead of failing
            error = str(e)
    op_rows = _op_rows(m)
    return InspectReport(
        source=source, model_bytes=m.size_bytes, subgraphs=m.subgraph_count, ops=op_rows,
        tensors=_tensor_rows(m), op_set=[op.name for op in model_ops], unsupported_ops=unsupported,
        weight_bytes=m.weight_bytes, total_macs=sum(r.macs for r in op_rows),
        arena_host_bytes=host, arena_target_bytes=target, arena_error=error,
        inputs=list(m.inputs), outputs=list(m.outputs),
    )
