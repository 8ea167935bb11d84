"""Flash, RAM and latency of a .tflite on each board profile: the `tinyprune fit` estimator.

- Flash = model bytes + TFLM framework code + the code of each kernel the model uses
  (reference or CMSIS-NN sizes), from `runtime_sizes.toml` (sources and estimates marked there).
- RAM = the arena the real TFLM interpreter needs for this model, adjusted for a 32-bit target
  (`tflm.measure_arena(...).target_bytes`), + the MicroInterpreter object + the op resolver
  + a stack allowance (`runtime_sizes.toml`, [ram]).
- Latency = sum over ops of (MACs x cycles/MAC for the op family, core and kernel library
  + element work + a per-op overhead) / clock, with a low/high range; the constants and the
  fit that produced them are in `latency_calibration.toml`.

It reads boards from `boards.py` and per-op work from `costmodel.py`; it does not run the model
except through `tflm.measure_arena`, and never imports TensorFlow.

Example:
    >>> report = fit_model(Path("m.tflite").read_bytes(), select_boards(load_boards(), None, False))
    >>> report.all_fit, report.results[0].latency_ms                       # doctest: +SKIP
"""

from __future__ import annotations

import functools
import json
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from firmware_export.boards import KB, Board
from firmware_export.costmodel import ELEMENTWISE, ModelCost, OpCost, model_cost
from firmware_export.tflite_model import TfliteModel, parse_tflite
from firmware_export.tflm import ArenaReport, measure_arena

RUNTIME_SIZES_FILE = Path(__file__).with_name("runtime_sizes.toml")
CALIBRATION_FILE = Path(__file__).with_name("latency_calibration.toml")


# ---------------------------------------------------------------------------- constants (data)

@dataclass(frozen=True)
class RuntimeSizes:
    """TFLM code and RAM overheads (bytes); see runtime_sizes.toml for the sources."""

    framework_bytes: int
    kernel_bytes: dict[str, dict[str, int]]  # library -> op -> bytes
    default_kernel_bytes: int
    interpreter_bytes: int
    resolver_bytes_per_op: int
    resolver_bytes_fixed: int
    stack_bytes: int

    def kernel_code(self, op: str, kernels: str) -> int:
        """Code bytes one kernel adds; CMSIS-NN falls back to the reference size when it has none."""
        table = self.kernel_bytes.get(kernels, {})
        if op in table:
            return table[op]
        return self.kernel_bytes.get("reference", {}).get(op, self.default_kernel_bytes)

    def ram_overhead(self, op_count: int) -> int:
        """RAM outside the arena: interpreter object + op resolver for `op_count` ops + stack."""
        resolver = self.resolver_bytes_fixed + self.resolver_bytes_per_op * op_count
        return self.interpreter_bytes + resolver + self.stack_bytes


@functools.cache
def load_runtime_sizes(path: Path = RUNTIME_SIZES_FILE) -> RuntimeSizes:
    doc = tomllib.loads(Path(path).read_text())
    k, r = doc["kernels"], doc["ram"]
    return RuntimeSizes(
        framework_bytes=int(doc["framework"]["code_bytes"]),
        kernel_bytes={lib: {op: int(v) for op, v in table.items()}
                      for lib, table in k.items() if isinstance(table, dict)},
        default_kernel_bytes=int(k["default_bytes"]),
        interpreter_bytes=int(r["interpreter_bytes"]),
        resolver_bytes_per_op=int(r["resolver_bytes_per_op"]),
        resolver_bytes_fixed=int(r["resolver_bytes_fixed"]),
        stack_bytes=int(r["stack_bytes"]),
    )


@dataclass(frozen=True)
class Factor:
    mac_factor: float
    scalar_factor: float
    uncertainty: float
    basis: str


@dataclass(frozen=True)
class LatencyModel:
    """Constants of the latency model; see latency_calibration.toml for the formula and fit."""

    cycles_per_mac: dict[str, float]
    cycles_per_element: float
    cycles_per_op: float
    cores: dict[str, Factor]
    kernels: dict[str, Factor]
    legacy_stacks: dict[str, float] = field(default_factory=dict)

    def op_cycles(self, op: OpCost, core: str, kernels: str) -> float:
        c, k = self.cores[core], self.kernels[kernels]
        mac = 0.0 if op.family == ELEMENTWISE else op.macs * self.cycles_per_mac[op.family]
        scalar = op.elements * self.cycles_per_element + self.cycles_per_op
        return mac * c.mac_factor * k.mac_factor + scalar * c.scalar_factor

    def uncertainty(self, core: str, kernels: str) -> float:
        return (1 + self.cores[core].uncertainty) * (1 + self.kernels[kernels].uncertainty) - 1


@functools.cache
def load_latency_model(path: Path = CALIBRATION_FILE) -> LatencyModel:
    doc = tomllib.loads(Path(path).read_text())

    def factors(section: dict) -> dict[str, Factor]:
        return {name: Factor(float(v["mac_factor"]), float(v.get("scalar_factor", 1.0)),
                             float(v["uncertainty"]), str(v.get("basis", "")))
                for name, v in section.items()}

    return LatencyModel(
        cycles_per_mac={k: float(v) for k, v in doc["cycles_per_mac"].items()},
        cycles_per_element=float(doc["work"]["cycles_per_element"]),
        cycles_per_op=float(doc["work"]["cycles_per_op"]),
        cores=factors(doc["cores"]),
        kernels=factors(doc["kernels"]),
        legacy_stacks={k: float(v) for k, v in doc.get("legacy_stacks", {}).items()},
    )


# ---------------------------------------------------------------------------- estimates

def flash_bytes(model: TfliteModel, kernels: str, sizes: RuntimeSizes | None = None) -> tuple[int, int]:
    """(runtime code bytes, total flash bytes) for `model` built with `kernels`."""
    sizes = sizes or load_runtime_sizes()
    code = sizes.framework_bytes + sum(sizes.kernel_code(op, kernels) for op in sorted(model.op_names))
    return code, model.size_bytes + code


def ram_overhead_bytes(model: TfliteModel, sizes: RuntimeSizes | None = None) -> int:
    """RAM the model needs outside its arena (interpreter, resolver for its ops, stack)."""
    return (sizes or load_runtime_sizes()).ram_overhead(len(model.op_names))


def latency_cycles(cost: ModelCost, core: str, kernels: str, lm: LatencyModel | None = None) -> list[float]:
    """Estimated cycles of every op of `cost` on `core` with `kernels`."""
    lm = lm or load_latency_model()
    return [lm.op_cycles(op, core, kernels) for op in cost.ops]


def latency_ms(cost: ModelCost, board: Board, lm: LatencyModel | None = None) -> tuple[float, float, float]:
    """(point, low, high) latency in ms of one inference on `board`."""
    lm = lm or load_latency_model()
    point = sum(latency_cycles(cost, board.core, board.kernels, lm)) / (board.clock_mhz * 1e3)
    u = lm.uncertainty(board.core, board.kernels)
    return point, point / (1 + u), point * (1 + u)


# ---------------------------------------------------------------------------- report

@dataclass
class BoardFit:
    """The estimate for one board. Bytes are bytes; `*_available` come from the profile."""

    board: str
    title: str
    core: str
    clock_mhz: float
    kernels: str
    model_bytes: int
    runtime_code_bytes: int
    flash_bytes: int
    flash_available: int
    arena_bytes: int
    ram_overhead_bytes: int
    ram_bytes: int
    ram_available: int
    latency_ms: float
    latency_ms_low: float
    latency_ms_high: float
    fits_flash: bool
    fits_ram: bool
    fits: bool
    overshoot: str  # "" when it fits, else e.g. "flash over by 12.3 KB"


@dataclass
class LayerEstimate:
    """One op: its work, live memory, and estimated latency per board (ms)."""

    index: int
    op: str
    output_shape: tuple[int, ...]
    macs: int
    elements: int
    live_bytes: int
    peak: bool
    latency_ms: dict[str, float]


@dataclass
class FitReport:
    """The fit of one model on several boards, plus the per-op breakdown."""

    model_bytes: int
    op_count: int
    macs: int
    arena_host_bytes: int
    arena_target_bytes: int
    results: list[BoardFit]
    layers: list[LayerEstimate]

    @property
    def all_fit(self) -> bool:
        return all(r.fits for r in self.results)

    @property
    def peak_layer(self) -> LayerEstimate | None:
        return next((layer for layer in self.layers if layer.peak), None)

    def to_dict(self, layers: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "model_bytes": self.model_bytes, "op_count": self.op_count, "macs": self.macs,
            "arena_host_bytes": self.arena_host_bytes, "arena_target_bytes": self.arena_target_bytes,
            "all_fit": self.all_fit, "boards": [asdict(r) for r in self.results],
        }
        if layers:
            d["layers"] = [asdict(layer) for layer in self.layers]
        return d

    def to_json(self, layers: bool = False) -> str:
        return json.dumps(self.to_dict(layers), indent=2)

    def render(self, console: Any, layers: bool = False) -> None:
        """Print the fit table (and with `layers`, the per-op breakdown) on a rich console."""
        from rich import box
        from rich.markup import escape
        from rich.table import Table

        t = Table(title=f"fit: {self.model_bytes:,} B model, {self.macs:,} MACs, "
                        f"arena {self.arena_target_bytes:,} B (32-bit)",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
        t.add_column("board", no_wrap=True)
        t.add_column("cpu@MHz", no_wrap=True)
        for col in ("flash KB", "RAM KB", "ms (range)"):
            t.add_column(col, justify="right", no_wrap=True)
        t.add_column("fit", no_wrap=True)
        for r in self.results:
            verdict = "[green]yes[/]" if r.fits else "[red]NO[/]"
            t.add_row(escape(r.board), f"{_core_label(r.core)}@{r.clock_mhz:g}",
                      _used(r.flash_bytes, r.flash_available), _used(r.ram_bytes, r.ram_available),
                      f"{_ms(r.latency_ms)} ({_ms(r.latency_ms_low)}-{_ms(r.latency_ms_high)})", verdict)
        console.print(t)
        for r in self.results:
            if not r.fits:
                console.print(f"[red]does not fit[/] {escape(r.board)}: {escape(r.overshoot)}", highlight=False)
        if layers:
            self._render_layers(console)
        console.print("[dim]KB used/available. flash = model + TFLM code; RAM = 32-bit TFLM arena + "
                      "interpreter + stack; latency range: docs/fit.md[/]")

    def _render_layers(self, console: Any) -> None:
        from rich import box
        from rich.markup import escape
        from rich.table import Table

        if not self.results:
            return
        first = self.results[0].board
        total = sum(layer.latency_ms[first] for layer in self.layers) or 1.0
        t = Table(title=f"per-op breakdown, latency on {escape(first)} (* = peak activation memory)",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
        for col in ("#", "op", "output", "MACs", "live KB", "ms", "share"):
            t.add_column(col, justify="left" if col in ("op", "output") else "right", no_wrap=True)
        for layer in self.layers:
            mark = "*" if layer.peak else ""
            t.add_row(f"{layer.index}{mark}", escape(layer.op), "x".join(map(str, layer.output_shape)),
                      f"{layer.macs:,}", f"{layer.live_bytes / KB:.1f}{mark}",
                      f"{layer.latency_ms[first]:.3f}", f"{layer.latency_ms[first] / total:.0%}",
                      style="bold yellow" if layer.peak else None)
        console.print(t)


def _kb(n: int) -> str:
    return f"{n / KB:,.1f} KB"


def _used(used: int, avail: int) -> str:
    return f"{used / KB:,.0f}/{avail / KB:,.0f}"


def _core_label(core: str) -> str:
    return core.removeprefix("cortex-").upper().replace("PLUS", "+")


def _ms(v: float) -> str:
    return f"{v:.3g}" if v < 100 else f"{v:,.0f}"


def _overshoot(fb: int, fa: int, rb: int, ra: int) -> str:
    parts = []
    if fb > fa:
        parts.append(f"flash over by {_kb(fb - fa)}")
    if rb > ra:
        parts.append(f"RAM over by {_kb(rb - ra)}")
    return "; ".join(parts)


def _arena_target(model: TfliteModel, arena: ArenaReport | int | None) -> tuple[int, int]:
    if arena is None:
        arena = measure_arena(model.data)
    if isinstance(arena, ArenaReport):
        return arena.host_bytes, arena.target_bytes
    return int(arena), int(arena)


def fit_board(model: TfliteModel, cost: ModelCost, arena_bytes: int, board: Board,
              sizes: RuntimeSizes | None = None, lm: LatencyModel | None = None) -> BoardFit:
    """The estimate for one board, given the model's cost and its 32-bit arena bytes."""
    sizes = sizes or load_runtime_sizes()
    code, flash = flash_bytes(model, board.kernels, sizes)
    overhead = ram_overhead_bytes(model, sizes)
    ram = arena_bytes + overhead
    point, low, high = latency_ms(cost, board, lm)
    fa, ra = board.flash_bytes, board.sram_bytes
    return BoardFit(
        board=board.name, title=board.title, core=board.core, clock_mhz=board.clock_mhz,
        kernels=board.kernels, model_bytes=model.size_bytes, runtime_code_bytes=code,
        flash_bytes=flash, flash_available=fa, arena_bytes=arena_bytes,
        ram_overhead_bytes=overhead, ram_bytes=ram, ram_available=ra,
        latency_ms=point, latency_ms_low=low, latency_ms_high=high,
        fits_flash=flash <= fa, fits_ram=ram <= ra, fits=flash <= fa and ram <= ra,
        overshoot=_overshoot(flash, fa, ram, ra),
    )


def fit_model(model: bytes | TfliteModel, boards: list[Board],
              arena: ArenaReport | int | None = None) -> FitReport:
    """Estimate flash, RAM and latency of `model` on every board in `boards`.

    `arena` may be a measured ArenaReport, or the 32-bit arena in bytes; when omitted the
    model is allocated once in the real TFLM interpreter (raises TflmError if it cannot be).
    """
    if not isinstance(model, TfliteModel):
        model = parse_tflite(bytes(model))
    host, target = _arena_target(model, arena)
    cost = model_cost(model)
    lm = load_latency_model()
    results = [fit_board(model, cost, target, b, lm=lm) for b in boards]
    per_board = {b.name: [c / (b.clock_mhz * 1e3) for c in latency_cycles(cost, b.core, b.kernels, lm)]
                 for b in boards}
    peak = cost.peak_index
    layers = [LayerEstimate(op.index, op.op, op.output_shape, op.macs, op.elements, op.live_bytes,
                            op.index == peak, {name: ms[i] for name, ms in per_board.items()})
              for i, op in enumerate(cost.ops)]
    return FitReport(model.size_bytes, len(model.operators), cost.total_macs, host, target, results, layers)
