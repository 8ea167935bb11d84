"""Flash of a TFLM firmware, part by part: model array, framework, kernel glue, CMSIS-NN families, libc.

The cost of each part is data (`flash_parts.toml`, with where every number comes from: the linker
maps of the generated firmware in ../shared/reference/tflm_cortex_m_sizes.md, or an estimate
marked as such). A part is linked when the model uses one of its ops with the board's kernel
library; its size depends on the registration the export writes (`ops.model_ops`: the int8-only
variants by default, `narrow=False` for the generic ones), so the estimate follows the export.

This module only adds up parts; it does not read boards (`boards.py`) or measure anything, and
never imports TensorFlow.

Example:
    >>> est = estimate_flash(read_tflite("m.tflite"), "cmsis-nn", "cortex-m4f")   # doctest: +SKIP
    >>> est.flash_bytes, est.code_bytes, [(p.label, p.bytes) for p in est.parts][:2]   # doctest: +SKIP
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from firmware_export import ops as ops_mod
from firmware_export.tflite_model import TfliteModel

FLASH_PARTS_FILE = Path(__file__).with_name("flash_parts.toml")


@dataclass(frozen=True)
class Part:
    """One linked part of the firmware and its estimated bytes (after the core's code scale)."""

    name: str
    label: str
    bytes: int
    low: int
    high: int
    basis: str
    ops: tuple[str, ...] = ()
    narrow: bool = False  # sized for the int8-only registration


@dataclass(frozen=True)
class FlashEstimate:
    """Flash of one model on one core with one kernel library: the parts, their sum and a range."""

    kernels: str
    core: str
    narrow: bool  # the registration the estimate assumes (the export's default: int8-only variants)
    model_bytes: int
    parts: tuple[Part, ...] = field(default=())

    @property
    def code_bytes(self) -> int:
        """Everything but the model array: TFLM, CMSIS-NN, toolchain libraries, application."""
        return sum(p.bytes for p in self.parts)

    @property
    def flash_bytes(self) -> int:
        return self.model_bytes + self.code_bytes

    @property
    def flash_bytes_low(self) -> int:
        return self.model_bytes + sum(p.low for p in self.parts)

    @property
    def flash_bytes_high(self) -> int:
        return self.model_bytes + sum(p.high for p in self.parts)

    def group_bytes(self, prefix: str) -> int:
        """Bytes of the parts whose label starts with `prefix` (e.g. "CMSIS-NN", "TFLM kernel glue")."""
        return sum(p.bytes for p in self.parts if p.label.startswith(prefix))

    def to_dict(self) -> dict[str, Any]:
        return {"kernels": self.kernels, "core": self.core, "narrow": self.narrow,
                "model_bytes": self.model_bytes, "code_bytes": self.code_bytes,
                "flash_bytes": self.flash_bytes, "flash_bytes_low": self.flash_bytes_low,
                "flash_bytes_high": self.flash_bytes_high, "parts": [asdict(p) for p in self.parts]}


@functools.cache
def load_flash_parts(path: Path = FLASH_PARTS_FILE) -> dict[str, Any]:
    """The parsed flash_parts.toml (cached)."""
    return tomllib.loads(Path(path).read_text(encoding="utf-8"))


def _op_registrations(model: TfliteModel, narrow: bool) -> dict[str, bool]:
    """Builtin/custom op name -> True when the export registers its int8-only variant."""
    return {op.name: op.narrow for op in ops_mod.model_ops(model, narrow=narrow)}


def _scaled(n: float, u: float, scale: float, core_u: float) -> tuple[int, int, int]:
    point = n * scale
    return round(point), round(point * (1 - u) * (1 - core_u)), round(point * (1 + u) * (1 + core_u))


def estimate_flash(model: TfliteModel, kernels: str = "cmsis-nn", core: str = "cortex-m4f",
                   narrow: bool = True, table: dict[str, Any] | None = None) -> FlashEstimate:
    """Flash parts of `model` built with `kernels` for `core`, with the export's registrations
    (`narrow=True`: int8-only variants where TFLM has them, as `tinyprune export` writes)."""
    t = table or load_flash_parts()
    regs = _op_registrations(model, narrow)
    core_t = t["cores"].get(core, {"code_scale": 1.0, "uncertainty": 0.15, "basis": "unknown core"})
    scale, core_u = float(core_t["code_scale"]), float(core_t["uncertainty"])
    optimized = set(t["libraries"].get(kernels, []))
    parts: list[Part] = []

    def add(name: str, label: str, n: float, u: float, basis: str, ops: tuple[str, ...] = (),
            is_narrow: bool = False) -> None:
        point, low, high = _scaled(n, u, scale, core_u)
        parts.append(Part(name, label, point, low, high, basis, ops, is_narrow))

    fw = t["framework"]
    builtin = sorted(name for name in regs if name in ops_mod.op_table()[0])
    parsers = sum(int(fw["parser_bytes"].get(op, fw["default_parser_bytes"])) for op in builtin)
    add("framework", "TFLM framework (interpreter, allocator, planner, flatbuffer parsing)",
        int(fw["base_bytes"]) + parsers, float(fw["uncertainty"]), fw["basis"], tuple(builtin))

    def library(op: str) -> str:  # which library's kernel the op links
        return kernels if op in optimized else "reference"

    covered: set[str] = set()
    for name, p in t["parts"].items():
        wanted = set(p["ops"])
        if "*" in wanted:
            used = sorted(regs) if any(library(op) in p["libraries"] for op in regs) else []
        else:
            used = sorted(op for op in regs if op in wanted and library(op) in p["libraries"])
            covered.update(used)
        if not used:
            continue
        is_narrow = "narrow_bytes" in p and all(regs[op] for op in used)
        n = int(p["narrow_bytes"] if is_narrow else p["bytes"]) * (len(used) if p.get("per_op") else 1)
        u, basis = float(p["uncertainty"]), p["basis"]
        if is_narrow:  # the int8-only size is a share of a measured total saving, not measured itself
            u = max(u, float(t["narrow"]["uncertainty"]))
            basis = f"ESTIMATE (int8-only registration; {t['narrow']['basis']}). Generic: {basis}"
        add(name, p["label"], n, u, basis, tuple(used), is_narrow)

    unlisted = sorted(op for op in regs if op not in covered)
    if unlisted:
        u = t["unlisted_op"]
        add("unlisted_ops", f"kernels without a measured size ({', '.join(unlisted)})",
            int(u["bytes"]) * len(unlisted), float(u["uncertainty"]), u["basis"], tuple(unlisted))
    for key, label in (("toolchain", "toolchain libraries (libc_nano, libgcc, libm, semihosting)"),
                       ("application", "application and start-up (main.cc, vectors, .data)")):
        add(key, label, int(t[key]["bytes"]), float(t[key]["uncertainty"]), t[key]["basis"])
    return FlashEstimate(kernels, core, narrow, model.size_bytes, tuple(parts))
