"""Resource budgets: the one `Budget` type, from the user's strings to absolute limits.

A budget bounds the exported artifact: `flash_bytes` (the int8 .tflite bytes, what the model
adds to the firmware image), `ram_bytes` (TFLM arena for a 32-bit target plus the
interpreter/stack overhead of `firmware_export.estimate`) and `latency_ms` (on a named board).
Each may be absolute ("96KB", "0.5MB", "12000", "20ms", "0.5s") or a percentage of the
original model's measurement ("50%").

The budget is parsed once (`Budget.parse`, before TensorFlow is imported: the CLI calls it
and hands the result on), with the boards file loaded once there too; it is resolved once
against the measured original (`Budget.resolve`, which applies the board's free flash/SRAM and
the safety margin), and then only read. The quantities keep their names all the way:
`flash_bytes`, `ram_bytes`, `latency_ms`.
This module parses, resolves and compares; it does not search (see `search.py`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from tinyprune.errors import BudgetError, ConfigError
from tinyprune.prune import CRITERIA

from firmware_export.boards import KB  # binary units, as linker maps and board datasheets use
_UNITS = {"": 1, "b": 1, "kb": KB, "k": KB, "kib": KB, "mb": KB * KB, "m": KB * KB, "mib": KB * KB}
_TIME_UNITS = {"": 1.0, "ms": 1.0, "s": 1000.0, "us": 1e-3}  # to milliseconds
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z%]*)\s*$")
QUANTITIES = ("flash_bytes", "ram_bytes", "latency_ms")
# how the search shapes the channel counts (search.prune_for_budget(allocation=...), --allocation)
ALLOCATIONS = ("auto", "sensitivity", "uniform")
IMPORTANCES = ("auto", *CRITERIA)  # the budget search's: a criterion, or "auto" (the best on validation)


@dataclass(frozen=True)
class Limit:
    """One bound as the user wrote it: an absolute `value` or a `fraction` of the original."""

    value: float | None  # bytes or ms; None for a percentage
    fraction: float | None = None
    text: str = ""

    def resolve(self, original: float) -> float:
        """The absolute bound (a percentage made absolute against the original's value)."""
        return self.value if self.fraction is None else self.fraction * original


def _parse(text: str, what: str, units: dict[str, float], example: str) -> Limit:
    m = _SIZE.match(str(text))
    if not m:
        raise BudgetError(f"cannot read {what} budget {text!r}; write e.g. {example}")
    value, unit = float(m.group(1)), m.group(2).lower()
    if unit == "%":
        if not 0 < value <= 100:
            raise BudgetError(f"{what} budget {text} must be a percentage in (0, 100]")
        return Limit(None, value / 100.0, str(text))
    if unit not in units:
        raise BudgetError(f"unknown unit {m.group(2)!r} in {what} budget {text!r}; write e.g. {example}")
    if value <= 0:
        raise BudgetError(f"{what} budget {text} must be positive")
    return Limit(value * units[unit], None, str(text))


def parse_size(text: str, what: str = "flash") -> Limit:
    """A flash or RAM bound: bytes, KB/MB (binary), or percent of the original."""
    return _parse(text, what, _UNITS, "96KB, 0.5MB, 12000 or 50%")


def parse_latency(text: str) -> Limit:
    """A latency bound in milliseconds: "20", "20ms", "0.5s", or percent."""
    return _parse(text, "latency", _TIME_UNITS, "20ms, 0.5s or 50%")


@dataclass(frozen=True)
class Budget:
    """Upper bounds on the artifact, first as asked (`Limit`s), after `resolve` as absolute
    numbers (bytes, ms). None = unconstrained. `board` is the `firmware_export.boards.Board`
    the budget is for (or None); `boards` every board profile loaded, for the fit table."""

    flash_bytes: Limit | float | None = None
    ram_bytes: Limit | float | None = None
    latency_ms: Limit | float | None = None
    board: object = None
    margin: float = 0.0
    asked: dict = field(default_factory=dict)  # the strings as given, for the report
    boards: dict = field(default_factory=dict, repr=False, compare=False)
    resolved: bool = False

    # ------------------------------------------------------------------ parse (once)
    @classmethod
    def parse(cls, flash_budget: str | None = None, ram_budget: str | None = None, latency_budget: str | None = None,
              board: str | None = None, boards_file: str | None = None, margin: float = 0.0) -> "Budget":
        """The user's budget strings -> a Budget; loads the boards file once. Raises BudgetError
        (unreadable, nothing asked, latency without a board), BoardError, ConfigError (margin)."""
        from firmware_export.boards import load_boards, select_boards

        if not (flash_budget or ram_budget or latency_budget or board):
            raise BudgetError("no budget given; use --flash-budget, --ram-budget, --latency-budget or --board")
        flash = parse_size(flash_budget, "flash") if flash_budget else None
        ram = parse_size(ram_budget, "RAM") if ram_budget else None
        latency = parse_latency(latency_budget) if latency_budget else None
        if latency is not None and not board:
            raise BudgetError("a latency budget needs a board to estimate latency on; add --board NAME")
        if not 0 <= margin < 1:
            raise ConfigError(f"--margin must be in [0, 1), got {margin}")
        boards = load_boards(boards_file)
        the_board = select_boards(boards, [board], False)[0] if board else None
        asked = {"flash_budget": flash_budget, "ram_budget": ram_budget, "latency_budget": latency_budget,
                 "board": board}
        return cls(flash, ram, latency, the_board, float(margin), asked, boards)

    # ------------------------------------------------------------------ resolve (once)
    def resolve(self, original) -> "Budget":
        """Absolute limits against the measured original (`search.Measured`: int8_bytes,
        ram_bytes, latency_ms, runtime_code_bytes): percentages made absolute, the board's free
        flash and SRAM applied, the margin taken off."""
        if self.resolved:
            return self
        keep = 1 - self.margin
        flash = None if self.flash_bytes is None else self.flash_bytes.resolve(original.int8_bytes) * keep
        ram = None if self.ram_bytes is None else self.ram_bytes.resolve(original.ram_bytes) * keep
        latency = None if self.latency_ms is None else self.latency_ms.resolve(original.latency_ms) * keep
        if self.board is not None:
            if original.runtime_code_bytes >= self.board.flash_bytes:
                raise BudgetError(f"board {self.board.name} has {self.board.flash_bytes / KB:,.0f} KB of flash, but the "
                                  f"TFLM runtime this model needs links to about {original.runtime_code_bytes / KB:,.1f}"
                                  " KB before any weights (tinyprune fit --flash shows the parts): no pruning makes "
                                  "it fit; pick a board with more flash")
            board_flash = (self.board.flash_bytes - original.runtime_code_bytes) * keep
            board_ram = self.board.sram_bytes * keep
            flash = board_flash if flash is None else min(flash, board_flash)
            ram = board_ram if ram is None else min(ram, board_ram)
        return replace(self, flash_bytes=flash, ram_bytes=ram, latency_ms=latency, resolved=True)

    def toward(self, original, fraction: float) -> "Budget":
        """A resolved budget `fraction` of the way (geometrically) from the original's values to
        this one's: the intermediate targets of iterative pruning (fraction 1 = this budget)."""
        self._check_resolved()
        values = {"flash_bytes": original.int8_bytes, "ram_bytes": original.ram_bytes,
                  "latency_ms": original.latency_ms}
        out = {}
        for q in QUANTITIES:
            limit = getattr(self, q)
            if limit is None or not values[q] or limit >= values[q]:
                out[q] = limit
            else:
                out[q] = values[q] * (limit / values[q]) ** fraction
        return replace(self, **out)

    # ------------------------------------------------------------------ compare
    def _check_resolved(self) -> None:
        if not self.resolved:
            raise BudgetError("the budget has not been resolved against the original model")

    def misses(self, m) -> dict[str, tuple[float, float]]:
        """Quantity -> (measured, limit) for every limit measurement `m` exceeds."""
        self._check_resolved()
        out = {}
        for q, value in (("flash_bytes", m.int8_bytes), ("ram_bytes", m.ram_bytes), ("latency_ms", m.latency_ms)):
            limit = getattr(self, q)
            if limit is not None and value is not None and value > limit:
                out[q] = (value, limit)
        return out

    def met_by(self, m) -> bool:
        return not self.misses(m)

    def describe(self) -> str:
        if not self.resolved:
            return ", ".join(f"{q.split('_')[0]} {v}" for q, v in self.asked.items() if v and q != "board")
        parts = []
        if self.flash_bytes is not None:
            parts.append(f"flash {self.flash_bytes / KB:.1f} KB")
        if self.ram_bytes is not None:
            parts.append(f"RAM {self.ram_bytes / KB:.1f} KB")
        if self.latency_ms is not None:
            parts.append(f"latency {self.latency_ms:.2f} ms")
        return ", ".join(parts) + (f" (board {self.board.name})" if self.board is not None else "")

    def to_dict(self) -> dict:
        """report.json's "targets": the absolute limits and what was asked."""
        self._check_resolved()

        def whole(n: float | None) -> int | None:  # a byte limit of 9582.25 B admits 9582 B
            return None if n is None else int(math.floor(n + 1e-9))

        return {"flash_bytes": whole(self.flash_bytes), "ram_bytes": whole(self.ram_bytes),
                "latency_ms": self.latency_ms,
                "board": None if self.board is None else self.board.name, "margin": self.margin,
                "asked": dict(self.asked)}


def check_job(round_to: int, has_data: bool) -> None:
    """Reject job settings that cannot work, before any model is loaded (the budget itself is
    checked by `Budget.parse`)."""
    from tinyprune.errors import DataError

    from tinyprune.prune import check_round_to

    check_round_to(round_to)
    if not has_data:
        raise DataError("a budget search needs data to measure accuracy; pass --data (digits or a .npz)")
