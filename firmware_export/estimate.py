"""Flash, RAM and latency of a .tflite on each board profile: the `tinyprune fit` estimator.

- Flash = model bytes + TFLM framework + kernel glue + CMSIS-NN function families + toolchain
  libraries + start-up code, part by part (`flash_model.py`, data in `flash_parts.toml`, which
  reproduces the linker maps of ../shared/reference/tflm_cortex_m_sizes.md), for the
  registrations the export writes (int8-only variants by default), with a range.
- RAM = the arena the exported header allocates on the board's core (`arena_bound.header_arena_bytes`:
  an upper bound of the smallest arena that works on the 32-bit target, i.e. the real TFLM
  interpreter's arena adjusted to 32 bits plus CMSIS-NN scratch buffers and alignment slack,
  plus the export's margin), + the MicroInterpreter object + the op resolver + a stack allowance
  (`runtime_sizes.toml`, [ram]). The bound alone is each board's `arena_bound_bytes`.
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

import dataclasses
import functools
import json
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from firmware_export.arena_bound import arena_bound, header_arena_bytes
from firmware_export.boards import KB, Board
from firmware_export.costmodel import ELEMENTWISE, ModelCost, OpCost, model_cost
from firmware_export.flash_model import estimate_flash
from firmware_export.tflite_model import TfliteModel, parse_tflite
from firmware_export.tflm import ArenaReport, measure_arena

RUNTIME_SIZES_FILE = Path(__file__).with_name("runtime_sizes.toml")
CALIBRATION_FILE = Path(__file__).with_name("latency_calibration.toml")


# ---------------------------------------------------------------------------- constants (data)

@dataclass(frozen=True)
class RuntimeSizes:
    """RAM outside the arena (bytes); see runtime_sizes.toml for the sources. Flash: flash_model.py."""

    interpreter_bytes: int
    resolver_bytes_per_op: int
    resolver_bytes_fixed: int
    stack_bytes: int

    def ram_overhead(self, op_count: int) -> int:
        """RAM outside the arena: interpreter object + op resolver for `op_count` ops + stack."""
        resolver = self.resolver_bytes_fixed + self.resolver_bytes_per_op * op_count
        return self.interpreter_bytes + resolver + self.stack_bytes


@functools.cache
def load_runtime_sizes(path: Path = RUNTIME_SIZES_FILE) -> RuntimeSizes:
    r = tomllib.loads(Path(path).read_text())["ram"]
    return RuntimeSizes(
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
class CoreCost:
    """Cycles per MAC of each op class on one core with CMSIS-NN, and its scalar-work factor."""

    cycles_per_mac: dict[str, float]  # conv, depthwise, fc
    scalar_factor: float  # multiplies element work and per-op overhead
    uncertainty: float  # range: [point / (1 + u), point x (1 + u)]
    basis: str


@dataclass(frozen=True)
class LatencyModel:
    """Constants of the latency model; see latency_calibration.toml for the formula and fit."""

    cycles_per_element: float
    cycles_per_op: float
    cores: dict[str, CoreCost]
    kernels: dict[str, Factor]
    legacy_stacks: dict[str, float] = field(default_factory=dict)
    engines: dict[str, dict[str, float]] = field(default_factory=dict)  # other engines, per op class
    board_factors: dict[str, Factor] = field(default_factory=dict)  # a user's own calibration, per board

    def op_cycles(self, op: OpCost, core: str, kernels: str) -> float:
        c, k = self.cores[core], self.kernels[kernels]
        mac = 0.0 if op.family == ELEMENTWISE else op.macs * c.cycles_per_mac[op.family]
        scalar = op.elements * self.cycles_per_element + self.cycles_per_op
        return mac * k.mac_factor + scalar * c.scalar_factor

    def uncertainty(self, core: str, kernels: str) -> float:
        return (1 + self.cores[core].uncertainty) * (1 + self.kernels[kernels].uncertainty) - 1


@functools.cache
def load_latency_model(path: Path = CALIBRATION_FILE) -> LatencyModel:
    doc = tomllib.loads(Path(path).read_text())
    cores = {name: CoreCost({f: float(v[f]) for f in ("conv", "depthwise", "fc")}, float(v["scalar"]),
                            float(v["uncertainty"]), str(v.get("basis", "")))
             for name, v in doc["cores"].items()}
    kernels = {name: Factor(float(v["mac_factor"]), 1.0, float(v["uncertainty"]), str(v.get("basis", "")))
               for name, v in doc["kernels"].items()}
    return LatencyModel(
        cycles_per_element=float(doc["work"]["cycles_per_element"]),
        cycles_per_op=float(doc["work"]["cycles_per_op"]),
        cores=cores, kernels=kernels,
        legacy_stacks={k: float(v) for k, v in doc.get("legacy_stacks", {}).items()},
        engines={k: {f: float(x) for f, x in v.items()} for k, v in doc.get("engines", {}).items()},
    )


# ---------------------------------------------------------------------------- estimates

def flash_bytes(model: TfliteModel, kernels: str, sizes: RuntimeSizes | None = None,
                core: str = "cortex-m4f", narrow: bool = True) -> tuple[int, int]:
    """(code bytes, total flash bytes) for `model` built with `kernels` for `core`, with the
    export's registrations (`narrow`: int8-only variants). Code = everything but the model array
    (TFLM, CMSIS-NN, toolchain libraries, start-up). `sizes` is accepted for compatibility."""
    est = estimate_flash(model, kernels, core, narrow)
    return est.code_bytes, est.flash_bytes


def ram_overhead_bytes(model: TfliteModel, sizes: RuntimeSizes | None = None) -> int:
    """RAM the model needs outside its arena (interpreter, resolver for its ops, stack)."""
    return (sizes or load_runtime_sizes()).ram_overhead(len(model.op_names))


def latency_cycles(cost: ModelCost, core: str, kernels: str, lm: LatencyModel | None = None) -> list[float]:
    """Estimated cycles of every op of `cost` on `core` with `kernels`."""
    lm = lm or load_latency_model()
    return [lm.op_cycles(op, core, kernels) for op in cost.ops]


def latency_ms(cost: ModelCost, board: Board, lm: LatencyModel | None = None) -> tuple[float, float, float]:
    """(point, low, high) latency in ms of one inference on `board`; a user's calibration of
    that board (`lm.board_factors`) scales the point and replaces the range."""
    lm = lm or load_latency_model()
    point = sum(latency_cycles(cost, board.core, board.kernels, lm)) / (board.clock_mhz * 1e3)
    u = lm.uncertainty(board.core, board.kernels)
    user = lm.board_factors.get(board.name)
    if user is not None:
        point, u = point * user.mac_factor, user.uncertainty
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
    runtime_code_bytes: int  # everything but the model array (TFLM, CMSIS-NN, libc, start-up)
    flash_bytes: int
    flash_available: int
    arena_bytes: int  # the arena a firmware built from the export allocates here (the header's constant)
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
    flash_bytes_low: int = 0
    flash_bytes_high: int = 0
    registration: str = "int8-only"  # which op registrations the flash figure assumes
    flash_parts: list[dict] = field(default_factory=list)  # label, bytes, low, high, basis
    arena_bound_bytes: int = 0  # upper bound of the smallest working arena on this core and kernels
    latency_basis: str = "shipped calibration"  # or the user's calibration of this board (fit --calibrate)


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
            "arena_bound_bytes": self.arena_bound_bytes,
            "all_fit": self.all_fit, "boards": [asdict(r) for r in self.results],
        }
        if layers:
            d["layers"] = [asdict(layer) for layer in self.layers]
        return d

    def to_json(self, layers: bool = False) -> str:
        return json.dumps(self.to_dict(layers), indent=2)

    @property
    def arena_bound_bytes(self) -> int:
        """The largest per-board arena bound (each an upper bound of the need on its core)."""
        return max((r.arena_bound_bytes for r in self.results), default=self.arena_target_bytes)

    def render(self, console: Any, layers: bool = False, flash: bool = False) -> None:
        """Print the fit table (with `layers` the per-op breakdown, with `flash` the flash parts
        of the first board) on a rich console."""
        from rich import box
        from firmware_export.terminal import escape
        from rich.table import Table

        arena = max((r.arena_bytes for r in self.results), default=0)
        t = Table(title=f"fit: {self.model_bytes:,} B model, {self.macs:,} MACs, arena {arena:,} B "
                        f"(bound {self.arena_bound_bytes:,})",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
        t.add_column("board", no_wrap=True)
        t.add_column("cpu@MHz", no_wrap=True)
        for col in ("flash KB (range)", "RAM KB", "ms (range)"):
            t.add_column(col, justify="right", no_wrap=True)
        t.add_column("fit", no_wrap=True)
        for r in self.results:
            verdict = "[green]yes[/]" if r.fits else "[red]NO[/]"
            t.add_row(escape(r.board), f"{_core_label(r.core)}@{r.clock_mhz:g}",
                      f"{_used(r.flash_bytes, r.flash_available)} "
                      f"({r.flash_bytes_low / KB:,.0f}-{r.flash_bytes_high / KB:,.0f})",
                      _used(r.ram_bytes, r.ram_available),
                      f"{_ms(r.latency_ms)} ({_ms(r.latency_ms_low)}-{_ms(r.latency_ms_high)})", verdict)
        console.print(t)
        for r in self.results:
            if not r.fits:
                console.print(f"[red]does not fit[/] {escape(r.board)}: {escape(r.overshoot)}", highlight=False)
        if layers:
            self._render_layers(console)
        if flash or layers:
            self._render_flash(console)
        console.print("[dim]KB used/available. flash = model + TFLM framework + kernels + CMSIS-NN + libc "
                      "(int8-only registrations, as exported; --flash for the parts); RAM = the exported header's "
                      "arena (the 32-bit bound + its margin) + interpreter + stack; " + self._latency_note() + "[/]")

    def _latency_note(self) -> str:
        user = sorted({r.latency_basis for r in self.results if r.latency_basis != "shipped calibration"})
        if not user:
            return "ms ranges span the calibration's leave-one-out errors"
        return f"ms of {', '.join(r.board for r in self.results if r.latency_basis in user)} from {', '.join(user)}"

    def _render_flash(self, console: Any) -> None:
        from rich import box
        from rich.table import Table

        if not self.results:
            return
        r = self.results[0]
        t = Table(title=f"flash parts on {r.board} ({_core_label(r.core)}, {r.kernels}, "
                        f"{r.registration} registrations)",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
        t.add_column("part", no_wrap=True)
        t.add_column("bytes", justify="right", no_wrap=True)
        t.add_column("range", justify="right", no_wrap=True)
        t.add_column("basis")
        for p in r.flash_parts:
            t.add_row(p["label"], f"{p['bytes']:,}", f"{p['low']:,}-{p['high']:,}",
                      p["basis"].split(":")[0].split(" ")[0])
        t.add_row("total", f"{r.flash_bytes:,}", f"{r.flash_bytes_low:,}-{r.flash_bytes_high:,}", "",
                  style="bold")
        console.print(t)

    def _render_layers(self, console: Any) -> None:
        from rich import box
        from firmware_export.terminal import escape
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


def _arena_report(model: TfliteModel, arena: ArenaReport | int | None) -> ArenaReport | int:
    return measure_arena(model.data) if arena is None else arena


def board_arena_bytes(model: TfliteModel, arena: ArenaReport | int, board: Board) -> tuple[int, int]:
    """(allocated, bound) for `board`: from a measured ArenaReport, the arena the exported header
    allocates on its core (`arena_figure`) and the upper bound of the need for its core and
    kernels (arena_bound.py); when `arena` is an int, the caller's own 32-bit figure for both."""
    if isinstance(arena, ArenaReport):
        return arena_figure(model, arena, board), arena_bound(model, arena, board.kernels, board.core).bound_bytes
    return int(arena), int(arena)


def arena_figure(model: TfliteModel, report: ArenaReport, board: Board | None = None) -> int:
    """The 32-bit arena a model is held to: what a firmware built from `tinyprune export`
    allocates (the header's constant: the bound plus its margin) on `board`'s core, or without
    a board the header's first constant (cores without Helium). fit's RAM and the budget's count it."""
    return header_arena_bytes(model, report, board.core if board is not None else None)


def fit_board(model: TfliteModel, cost: ModelCost, arena_bytes: int, board: Board,
              sizes: RuntimeSizes | None = None, lm: LatencyModel | None = None,
              narrow: bool = True, arena_bound_bytes: int | None = None) -> BoardFit:
    """The estimate for one board, given the model's cost and the 32-bit arena its firmware
    allocates (`arena_bound_bytes`: the need that arena covers; default the same)."""
    sizes = sizes or load_runtime_sizes()
    flash_est = estimate_flash(model, board.kernels, board.core, narrow)
    code, flash = flash_est.code_bytes, flash_est.flash_bytes
    overhead = ram_overhead_bytes(model, sizes)
    ram = arena_bytes + overhead
    point, low, high = latency_ms(cost, board, lm)
    fa, ra = board.flash_bytes, board.sram_bytes
    parts = [{"label": "model array", "bytes": model.size_bytes, "low": model.size_bytes,
              "high": model.size_bytes, "basis": "exact: the .tflite bytes"}]
    parts += [{"label": q.label, "bytes": q.bytes, "low": q.low, "high": q.high, "basis": q.basis}
              for q in flash_est.parts]
    return BoardFit(
        board=board.name, title=board.title, core=board.core, clock_mhz=board.clock_mhz,
        kernels=board.kernels, model_bytes=model.size_bytes, runtime_code_bytes=code,
        flash_bytes=flash, flash_available=fa, arena_bytes=arena_bytes,
        ram_overhead_bytes=overhead, ram_bytes=ram, ram_available=ra,
        latency_ms=point, latency_ms_low=low, latency_ms_high=high,
        fits_flash=flash <= fa, fits_ram=ram <= ra, fits=flash <= fa and ram <= ra,
        overshoot=_overshoot(flash, fa, ram, ra),
        flash_bytes_low=flash_est.flash_bytes_low, flash_bytes_high=flash_est.flash_bytes_high,
        registration="int8-only" if narrow else "generic", flash_parts=parts,
        arena_bound_bytes=arena_bytes if arena_bound_bytes is None else arena_bound_bytes,
        latency_basis=lm.board_factors[board.name].basis if lm and board.name in lm.board_factors
        else "shipped calibration",
    )


def fit_model(model: bytes | TfliteModel, boards: list[Board],
              arena: ArenaReport | int | None = None, narrow: bool = True,
              calibration: dict[str, Factor] | None = None) -> FitReport:
    """Estimate flash, RAM and latency of `model` on every board in `boards`.

    `arena` may be a measured ArenaReport, or the 32-bit arena in bytes; when omitted the
    model is allocated once in the real TFLM interpreter (raises TflmError if it cannot be).
    `narrow` says which registrations the firmware uses (the export's default: int8-only
    variants); `calibration` is a user's latency factors per board name
    (`latency_user.load_user_calibration`, written by `calibrate_boards`).
    """
    if not isinstance(model, TfliteModel):
        model = parse_tflite(bytes(model))
    report = _arena_report(model, arena)
    if isinstance(report, ArenaReport):
        host, target = report.host_bytes, report.target_bytes
    else:
        host = target = int(report)
    cost = model_cost(model)
    lm = load_latency_model()
    if calibration is not None:
        lm = dataclasses.replace(lm, board_factors={**lm.board_factors, **calibration})
    results = []
    for b in boards:
        allocated, bound = board_arena_bytes(model, report, b)
        results.append(fit_board(model, cost, allocated, b, lm=lm, narrow=narrow, arena_bound_bytes=bound))
    per_board = {b.name: [c / (b.clock_mhz * 1e3) * (lm.board_factors[b.name].mac_factor
                                                       if b.name in lm.board_factors else 1.0)
                          for c in latency_cycles(cost, b.core, b.kernels, lm)]
                 for b in boards}
    peak = cost.peak_index
    layers = [LayerEstimate(op.index, op.op, op.output_shape, op.macs, op.elements, op.live_bytes,
                            op.index == peak, {name: ms[i] for name, ms in per_board.items()})
              for i, op in enumerate(cost.ops)]
    return FitReport(model.size_bytes, len(model.operators), cost.total_macs, host, target, results, layers)


def fit_file(model: str | Path, boards: list[str] | None = None, all_boards: bool = False,
             boards_file: str | Path | None = None, narrow: bool = True) -> FitReport:
    """What `tinyprune fit MODEL.tflite` computes: `fit_model` on the boards it would pick.

    The boards: `boards` by name, else every profile with `all_boards`, else the boards of
    `boards_file` when one is given, else the shipped default set; a `boards_file`'s saved latency
    calibration (`fit --calibrate`, latency_user.py) is applied. Raises InputFileError /
    TfliteFormatError for a file that is not a .tflite, BoardError for an unknown board."""
    from firmware_export.boards import load_boards, read_boards_file, select_boards
    from firmware_export.latency_user import load_user_calibration
    from firmware_export.tflite_model import read_tflite

    tflite = read_tflite(model)
    profiles = load_boards(boards_file)
    names = list(boards) if boards else None
    if names is None and not all_boards and boards_file is not None:
        names = [b.name for b in read_boards_file(boards_file)]
    return fit_model(tflite, select_boards(profiles, names, all_boards), narrow=narrow,
                     calibration=load_user_calibration(boards_file))
