"""Resource budgets: parse "96KB", "0.5MB", "50%", "12000", "20ms" and check a measurement.

A budget is an upper bound on one resource of the exported artifact: flash (the int8
.tflite bytes, which is what the model adds to the firmware image), RAM (TFLM arena for a
32-bit target plus the interpreter/stack overhead of `firmware_export.estimate`), or
latency (ms on a named board). Percentages are of the original model's measurement.
This module parses and compares; it does not search (see `budget_search.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tinyprune.errors import BudgetError

from firmware_export.boards import KB  # binary units, as linker maps and board datasheets use
_UNITS = {"": 1, "b": 1, "kb": KB, "k": KB, "kib": KB, "mb": KB * KB, "m": KB * KB, "mib": KB * KB}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z%]*)\s*$")


@dataclass(frozen=True)
class Budget:
    """An upper bound on one resource. `fraction` is set for budgets given in percent."""

    resource: str  # "flash", "ram" or "latency"
    limit: float | None  # bytes (flash, ram) or milliseconds (latency); None until resolved
    fraction: float | None = None
    text: str = ""

    def resolve(self, original: float) -> "Budget":
        """A percent budget made absolute against the original model's value."""
        if self.fraction is None:
            return self
        return Budget(self.resource, self.fraction * original, self.fraction, self.text)

    def met_by(self, value: float) -> bool:
        if self.limit is None:
            raise BudgetError(f"{self.resource} budget {self.text} is relative and has not been resolved")
        return value <= self.limit

    def describe(self) -> str:
        if self.limit is None:
            return self.text
        if self.resource == "latency":
            return f"{self.limit:.2f} ms"
        return f"{self.limit / KB:.1f} KB" + (f" ({self.text})" if self.fraction is not None else "")


_TIME_UNITS = {"": 1.0, "ms": 1.0, "s": 1000.0, "us": 1e-3}  # to milliseconds


def _parse(text: str, resource: str, units: dict[str, float], example: str) -> Budget:
    """A number with a unit from `units` (scaled to the budget's unit), or a percentage."""
    m = _SIZE.match(str(text))
    if not m:
        raise BudgetError(f"cannot read {resource} budget {text!r}; write e.g. {example}")
    value, unit = float(m.group(1)), m.group(2).lower()
    if unit == "%":
        if not 0 < value <= 100:
            raise BudgetError(f"{resource} budget {text} must be a percentage in (0, 100]")
        return Budget(resource.lower(), None, value / 100.0, str(text))
    if unit not in units:
        raise BudgetError(f"unknown unit {m.group(2)!r} in {resource} budget {text!r}; write e.g. {example}")
    if value <= 0:
        raise BudgetError(f"{resource} budget {text} must be positive")
    return Budget(resource.lower(), value * units[unit], None, str(text))


def parse_size(text: str, resource: str) -> Budget:
    """Parse a flash or RAM budget: bytes, KB/MB (binary), or percent of the original."""
    return _parse(text, resource, _UNITS, "96KB, 0.5MB, 12000 or 50%")


def parse_latency(text: str) -> Budget:
    """Parse a latency budget in milliseconds: "20", "20ms", "0.5s", or percent."""
    return _parse(text, "latency", _TIME_UNITS, "20ms, 0.5s or 50%")


def check_request(flash_budget: str | None, ram_budget: str | None, latency_budget: str | None, board: str | None,
                  boards_file: str | None, margin: float, round_to: int, has_data: bool) -> None:
    """Reject a budget request that cannot work, before any model is loaded or converted."""
    from tinyprune.errors import ConfigError, DataError

    if flash_budget:
        parse_size(flash_budget, "flash")
    if ram_budget:
        parse_size(ram_budget, "RAM")
    if latency_budget:
        parse_latency(latency_budget)
        if not board:
            raise BudgetError("a latency budget needs a board to estimate latency on; add --board NAME")
    if not (flash_budget or ram_budget or latency_budget or board):
        raise BudgetError("no budget given; use --flash-budget, --ram-budget, --latency-budget or --board")
    if board:
        from firmware_export.boards import load_boards, select_boards

        select_boards(load_boards(boards_file), [board], False)
    if not 0 <= margin < 1:
        raise ConfigError(f"--margin must be in [0, 1), got {margin}")
    if round_to < 1:
        raise ConfigError(f"--round-to must be >= 1, got {round_to}")
    if not has_data:
        raise DataError("a budget search needs data to measure accuracy; pass --data (digits or a .npz)")
